"""The whole cluster on one machine, as real processes on loopback: `python -m tools.devcluster`
(or `make devcluster`).

redis-server (AOF, `appendfsync always`), PostgreSQL 15, FerretDB (the MongoDB protocol), then
`migrate`, N `ws` gateways, one `api`, M `worker` processes, and haproxy in front as the
ingress: one URL, `/ws` spread over the gateways, anything else to the API. SIGINT/SIGTERM
stop it all, front first: haproxy, then the gateways drain (1012), then API, workers and the
servers.

- `cluster`: `AppCluster` runs the chatcluster processes and haproxy against any
  Redis/PostgreSQL/MongoDB (`Backing`); the multi-process tests hand it their own servers and
  SIGKILL or restart single processes.
- `servers`: `Services` starts the three servers for the command.
- `haproxy`: the ingress's configuration and its runtime API.
- `cli`: the command.

Every process is a `tools.harness.supervisor.Proc`, the same supervisor the tests use.
"""
