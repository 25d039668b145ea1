-- frontdoor SQLite schema, version 1.
-- Times are unix seconds; booleans are 0/1; lists are JSON arrays of strings.
-- No foreign keys between tables: codes name the grant their exchange will create
-- (it does not exist yet), and deletions that cascade are done explicitly by the store.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant        TEXT    NOT NULL,
    email         TEXT    NOT NULL, -- lowercased by the store
    name          TEXT    NOT NULL,
    picture       TEXT,
    member_groups TEXT    NOT NULL DEFAULT '[]',
    roles         TEXT    NOT NULL DEFAULT '[]',
    password_hash TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    UNIQUE (tenant, email)
) STRICT;

CREATE INDEX users_email ON users (email);

CREATE TABLE apps (
    client_id                 TEXT    NOT NULL PRIMARY KEY,
    tenant                    TEXT    NOT NULL,
    name                      TEXT    NOT NULL,
    description               TEXT    NOT NULL,
    secret_hash               TEXT,
    redirect_uris             TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    scopes                    TEXT    NOT NULL DEFAULT '[]',
    grant_types               TEXT    NOT NULL DEFAULT '[]',
    public                    INTEGER NOT NULL DEFAULT 0,
    first_party               INTEGER NOT NULL DEFAULT 0,
    active                    INTEGER NOT NULL DEFAULT 1,
    owner                     TEXT,
    created_at                INTEGER NOT NULL
) STRICT;

CREATE INDEX apps_tenant_created ON apps (tenant, created_at);
CREATE INDEX apps_created ON apps (created_at);

CREATE TABLE sessions (
    id_hash     TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    auth_method TEXT    NOT NULL
) STRICT;

CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE codes (
    code_hash       TEXT    NOT NULL PRIMARY KEY,
    client_id       TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    session_id_hash TEXT,
    redirect_uri    TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    nonce           TEXT,
    code_challenge  TEXT,
    auth_time       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    grant_id        TEXT    NOT NULL,
    used            INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX codes_expires ON codes (expires_at);
CREATE INDEX codes_client ON codes (client_id);

CREATE TABLE grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX grants_client ON grants (client_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    auth_time  INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- One row per approved (user, client, scope).
CREATE TABLE consents (
    user_id   TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope     TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id, scope)
) STRICT, WITHOUT ROWID;

CREATE INDEX consents_client ON consents (client_id);
