"""Tornado HTTP API: accounts, users, conversations, history, health, OpenAPI; and the
`/metrics` handler of the internal metrics listener (mounted by chat/app/http.py)."""
