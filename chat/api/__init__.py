"""Tornado HTTP API: accounts, users, conversations, history, health, metrics, OpenAPI."""
