"""SQLite schema, created idempotently at open. Both files get every table; each store uses
its own (accounts.db: users, conversations, sessions; messages.db: log and archive)."""

_EVENT_COLUMNS = """\
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    body TEXT NOT NULL,
    target_seq INTEGER,
    ts INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
"""
"""The columns of an event, in the order the positional INSERTs use: the log's rows and the
archive's events are the same record."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    is_admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (issuer, subject)
);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    direct_key TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    read_seq INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_by_user ON members(user_id);
CREATE TABLE IF NOT EXISTS sessions (
    family_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    expires_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS session_spent (
    family_id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    PRIMARY KEY (family_id, token_hash)
);
CREATE TABLE IF NOT EXISTS session_grace (
    family_id TEXT PRIMARY KEY,
    previous_hash TEXT NOT NULL,
    rotated_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS log_heads (
    conversation_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    trimmed_to INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS log (
{event_columns});
CREATE TABLE IF NOT EXISTS log_dedupe (
    conversation_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    target_seq INTEGER,
    ts INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, sender_id, client_id)
);

CREATE TABLE IF NOT EXISTS archive_events (
{event_columns});
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sender_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    body TEXT NOT NULL,
    ts INTEGER NOT NULL,
    edited_ts INTEGER,
    changed_by_seq INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS messages_by_ts ON messages(ts);
CREATE TABLE IF NOT EXISTS watermarks (
    conversation_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
""".replace("{event_columns}", _EVENT_COLUMNS)
