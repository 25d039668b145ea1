-- Users signed in through upstream identity providers: links by the provider's subject, and
-- the provider session behind each frontdoor session (for logout across the chain).
CREATE TABLE identity_links (
    idp        TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (idp, subject)
) STRICT;

CREATE INDEX identity_links_user ON identity_links (user_id);

CREATE TABLE idp_sessions (
    session_hash TEXT    NOT NULL PRIMARY KEY,
    idp          TEXT    NOT NULL,
    sid          TEXT,
    subject      TEXT    NOT NULL,
    id_token     TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX idp_sessions_sid ON idp_sessions (idp, sid);
CREATE INDEX idp_sessions_subject ON idp_sessions (idp, subject);
CREATE INDEX idp_sessions_expires ON idp_sessions (expires_at);
