"""The base handler: JSON in and out, errors as `{"error": {"code", "message"}}`, bearer auth,
per-route metrics."""

from __future__ import annotations

import time
from typing import Any

import orjson
import tornado.web

from chat.domain.accounts import Principal
from chat.domain.errors import ChatError, InvalidRequest, PayloadTooLarge, Unauthenticated
from chat.logs import bind, request_id_from
from chat.runtime import Runtime

MAX_JSON_BODY = 64 * 1024

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
}


class JsonHandler(tornado.web.RequestHandler):
    route = ""
    rt: Runtime

    def initialize(self, rt: Runtime) -> None:
        self.rt = rt
        self._started = time.perf_counter()
        bind(request_id=self.request_id, connection_id=None, user_id=None, conversation_id=None)

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
        if len(self.request.body) > MAX_JSON_BODY:
            raise PayloadTooLarge("request body too large", limit=MAX_JSON_BODY)
        try:
            body = orjson.loads(self.request.body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("request body is not valid JSON", code="bad_json") from exc
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object", code="bad_json")
        return body

    def query_int(self, name: str) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise InvalidRequest(f"{name} must be an integer", code="invalid_request") from exc

    async def principal(self) -> Principal:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("send 'Authorization: Bearer <access token>'")
        return await self.rt.chat.accounts.authenticate(token.strip())

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
                self.set_header("Retry-After", str(max(1, retry // 1000)))
        else:
            code = _HTTP_CODES.get(status_code, "internal")
            reason = self._reason if status_code != 500 else "internal server error"
            error = {"code": code, "message": reason}
        self.rt.metrics.errors.labels("http", str(error["code"])).inc()
        if status_code == 401:
            self.rt.metrics.auth_failures.labels("http", str(error["code"])).inc()
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"error": error}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ChatError) and value.status < 500:
            return  # a client error, answered with its code; not a server fault
        super().log_exception(typ, value, tb)

    def on_finish(self) -> None:
        route = self.route or "unmatched"
        self.rt.metrics.http_requests.labels(
            route, self.request.method or "", str(self.get_status())
        ).inc()
        self.rt.metrics.http_latency.labels(route).observe(time.perf_counter() - self._started)


class NotFoundHandler(JsonHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, reason="no such route")
