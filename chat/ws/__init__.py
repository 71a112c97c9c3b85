"""Tornado WebSocket gateway: auth handshake, live delivery, typing, presence, read, resume."""
