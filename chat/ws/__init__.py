"""The WebSocket gateway, in three parts and their helpers.

- `hub.py` (`Gateway`): one per process; the bus subscription, routing of channels to
  sessions, the drain. Built from `deps.py` (`GatewayDeps`: the services, limits, metrics,
  Origin rule and `draining()` it needs; nothing else of the process).
- `session.py` (`Session`): one per connection; a state machine that never touches a socket:
  auth (`auth.py`), frame dispatch (`commands.py`), close policy (`policy.py`, `close_codes.py`),
  delivery cursors (`delivery.py`), heartbeat and maximum age (`liveness.py`). It writes
  through a `Transport` and takes its timers from a `Schedule` (`transport.py`).
- `outbound.py` (`Writer`): one per connection; coalescing, the byte budget, backpressure on
  Tornado's stream, the delivery metrics; frames built once per process (`wire.py`).
- `gateway.py` (`GatewayHandler`): the thin Tornado adapter: handshake, Origin rule, RFC 6455
  strictness (`rfc6455.py`); frames in to the session, frames out through the writer.

A `send` frame: handler -> `Session.receive` -> `commands._send` -> `MessagingService.send` ->
event log -> bus -> `Gateway.on_message` -> each session's cursors -> `Writer.deliver`.
"""
