"""The web client's page (`/`) and its static files (`/static/...`), served in `dev` and by
`chatcluster api`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


class IndexHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'",
        )
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish((WEB_DIR / "index.html").read_bytes())


def web_rules() -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    return [
        (r"/", IndexHandler, {}),
        (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(WEB_DIR)}),
    ]
