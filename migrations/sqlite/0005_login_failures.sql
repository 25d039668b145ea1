-- Failed sign-in attempts counted against an account or a client address, and the ban they
-- led to; shared by every node on the store. `expires_at` is when the row stops mattering
-- (end of its counting window or of its ban), for the purge.
CREATE TABLE login_failures (
    subject      TEXT    NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    banned_until INTEGER,
    expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX login_failures_expires ON login_failures (expires_at);
