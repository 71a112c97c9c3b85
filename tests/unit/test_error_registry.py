"""The error registry (chat.domain.error_codes) is the one place error codes are declared: every
code a raise site in chat/ names is registered, statuses come from it, and the close codes it
names agree with chat.ws.close_codes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chat.domain import accounts, error_codes
from chat.domain.error_codes import BY_CODE, ERRORS, UnregisteredErrorCode
from chat.domain.errors import ChatError, Forbidden, NotFound, RateLimited
from chat.ws import close_codes

CHAT = Path(__file__).resolve().parents[2] / "chat"


def _error_classes(trees: list[ast.Module]) -> set[str]:
    """Names of ChatError and every class that derives from it, by name, across chat/."""
    names = {"ChatError"}
    grew = True
    while grew:
        grew = False
        for tree in trees:
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef) or node.name in names:
                    continue
                bases = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                if bases & names:
                    names.add(node.name)
                    grew = True
    return names


def code_literals(sources: dict[str, str]) -> list[tuple[str, str]]:
    """(where, code) for each error code a source names as a literal: `code=` passed to an
    error class, `code = "..."` in an error class's body, the first argument of `error_frame`,
    and a `{"type": "error", "code": ...}` dict."""
    trees = {name: ast.parse(text) for name, text in sources.items()}
    classes = _error_classes(list(trees.values()))
    found: list[tuple[str, str]] = []

    def literal(node: ast.expr | None) -> str | None:
        return (
            node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
        )

    for name, tree in trees.items():
        for node in ast.walk(tree):
            where = f"{name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called in classes:
                    for kw in node.keywords:
                        if kw.arg == "code":
                            value = literal(kw.value)
                            assert value is not None, f"{where}: a code must be a literal"
                            found.append((where, value))
                if called == "error_frame" and node.args and literal(node.args[0]):
                    found.append((where, str(literal(node.args[0]))))
            elif isinstance(node, ast.ClassDef) and node.name in classes:
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "code" for t in stmt.targets)
                        and literal(stmt.value)
                    ):
                        found.append((where, str(literal(stmt.value))))
            elif isinstance(node, ast.Dict):
                pairs = {
                    literal(k): literal(v) for k, v in zip(node.keys, node.values, strict=True) if k
                }
                if pairs.get("type") == "error" and pairs.get("code"):
                    found.append((where, str(pairs["code"])))
    return found


def test_every_code_named_in_chat_is_registered() -> None:
    sources = {str(p.relative_to(CHAT.parent)): p.read_text() for p in CHAT.rglob("*.py")}
    found = code_literals(sources)
    unregistered = [(where, code) for where, code in found if code not in BY_CODE]
    assert unregistered == []
    # The scan sees the raise sites it is meant to (a scan that finds nothing proves nothing).
    named = {code for _, code in found}
    assert {"not_member", "user_disabled", "bad_json", "not_recoverable", "internal"} <= named
    assert len(found) > 80


def test_the_scan_reports_an_unregistered_code() -> None:
    source = """
class Oops(NotFound):
    code = "no_such_code_a"

def f():
    raise Oops("x", code="no_such_code_b")
    raise ChatError("x", code="no_such_code_c")

def g():
    error_frame("no_such_code_d", "m")
    return {"type": "error", "code": "no_such_code_e"}
"""
    found = code_literals({"errors.py": "class NotFound(ChatError): pass", "m.py": source})
    assert sorted(code for _, code in found) == [f"no_such_code_{c}" for c in "abcde"]


def test_each_code_once() -> None:
    assert len(BY_CODE) == len(ERRORS)
    assert all(e.code.isidentifier() and e.code.islower() for e in ERRORS)
    assert all(e.doc and set(e.where) <= {"ws", "http"} and e.where for e in ERRORS)


def test_an_unregistered_code_cannot_be_raised() -> None:
    with pytest.raises(UnregisteredErrorCode, match="no_such_code"):
        ChatError("x", code="no_such_code")
    with pytest.raises(UnregisteredErrorCode, match="no_such_code"):

        class _Bad(ChatError):
            code = "no_such_code"


def test_status_comes_from_the_code() -> None:
    for entry in ERRORS:
        assert ChatError("m", code=entry.code).status == entry.http, entry.code
    # A specific code wins over the class's default: the class only picks the default code.
    assert NotFound("m").status == 404
    assert Forbidden("m", code="not_member").status == 403
    assert RateLimited("m", code="too_many_connections").status == 429
    assert ChatError("m", code="oidc_state").status == 401  # was the base class's 500


def test_generic_codes_one_per_status() -> None:
    statuses = [e.http for e in ERRORS if e.generic]
    assert len(statuses) == len(set(statuses))
    assert error_codes.generic_code(405) == "method_not_allowed"
    assert error_codes.generic_code(404) == "not_found"
    assert error_codes.generic_code(400) == "invalid_request"
    assert error_codes.generic_code(418) == "internal"
    assert all("http" in e.where for e in ERRORS if e.generic)


def test_close_codes_agree_with_the_registry() -> None:
    for entry in ERRORS:
        if entry.close is None:
            continue
        assert "ws" in entry.where, entry.code
        close = close_codes.BY_CODE[entry.close]  # every close the registry names exists
        # A retriable error closes with a reconnectable code, any other with a terminal one.
        assert close.reconnect == entry.retriable, entry.code
    assert tuple(c.code for c in close_codes.TABLE if not c.reconnect) == close_codes.TERMINAL
    assert close_codes.SESSION_REVOKED.code == accounts.CLOSE_SESSION_REVOKED
    assert error_codes.close_code_for("user_disabled") == accounts.CLOSE_USER_DISABLED


def _old_if_chain(code: str) -> int:
    """The gateway's close policy before the registry (chat/ws/gateway.py, auth errors)."""
    if code == "too_many_connections":
        return 4429
    if code == "user_disabled":
        return 4403
    if code in ("bad_json", "unknown_type", "invalid_request"):
        return 4400
    if BY_CODE[code].http >= 500:
        return 1013
    return 4401


def test_for_error_keeps_the_gateway_policy() -> None:
    changed = {
        e.code: (_old_if_chain(e.code), close_codes.for_error(e.code).code)
        for e in ERRORS
        if _old_if_chain(e.code) != close_codes.for_error(e.code).code
    }
    # Only as documented: `internal` before `ready` is 1011 (the gateway's own path for an
    # unexpected exception); `rate_limited` (never raised before `ready`) is "come back later".
    assert changed == {"internal": (1013, 1011), "rate_limited": (4401, 1013)}
    assert close_codes.for_error("no_such_code") is close_codes.UNAUTHENTICATED
    assert error_codes.close_code_for("no_such_code") is None
