"""The composition root hands every handler exactly the arguments its `initialize` declares
(a mismatch would otherwise surface only when that route is first requested), never the runtime
itself, and a process has one WebSocket hub however many applications mount /ws."""

from __future__ import annotations

import inspect

from chat.app.http import make_app
from chat.app.runtime import Runtime
from tests.support.fixtures import Server


def test_each_handler_gets_what_its_initialize_declares(server: Server) -> None:
    app = make_app(server.rt)
    rules = [(r.target, r.target_kwargs) for r in app.wildcard_router.rules]
    rules.append((app.settings["default_handler_class"], app.settings["default_handler_args"]))
    assert len(rules) > 20
    for handler, kwargs in rules:
        inspect.signature(handler.initialize).bind(None, **kwargs)  # raises on a mismatch
        assert not any(isinstance(v, Runtime) for v in kwargs.values()), handler


def test_one_hub_per_process(server: Server) -> None:
    first = server.rt.gateway
    assert first is not None
    gateway_only = make_app(server.rt, api=False, web=False)
    (hub,) = [
        r.target_kwargs["gateway"]
        for r in gateway_only.wildcard_router.rules
        if r.target_kwargs.get("gateway")
    ]
    assert hub is first
