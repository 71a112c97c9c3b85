"""``python -m chat_operator``: the same entry point as ``chatcluster operator``."""

import sys

from chat_operator.cli import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
