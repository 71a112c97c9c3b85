-- Users, conversations, membership and read pointers. Times are milliseconds since the epoch
-- (bigint), as everywhere in the domain. members.user_id has no foreign key to users: the
-- embedded store has none either, and the contract suite holds both to the same behaviour.
CREATE TABLE users (
    id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    display_name text NOT NULL,
    password_hash text NOT NULL,
    created_at bigint NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    is_admin boolean NOT NULL DEFAULT false
);

CREATE TABLE conversations (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('direct', 'group')),
    title text NOT NULL,
    created_by text NOT NULL,
    created_at bigint NOT NULL,
    -- One direct conversation per pair of users: the unique key decides concurrent creations.
    direct_key text UNIQUE
);

CREATE TABLE members (
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'member')),
    read_seq bigint NOT NULL DEFAULT 0,
    joined_at bigint NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE INDEX members_by_user ON members (user_id);
