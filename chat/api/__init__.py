"""Tornado HTTP API: accounts, users, conversations, history, health, OpenAPI; and the
`/metrics` handler of the internal metrics listener (chat/server.py)."""
