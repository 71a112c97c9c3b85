"""Driver failures become the domain's `Unavailable`, naming the dependency, so a caller (the
HTTP layer, the worker's retry policy) can tell "try again later" from a bug without knowing
which driver raised it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from chat.domain.errors import Unavailable


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def unavailable(dependency: str, exc: BaseException, where: str = "") -> Unavailable:
    at = f" at {where}" if where else ""
    return Unavailable(
        f"{dependency}{at} is unavailable: {type(exc).__name__}: {exc}",
        code="dependency_unavailable",
        dependency=dependency,
    )


@contextmanager
def translated(
    dependency: str, errors: tuple[type[BaseException], ...], where: str = ""
) -> Iterator[None]:
    """Re-raise connection-level `errors` as `Unavailable` (retriable); let the rest through."""
    try:
        yield
    except errors as exc:
        raise unavailable(dependency, exc, where) from exc
