-- frontdoor SQLite schema, version 2: API tokens, emailed one-time codes, contacts.
-- Same conventions as version 1: unix seconds, 0/1 booleans, no foreign keys.

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    tenant       TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    read_only    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant);

-- At most one pending code per (tenant, email); email lowercased by the store.
CREATE TABLE otp_codes (
    tenant     TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    code_hash  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, email)
) STRICT;

CREATE INDEX otp_codes_expires ON otp_codes (expires_at);

CREATE TABLE contacts (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    hash_hash   TEXT    NOT NULL UNIQUE,
    path_prefix TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX contacts_tenant ON contacts (tenant);
CREATE INDEX contacts_expires ON contacts (expires_at);
