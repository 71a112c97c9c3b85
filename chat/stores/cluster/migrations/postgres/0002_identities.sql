-- Identities at OpenID Providers linked to users: (issuer, subject) is the provider's stable
-- key for a person; one user per identity.
CREATE TABLE identities (
    issuer text NOT NULL,
    subject text NOT NULL,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject)
);
