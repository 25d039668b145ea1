-- frontdoor PostgreSQL schema, version 1: the same tables, columns, keys and indexes as the
-- SQLite schema after its migrations 0001-0004 (migrations/sqlite), in one file.
--
-- Conventions, as in SQLite: times are unix seconds (BIGINT); lists are JSON arrays of strings
-- kept as TEXT (decoded by the store, like SQLite's); no foreign keys between tables: codes
-- name the grant their exchange will create (it does not exist yet), and deletions that
-- cascade are done explicitly by the store. Flags are BOOLEAN here, 0/1 in SQLite.
--
-- Differences that keep the store's behaviour identical to SQLite's:
-- * Text that the store sorts by (users.email, users.tenant, users.id, consents.scope) is
--   COLLATE "C": bytewise, like SQLite's default BINARY collation, whatever the database's
--   locale.
-- * apps, api_tokens and contacts have a `seq` identity column standing in for SQLite's
--   rowid: the tie-breaker (insertion order) of their lists. The store never writes it.
--
-- sqlx runs migrations under a PostgreSQL advisory lock (pg_advisory_lock), so nodes
-- starting at the same time apply them one after the other.

CREATE TABLE users (
    id            TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    tenant        TEXT    COLLATE "C" NOT NULL,
    email         TEXT    COLLATE "C" NOT NULL, -- lowercased by the store
    name          TEXT    NOT NULL,
    picture       TEXT,
    member_groups TEXT    NOT NULL DEFAULT '[]',
    roles         TEXT    NOT NULL DEFAULT '[]',
    password_hash TEXT,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT  NOT NULL,
    UNIQUE (tenant, email)
);

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
    public                    BOOLEAN NOT NULL DEFAULT FALSE,
    first_party               BOOLEAN NOT NULL DEFAULT FALSE,
    active                    BOOLEAN NOT NULL DEFAULT TRUE,
    owner                     TEXT,
    created_at                BIGINT  NOT NULL,
    audiences                 TEXT    NOT NULL DEFAULT '[]',
    seq                       BIGINT  GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX apps_tenant_created ON apps (tenant, created_at);
CREATE INDEX apps_created ON apps (created_at);

CREATE TABLE sessions (
    id_hash     TEXT   NOT NULL PRIMARY KEY,
    user_id     TEXT   NOT NULL,
    tenant      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    auth_method TEXT   NOT NULL
);

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
    auth_time       BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    grant_id        TEXT    NOT NULL,
    used            BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX codes_expires ON codes (expires_at);
CREATE INDEX codes_client ON codes (client_id);

CREATE TABLE grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX grants_client ON grants (client_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    auth_time  BIGINT  NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- One row per approved (user, client, scope).
CREATE TABLE consents (
    user_id   TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, client_id, scope)
);

CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    tenant       TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    read_only    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    seq          BIGINT  GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant);

-- At most one pending code per (tenant, email); email lowercased by the store.
CREATE TABLE otp_codes (
    tenant     TEXT   NOT NULL,
    email      TEXT   NOT NULL,
    code_hash  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, email)
);

CREATE INDEX otp_codes_expires ON otp_codes (expires_at);

CREATE TABLE contacts (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    hash_hash   TEXT    NOT NULL UNIQUE,
    path_prefix TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX contacts_tenant ON contacts (tenant);
CREATE INDEX contacts_expires ON contacts (expires_at);

-- Users signed in through upstream identity providers: links by the provider's subject, and
-- the provider session behind each frontdoor session (for logout across the chain).
CREATE TABLE identity_links (
    idp        TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (idp, subject)
);

CREATE INDEX identity_links_user ON identity_links (user_id);

CREATE TABLE idp_sessions (
    session_hash TEXT   NOT NULL PRIMARY KEY,
    idp          TEXT   NOT NULL,
    sid          TEXT,
    subject      TEXT   NOT NULL,
    id_token     TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX idp_sessions_sid ON idp_sessions (idp, sid);
CREATE INDEX idp_sessions_subject ON idp_sessions (idp, subject);
CREATE INDEX idp_sessions_expires ON idp_sessions (expires_at);
