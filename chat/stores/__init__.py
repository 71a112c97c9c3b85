"""Implementations of the domain's ports: `embedded` (one process) and `cluster` (servers)."""
