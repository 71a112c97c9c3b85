"""The composition root: the one place where implementations are chosen and connected.

Settings in; stores, domain services, broker and actors, the HTTP/WebSocket application and the
worker processes out. Everything below it (chat.api, chat.ws, chat.worker, chat.stores,
chat.domain) receives what it uses through constructors and Tornado `initialize` arguments, and
never imports this package (`.importlinter`, contract `layers`)."""
