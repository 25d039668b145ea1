-- Single-use links of an account's life, mailed to a person: a password reset (`kind` =
-- 'reset', for the existing user `user_id`) or an invitation (`kind` = 'invite', creating an
-- account in `tenant` with `member_groups` and `roles`, JSON arrays). Only the hash of the
-- link's secret is kept (`token_hash`); `id` names the row to the people who manage it
-- (resend, revoke) without revealing the secret. `used` is set by the one redemption; the
-- purge removes rows past `expires_at`.
CREATE TABLE account_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    user_id    TEXT,
    member_groups TEXT NOT NULL DEFAULT '[]',
    roles      TEXT    NOT NULL DEFAULT '[]',
    created_by TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX account_tokens_user ON account_tokens (user_id, kind);
CREATE INDEX account_tokens_tenant ON account_tokens (tenant, kind);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);
