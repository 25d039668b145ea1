-- OpenID Connect Back-Channel Logout 1.0 to frontdoor's own apps.
-- * apps.backchannel_logout_uri: where frontdoor POSTs a logout token when a session in which
--   the app got tokens ends (NULL: the app is not told).
-- * sessions.sid: the session's public identifier, the `sid` of ID and logout tokens. Random
--   and unrelated to the cookie's secret id (and to its hash, the key of this table). Sessions
--   from before this migration get one here.
-- * grants.sid: the session an authorization was made in (NULL for grants made without a
--   browser session: the login API, client_credentials), so that logout finds the apps to tell.
ALTER TABLE apps ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE sessions ADD COLUMN sid TEXT NOT NULL DEFAULT '';
UPDATE sessions SET sid = replace(gen_random_uuid()::text, '-', '') WHERE sid = '';
ALTER TABLE grants ADD COLUMN sid TEXT;
CREATE INDEX grants_sid ON grants (sid);
