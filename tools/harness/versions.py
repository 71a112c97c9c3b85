"""Versions and paths of the servers the harness starts, from `versions.env` next to this
module: the set-up script that builds FerretDB sources the same file, so the version it builds
is the version the tests and the local cluster look for."""

from __future__ import annotations

import os
import re
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.env")
_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S+)$")


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """`KEY=value` lines; comments and blank lines skipped; anything else is an error naming
    the line (a shell would read it differently than this parser)."""
    pinned: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = _LINE.match(line)
        if found is None:
            raise ValueError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        pinned[found.group(1)] = found.group(2)
    return pinned


_PINNED = read_versions()
FERRETDB_VERSION = _PINNED["FERRETDB_VERSION"]
PG_BIN = Path(_PINNED["PG_BIN"])
"""PostgreSQL 15's server binaries (initdb, postgres, pg_isready): Debian's postgresql-15."""


def cache_dir() -> Path:
    """Where scripts/setup.d/ caches built binaries (CHATCLUSTER_CACHE, else the default)."""
    return Path(os.environ.get("CHATCLUSTER_CACHE", _PINNED["DEFAULT_CACHE"]))


def ferretdb_binary() -> Path:
    """The FerretDB that scripts/setup.d/30-ferretdb.sh built for FERRETDB_VERSION."""
    return cache_dir() / f"ferretdb-{FERRETDB_VERSION}" / "ferretdb"
