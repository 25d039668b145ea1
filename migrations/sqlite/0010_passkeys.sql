-- Passkeys (WebAuthn, `factors::passkey`).
-- * passkeys: a user's registered credentials. `cred_id` is the credential id (base64url, as
--   the authenticator names it), `passkey` webauthn-rs's serialized `Passkey` (the public key,
--   its algorithm and signature counter: nothing secret), `name` the user's label.
-- * passkey_ceremonies: a registration or sign-in started and not finished: the hash of a
--   random id (the sign-in's pending token for a second factor), the user, what it is for and
--   webauthn-rs's serialized state with its challenge. Taken (deleted) by the first answer, so
--   a challenge is good once; purged when expired.
CREATE TABLE passkeys (
    cred_id    TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    passkey    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);
CREATE TABLE passkey_ceremonies (
    id_hash    TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
