"""The generated copies of the error registry and the close-code table (docs/protocol.md's
tables, the web client's terminal set) match what `python -m chat.ws.tables` writes now."""

from __future__ import annotations

import re

import pytest

from chat.domain.error_codes import ERRORS
from chat.ws import close_codes, tables


def test_committed_copies_match() -> None:
    assert tables.main(["--check"]) == 0, "run: python -m chat.ws.tables"


def test_a_hand_edit_of_a_region_is_drift() -> None:
    committed = tables.PROTOCOL_MD.read_text(encoding="utf-8")
    edited = committed.replace(
        "| 4429 | too many connections for this user | no |", "| 4429 | x | yes |"
    )
    assert edited != committed
    assert tables.render_markdown(edited) == committed
    without = re.sub(
        r"<!-- BEGIN GENERATED errors.*?END GENERATED errors -->", "", committed, flags=re.S
    )
    with pytest.raises(ValueError, match="errors"):
        tables.render_markdown(without)


def test_docs_list_every_code_and_close_code() -> None:
    doc = tables.PROTOCOL_MD.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \| .* \| (ws|http|ws, http) \| (.*) \|$", doc, re.M)
    assert [code for code, _, _ in rows] == [e.code for e in ERRORS]
    for (code, _, close), entry in zip(rows, ERRORS, strict=True):
        assert (str(entry.close) in close) if entry.close else not re.search(r"\d{4}", close), code
    documented = {int(c) for c in re.findall(r"^\| (\d{4}) \| ", doc, re.M)}
    assert documented == set(close_codes.BY_CODE)


def test_web_client_uses_the_generated_terminal_set() -> None:
    js = tables.CLOSE_CODES_JS.read_text(encoding="utf-8")
    terminal = {int(c) for c in re.search(r"new Set\(\[([0-9, ]*)\]\)", js)[1].split(",")}  # type: ignore[index]
    assert terminal == {c.code for c in close_codes.TABLE if not c.reconnect}
    assert 4008 not in terminal and 1012 not in terminal and 1006 not in terminal
    socket = (tables.CLOSE_CODES_JS.parent / "socket.js").read_text(encoding="utf-8")
    assert 'import { TERMINAL } from "./close_codes.js";' in socket
    assert "const TERMINAL" not in socket  # no second copy
