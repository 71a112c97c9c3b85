"""Dramatiq workers: archive conversation logs, sweep for forgotten ones, apply retention."""

PERSIST_QUEUE = "persist"
"""Archiving conversation logs into MongoDB (`persist_batch`)."""
MAINTENANCE_QUEUE = "maintenance"
"""The periodic sweep and retention."""
QUEUES = (PERSIST_QUEUE, MAINTENANCE_QUEUE)
"""Every queue an actor is declared on: what `worker --queues` may name (and the CRD's
`workers[].queues` enum)."""
