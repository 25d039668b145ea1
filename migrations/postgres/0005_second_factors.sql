-- Second factors (TOTP and recovery codes) and how a session was authenticated.
-- * totp_factors: one authenticator app per user. `secret_sealed` is the TOTP secret encrypted
--   with the server's factor key (AES-256-GCM, see SECURITY.md); `confirmed` turns true after
--   the first valid code; `last_step` is the last time step accepted, so that a code is good
--   once (RFC 6238 §5.2).
-- * recovery_codes: single-use codes, keyed hashes only; `used` once spent.
-- * sessions.amr / codes.amr: the RFC 8176 methods the session was authenticated with
--   (space-separated: `pwd`, `otp`, `mfa`), carried into the codes issued in it and from there
--   into ID tokens. Sessions from before this migration count as one factor.
CREATE TABLE totp_factors (
    user_id       TEXT    NOT NULL PRIMARY KEY,
    secret_sealed TEXT    NOT NULL,
    confirmed     BOOLEAN NOT NULL DEFAULT FALSE,
    last_step     BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);
CREATE TABLE recovery_codes (
    user_id   TEXT    NOT NULL,
    code_hash TEXT    NOT NULL,
    used      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, code_hash)
);
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE codes ADD COLUMN amr TEXT NOT NULL DEFAULT '';
-- * pending_factors: half-signed-in browsers (a right first factor, the second still to come):
--   the hash of a random token the second-factor form carries, the keyed hash of the browser's
--   CSRF cookie it is bound to, and a short expiry. Taken (deleted) by the first submission.
CREATE TABLE pending_factors (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL,
    binding    TEXT   NOT NULL,
    amr        TEXT   NOT NULL,
    return_to  TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
