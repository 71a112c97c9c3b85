"""Unicode-aware case folding for SQLite, whose own LIKE and lower() fold only ASCII (so
`REUNIÃO` never found `reunião`). The functions are registered on the connection and used by
message search and people search; the cluster stores match the same way (MongoDB `$regex` with
the `i` option, PostgreSQL `lower()` under an ICU collation)."""

from __future__ import annotations

import sqlite3
import unicodedata

from chat.stores.embedded.db import Database


def fold(text: str) -> str:
    """The comparison form: NFC (composed and decomposed accents compare equal), then
    Unicode case folding (`Ã` -> `ã`, capital, final and small sigma alike)."""
    return unicodedata.normalize("NFC", text).casefold()


def _contains(haystack: str | None, folded_needle: str) -> int:
    return int(haystack is not None and folded_needle in fold(haystack))


def _word_prefix(name: str | None, folded_prefix: str) -> int:
    """The name, or one of its space-separated words, starts with the prefix."""
    if name is None:
        return 0
    folded = fold(name)
    return int(folded.startswith(folded_prefix) or f" {folded_prefix}" in folded)


def _register(raw: sqlite3.Connection) -> None:
    raw.create_function("chat_contains", 2, _contains, deterministic=True)
    raw.create_function("chat_word_prefix", 2, _word_prefix, deterministic=True)


async def ensure_functions(db: Database) -> None:
    """Register the functions on the store's connection (idempotent; once per Database)."""
    if getattr(db, "_chat_fold_ready", False):
        return
    await db.run(_register)
    db._chat_fold_ready = True  # type: ignore[attr-defined]
