-- PKCE is required of every client (RFC 9700); `pkce_optional` is a confidential app's opt-out.
-- Apps registered before this rule were registered without it: they keep working as they did,
-- and an operator turns the requirement on per app (API, settings page). New apps get FALSE.
ALTER TABLE apps ADD COLUMN pkce_optional BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE apps SET pkce_optional = TRUE WHERE public = FALSE;
