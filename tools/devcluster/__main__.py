"""`python -m tools.devcluster`: see tools/devcluster/cli.py."""

import sys

from tools.devcluster.cli import run

sys.exit(run(sys.argv[1:]))
