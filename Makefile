# The two commands in README.md: `make dev` runs the product, `make test` passes the tests.
# Both install what they need first, so they work on a fresh machine.
PY := .venv/bin/python

.PHONY: dev test setup python lint unit realnode

# The whole locked set (product, operator extra, test and lint groups), from uv.lock.
python:
	bash scripts/setup.d/20-python.sh

# Only the product's own dependencies: a fresh clone answers in seconds (README).
dev:
	bash scripts/setup.d/20-python.sh runtime
	$(PY) -m chat dev --data-dir $${CHAT_DATA_DIR:-.chatdata}

setup:
	bash scripts/setup.sh

lint: python
	bash scripts/lint.sh

test: setup
	bash scripts/lint.sh
	bash scripts/test.sh

unit: python
	$(PY) -m pytest -q tests/unit tests/contract tests/api

# The whole product on a real one-node Kubernetes on this machine (root): containerd, kubelet,
# Traefik, the operator chart, a ChatCluster; prints how to reach it, Ctrl-C tears it down.
realnode: setup
	$(PY) -m tests.realnode

# The whole cluster as real local processes behind haproxy (dev tooling, not in the wheel):
# Redis, PostgreSQL 15, FerretDB, gateways, API, workers; e.g. make devcluster ARGS="--gateways 3".
.PHONY: devcluster
devcluster: python
	$(PY) -m tools.devcluster $(ARGS)

# The benchmark against Centrifugo and python-socketio (bench/compare.py, docs/performance.md):
# builds its load generator, Centrifugo and a bench venv into the cache on first use, runs every
# target interleaved and rewrites the table in docs/performance.md. BENCH_ARGS=--quick to smoke.
.PHONY: bench
bench: python
	$(PY) -m bench.compare $(BENCH_ARGS)
