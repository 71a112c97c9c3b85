"""The base handler: JSON in and out, errors as `{"error": {"code", "message"}}`, bearer auth,
per-route metrics."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
import tornado.web
from tornado.http1connection import HTTP1Connection
from tornado.log import access_log

from chat.api.body import (
    MAX_DRAIN_BYTES,
    MAX_JSON_BODY,
    BoundedBody,
    declared_length,
    require_json,
    too_large,
)
from chat.domain.accounts import AccountService, Principal
from chat.domain.error_codes import generic_code
from chat.domain.errors import (
    ChatError,
    InvalidRequest,
    Unauthenticated,
    Unavailable,
)
from chat.logs import bind, request_id_from
from chat.metrics import Metrics

MAX_SEQ = 2**63 - 1
"""The largest seq or cursor a path or query accepts: what every store can hold (SQLite and
PostgreSQL bigint, MongoDB int64)."""
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: `[0-9]`, not `\d` (which matches U+0661)


def parse_seq(raw: str, name: str) -> int:
    """A non-negative decimal integer of ASCII digits, nothing else: no sign, no spaces, no
    `_`, no other scripts' digits (all of which `int()` would accept), at most MAX_SEQ."""
    if not _DIGITS.fullmatch(raw) or int(raw) > MAX_SEQ:
        raise InvalidRequest(
            f"{name} must be an integer of ASCII digits from 0 to {MAX_SEQ}",
            code="invalid_request",
        )
    return int(raw)


@tornado.web.stream_request_body
class JsonBase(tornado.web.RequestHandler):
    """Bodies are streamed into a `BoundedBody` so the limits of chat.api.body apply.

    Every JSON handler counts its requests and errors (`metrics`) and may authenticate its
    caller (`accounts`); a handler that calls more services takes them as further `initialize`
    arguments (the composition root, chat/app/http.py, passes each exactly what it declares)
    and calls `setup` with these two."""

    route = ""
    metrics: Metrics
    accounts: AccountService
    unavailable = ""
    """Set when the request failed because a dependency is down (an expected 503)."""

    def setup(self, metrics: Metrics, accounts: AccountService) -> None:
        self.metrics = metrics
        self.accounts = accounts
        self._started = time.perf_counter()
        self._body = BoundedBody()
        bind(request_id=self.request_id, connection_id=None, user_id=None, conversation_id=None)

    def prepare(self) -> None:
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            # The server's own cap would answer a bare 400 (or reset); ours answers 413 JSON.
            connection.set_max_body_size(2**62)
        declared = declared_length(self.request.headers.get("Content-Length"))
        if declared is not None and declared > MAX_JSON_BODY:
            expects = self.request.headers.get("Expect", "").lower() == "100-continue"
            if expects or declared > MAX_DRAIN_BYTES:
                raise too_large()  # answered now; the unread body closes the connection

    def data_received(self, chunk: bytes) -> None:
        if not self._body.feed(chunk) and not self._finished:
            exc = too_large()
            self.send_error(exc.status, exc_info=(type(exc), exc, None))

    @property
    def request_id(self) -> str:
        """The client's X-Request-ID when it is a sane token, else a fresh one; echoed in the
        response and on every log line of this request."""
        rid: str | None = getattr(self, "_request_id", None)
        if rid is None:
            rid = self._request_id = request_id_from(self.request.headers.get("X-Request-ID"))
        return rid

    def set_default_headers(self) -> None:
        self.set_header("X-Request-ID", self.request_id)
        self.set_header("Content-Type", "application/json")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")

    def check_xsrf_cookie(self) -> None:
        """Bearer tokens, not cookies, authenticate: there is no ambient credential to forge."""

    def send_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(orjson.dumps(payload))

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object; no body at all counts as `{}`."""
        raw = self._body.data()
        if not raw:
            return {}
        require_json(self.request.headers.get("Content-Type"))
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("request body is not valid JSON", code="bad_json") from exc
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object", code="bad_json")
        return body

    def query_int(self, name: str) -> int | None:
        # strip=False: Tornado would otherwise trim " 1 " to "1" before we see it.
        raw = self.get_query_argument(name, None, strip=False)
        return None if raw is None else parse_seq(raw, name)

    async def principal(self) -> Principal:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("send 'Authorization: Bearer <access token>'")
        return await self.accounts.authenticate(token.strip())

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ChatError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ChatError):
            error = exc.to_dict()
            if exc.code == "rate_limited" and "retry_after_ms" in exc.details:
                retry = int(exc.details["retry_after_ms"])  # type: ignore[call-overload]
                self.set_header("Retry-After", str(max(1, -(-retry // 1000))))  # ceil
        else:
            code = generic_code(status_code)  # a bare status (Tornado's 405, a route's 404)
            reason = self._reason if status_code != 500 else "internal server error"
            error = {"code": code, "message": reason}
        self.metrics.errors.labels("http", str(error["code"])).inc()
        if status_code == 401:
            self.metrics.auth_failures.labels("http", str(error["code"])).inc()
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"error": error}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ChatError) and value.status < 500:
            return  # a client error, answered with its code; not a server fault
        if isinstance(value, Unavailable):
            # Expected while a dependency is down, and answered 503 naming it: no traceback;
            # the access line (log_request) says it, as a warning.
            self.unavailable = f"{value.code}: {value.message}"
            return
        super().log_exception(typ, value, tb)

    def on_finish(self) -> None:
        route = self.route or "unmatched"
        self.metrics.http_requests.labels(
            route, self.request.method or "", str(self.get_status())
        ).inc()
        self.metrics.http_latency.labels(route).observe(time.perf_counter() - self._started)


class JsonHandler(JsonBase):
    """A JSON handler that calls no service beyond `accounts`."""

    def initialize(self, *, metrics: Metrics, accounts: AccountService) -> None:
        self.setup(metrics, accounts)


class NotFoundHandler(JsonHandler):
    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404, reason="no such route")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access line (its `log_function`), except that an expected 503 — a dependency
    is down — is one warning line naming it, not an error."""
    status = handler.get_status()
    unavailable = getattr(handler, "unavailable", "")
    if status < 400:
        emit = access_log.info
    elif status < 500 or unavailable:
        emit = access_log.warning
    else:
        emit = access_log.error
    request = handler.request
    emit(
        "%d %s %s (%s) %.2fms%s",
        status,
        request.method,
        request.path,  # not the query: it may carry secrets (OIDC codes)
        request.remote_ip,
        1000.0 * request.request_time(),
        f": {unavailable}" if unavailable else "",
    )
