-- Resources an app's client_credentials tokens may be issued for (RFC 8707 `resource`).
ALTER TABLE apps ADD COLUMN audiences TEXT NOT NULL DEFAULT '[]';
