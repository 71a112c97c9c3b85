"""The process harness shared by the tests (tests/servers.py, tests/multiprocess) and the
local cluster (`python -m tools.devcluster`): one small supervisor, the recipes of the servers
it starts, and the versions and paths of those servers, each in one place.

- `net`: free loopback ports and readiness probes.
- `supervisor`: start a child, wait until it is ready (bounded poll), stop it (its stop
  signal, then SIGKILL), capture its output in a log file.
- `recipes`: redis-server, PostgreSQL 15 and FerretDB as supervised children.
- `versions`: the FerretDB version, PostgreSQL's bin directory and the build cache, read from
  `versions.env`, which the set-up scripts source too.
"""
