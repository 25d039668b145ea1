//! Every statement of the store, written once with `$N` placeholders (sqlx-sqlite binds them by
//! number as PostgreSQL does) and built at compile time. Where the backends differ in one
//! clause only, a `Spellings` holds both texts and the dialect picks its own.

use super::rows::{
    account_token_columns, api_token_columns, app_columns, code_columns, contact_columns,
    grant_columns, idp_session_columns, login_failure_columns, passkey_ceremony_columns,
    passkey_columns, pending_factor_columns, refresh_columns, session_columns, totp_columns,
    user_columns,
};

/// The condition, in a statement on `refresh_tokens`, that the token's grant exists and is not
/// revoked: a token of a revoked grant is not found, as if it had been deleted (`REVOKE_GRANT`).
macro_rules! live_grant {
    () => {
        " AND EXISTS (SELECT 1 FROM grants WHERE grants.id = refresh_tokens.grant_id \
         AND grants.revoked = FALSE)"
    };
}

/// One statement as each backend spells it.
pub(crate) struct Spellings {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A single-statement change other nodes must hear of: PostgreSQL announces it with
/// `RETURNING pg_notify(channel, payload)` (once per changed row, delivered on commit), the
/// two parameters after the statement's own; SQLite has no other node to tell.
macro_rules! announced {
    ($sql:expr, $channel:literal, $payload:literal) => {
        Spellings {
            sqlite: $sql,
            postgres: concat!(
                $sql,
                " RETURNING pg_notify($",
                $channel,
                ", $",
                $payload,
                ")"
            ),
        }
    };
}

/// A list whose ties are broken by insertion order: SQLite's rowid, PostgreSQL's `seq`
/// identity column standing in for it.
macro_rules! by_insertion {
    ($head:expr, $tail:literal) => {
        Spellings {
            sqlite: concat!($head, " rowid", $tail),
            postgres: concat!($head, " seq", $tail),
        }
    };
}

/// A read that locks the row it finds until the transaction ends. SQLite's write
/// transaction (`BEGIN IMMEDIATE`) already excludes every other writer.
macro_rules! locking {
    ($sql:expr) => {
        Spellings {
            sqlite: $sql,
            postgres: concat!($sql, " FOR UPDATE"),
        }
    };
}

pub(crate) const PING: &str = "SELECT 1";

pub(crate) const INSERT_USER: &str = concat!(
    "INSERT INTO users (",
    user_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
pub(crate) const GET_USER: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
pub(crate) const FIND_USER_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE tenant = $1 AND email = $2"
);
pub(crate) const LIST_TENANT_USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE tenant = $1 ORDER BY email, id"
);
pub(crate) const LIST_USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users ORDER BY email, tenant, id"
);
pub(crate) const SET_USER_ACTIVE: Spellings =
    announced!("UPDATE users SET active = $1 WHERE id = $2", 3, 4);
pub(crate) const UPDATE_USER: Spellings = announced!(
    "UPDATE users SET name = $1, picture = $2, member_groups = $3, roles = $4, \
     password_hash = $5, active = $6 WHERE id = $7",
    8,
    9
);
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";
/// What goes with a deleted user, in order (its refresh tokens before its grants).
pub(crate) const DELETE_USER_REST: [&str; 12] = [
    "DELETE FROM refresh_tokens \
     WHERE user_id = $1 OR grant_id IN (SELECT id FROM grants WHERE user_id = $1)",
    "DELETE FROM grants WHERE user_id = $1",
    "DELETE FROM codes WHERE user_id = $1",
    "DELETE FROM sessions WHERE user_id = $1",
    "DELETE FROM api_tokens WHERE user_id = $1",
    "DELETE FROM consents WHERE user_id = $1",
    "DELETE FROM totp_factors WHERE user_id = $1",
    "DELETE FROM recovery_codes WHERE user_id = $1",
    "DELETE FROM pending_factors WHERE user_id = $1",
    "DELETE FROM account_tokens WHERE user_id = $1",
    "DELETE FROM passkeys WHERE user_id = $1",
    "DELETE FROM passkey_ceremonies WHERE user_id = $1",
];

pub(crate) const INSERT_APP: &str = concat!(
    "INSERT INTO apps (",
    app_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
);
pub(crate) const GET_APP: &str =
    concat!("SELECT ", app_columns!(), " FROM apps WHERE client_id = $1");
pub(crate) const LIST_TENANT_APPS: Spellings = by_insertion!(
    concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps WHERE tenant = $1 ORDER BY created_at,"
    ),
    ""
);
pub(crate) const LIST_APPS: Spellings = by_insertion!(
    concat!("SELECT ", app_columns!(), " FROM apps ORDER BY created_at,"),
    ""
);
pub(crate) const SET_APP_ACTIVE: Spellings =
    announced!("UPDATE apps SET active = $1 WHERE client_id = $2", 3, 4);
pub(crate) const UPDATE_APP: Spellings = announced!(
    "UPDATE apps SET name = $1, description = $2, secret_hash = $3, redirect_uris = $4, \
     post_logout_redirect_uris = $5, scopes = $6, grant_types = $7, public = $8, \
     first_party = $9, active = $10, owner = $11, audiences = $12, pkce_optional = $13, \
     backchannel_logout_uri = $14 WHERE client_id = $15",
    16,
    17
);
pub(crate) const DELETE_APP: &str = "DELETE FROM apps WHERE client_id = $1";
/// What goes with a deleted app.
pub(crate) const DELETE_APP_REST: [&str; 4] = [
    "DELETE FROM refresh_tokens WHERE client_id = $1",
    "DELETE FROM grants WHERE client_id = $1",
    "DELETE FROM codes WHERE client_id = $1",
    "DELETE FROM consents WHERE client_id = $1",
];

pub(crate) const INSERT_SESSION: &str = concat!(
    "INSERT INTO sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
pub(crate) const GET_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE id_hash = $1"
);
pub(crate) const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen = $1 WHERE id_hash = $2";
pub(crate) const DELETE_SESSION: Spellings =
    announced!("DELETE FROM sessions WHERE id_hash = $1", 2, 3);
pub(crate) const COUNT_SESSIONS: &str = "SELECT COUNT(*) FROM sessions WHERE expires_at > $1";
pub(crate) const PURGE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";
/// What else expires, after the sessions.
pub(crate) const PURGE_REST: [&str; 9] = [
    "DELETE FROM codes WHERE expires_at <= $1",
    "DELETE FROM refresh_tokens WHERE expires_at <= $1",
    "DELETE FROM otp_codes WHERE expires_at <= $1",
    "DELETE FROM contacts WHERE expires_at <= $1",
    "DELETE FROM idp_sessions WHERE expires_at <= $1",
    "DELETE FROM login_failures WHERE expires_at <= $1",
    "DELETE FROM pending_factors WHERE expires_at <= $1",
    "DELETE FROM account_tokens WHERE expires_at <= $1",
    "DELETE FROM passkey_ceremonies WHERE expires_at <= $1",
];

pub(crate) const INSERT_CODE: &str = concat!(
    "INSERT INTO codes (",
    code_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
/// Spends a code: under any concurrency exactly one caller gets the row back.
pub(crate) const SPEND_CODE: &str = concat!(
    "UPDATE codes SET used = TRUE WHERE code_hash = $1 AND used = FALSE RETURNING ",
    code_columns!()
);
pub(crate) const GET_CODE: &str = concat!(
    "SELECT ",
    code_columns!(),
    " FROM codes WHERE code_hash = $1"
);

pub(crate) const INSERT_GRANT: &str = concat!(
    "INSERT INTO grants (",
    grant_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
/// The active apps with a back-channel logout URI that got a grant in session `sid`.
pub(crate) const LOGOUT_TARGETS: &str = concat!(
    "SELECT ",
    app_columns!(),
    " FROM apps WHERE backchannel_logout_uri IS NOT NULL AND active = TRUE \
     AND client_id IN (SELECT client_id FROM grants WHERE sid = $1) ORDER BY client_id"
);
pub(crate) const GET_GRANT: &str =
    concat!("SELECT ", grant_columns!(), " FROM grants WHERE id = $1");
/// Revoking a grant leaves its refresh tokens in place, dead: every statement that reads or
/// spends one asks for its grant to be live (`live_grant!`). Deleting them needed an index on
/// `refresh_tokens.grant_id`, and that index cost each rotation a write at a random place of
/// it (a page per rotation, most of a commit's bytes); the dead rows go with the expiry purge.
pub(crate) const REVOKE_GRANT: Spellings =
    announced!("UPDATE grants SET revoked = TRUE WHERE id = $1", 2, 3);

pub(crate) const INSERT_REFRESH_TOKEN: &str = concat!(
    "INSERT INTO refresh_tokens (",
    refresh_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
/// Spends a refresh token: under any concurrency exactly one caller gets the row back.
pub(crate) const SPEND_REFRESH_TOKEN: &str = concat!(
    "UPDATE refresh_tokens SET used = TRUE WHERE token_hash = $1 AND used = FALSE",
    live_grant!(),
    " RETURNING ",
    refresh_columns!()
);
/// The spend of refresh tokens that are unused and whose grant is live, as the batch
/// statements of both backends begin it.
macro_rules! spend_live_refresh_tokens {
    () => {
        concat!(
            "UPDATE refresh_tokens SET used = TRUE WHERE used = FALSE",
            live_grant!()
        )
    };
}
/// SQLite's spend of a batch of rotations (`store::rotation_batch`), in its transaction: this, one
/// bound hash per rotation separated by commas, then `SPEND_REFRESH_TOKENS_TAIL`. Each fresh
/// token comes back once, however often the batch names it.
pub(crate) const SPEND_REFRESH_TOKENS_HEAD: &str =
    concat!(spend_live_refresh_tokens!(), " AND token_hash IN (");
pub(crate) const SPEND_REFRESH_TOKENS_TAIL: &str = concat!(") RETURNING ", refresh_columns!());

/// The successors of a batch's rotations, in one `INSERT … SELECT`: the text before a
/// `VALUES` list of (predecessor hash, successor hash, client id, now, successor expiry), one
/// row per rotation with a successor, whose predecessors are the rows of relation `$parents`.
/// With `successors_tail!($parents)` after the list this is the one place the rotation rule
/// is written: a successor keeps its predecessor's grant, user, full scope and `auth_time`, and
/// is stored only when the predecessor was issued to the client presenting it and has not
/// expired.
macro_rules! successors_head {
    ($parents:literal) => {
        concat!(
            "INSERT INTO refresh_tokens (",
            refresh_columns!(),
            ") SELECT v.column2, ",
            $parents,
            ".grant_id, ",
            $parents,
            ".client_id, ",
            $parents,
            ".user_id, ",
            $parents,
            ".scope, v.column5, ",
            $parents,
            ".auth_time FROM ",
            $parents,
            " JOIN ("
        )
    };
}
macro_rules! successors_tail {
    ($parents:literal) => {
        concat!(
            ") AS v ON ",
            $parents,
            ".token_hash = v.column1 WHERE ",
            $parents,
            ".client_id = v.column3 AND ",
            $parents,
            ".expires_at > v.column4"
        )
    };
}

/// SQLite's commit of a batch of rotations (`store::sqlite::rotations`), one transaction:
/// the successors of the tokens the batch will spend, stored before they are spent (the write
/// lock is held throughout, so "unused now" is "spent by this batch"): this, the `VALUES`
/// list, then `SQLITE_STORE_SUCCESSORS_TAIL`; then the spend.
pub(crate) const SQLITE_STORE_SUCCESSORS_HEAD: &str = successors_head!("refresh_tokens");
pub(crate) const SQLITE_STORE_SUCCESSORS_TAIL: &str = concat!(
    successors_tail!("refresh_tokens"),
    " AND refresh_tokens.used = FALSE",
    live_grant!()
);
/// After the spend, in the same transaction: the users of the tokens it spent (this, one
/// bound id per user, then `SQLITE_SPENT_USERS_TAIL`).
pub(crate) const SQLITE_SPENT_USERS_HEAD: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE id IN (");
pub(crate) const SQLITE_SPENT_USERS_TAIL: &str = ")";

/// PostgreSQL's commit of a batch of rotations, one statement (`store::postgres`) of one text
/// whatever the batch's size (arrays, not lists of placeholders), so that each connection
/// prepares it once: the spend of the hashes in `$1`, the successors of what it spent (the
/// arrays `$2` to `$6` are the columns of the `VALUES` rows SQLite binds one by one), and each
/// spent token with its user's columns (NULL when the user is gone). `= ANY` scans the index in
/// key order, as an `IN` list does, so two batches lock shared rows in one order.
pub(crate) const PG_COMMIT_ROTATIONS: &str = concat!(
    "WITH spent AS (",
    spend_live_refresh_tokens!(),
    " AND token_hash = ANY($1) RETURNING ",
    refresh_columns!(),
    "), stored AS (",
    successors_head!("spent"),
    "SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) \
     AS u(column1, column2, column3, column4, column5)",
    successors_tail!("spent"),
    ") SELECT spent.*, ",
    user_columns!(),
    " FROM spent LEFT JOIN users ON users.id = spent.user_id"
);

pub(crate) const GET_REFRESH_TOKEN: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_tokens WHERE token_hash = $1",
    live_grant!()
);
pub(crate) const REFRESH_TOKEN_USED: &str = concat!(
    "SELECT used FROM refresh_tokens WHERE token_hash = $1",
    live_grant!()
);

pub(crate) const GET_CONSENT: &str =
    "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 ORDER BY scope";
pub(crate) const INSERT_API_TOKEN: &str = concat!(
    "INSERT INTO api_tokens (",
    api_token_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
pub(crate) const FIND_API_TOKEN: &str = concat!(
    "SELECT ",
    api_token_columns!(),
    " FROM api_tokens WHERE token_hash = $1"
);
pub(crate) const GET_API_TOKEN: &str = concat!(
    "SELECT ",
    api_token_columns!(),
    " FROM api_tokens WHERE id = $1"
);
/// The head of the API-token list, before its filters (` AND …`) and its order.
pub(crate) const LIST_API_TOKENS_HEAD: &str = concat!(
    "SELECT ",
    api_token_columns!(),
    " FROM api_tokens WHERE TRUE"
);
pub(crate) const LIST_API_TOKENS_ORDER: Spellings =
    by_insertion!(" ORDER BY created_at DESC,", " DESC");
pub(crate) const REVOKE_API_TOKEN: Spellings = announced!(
    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    3,
    4
);
pub(crate) const TOUCH_API_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";

/// Replaces any pending code of the same tenant and email.
pub(crate) const PUT_OTP: &str = "INSERT INTO otp_codes \
     (tenant, email, code_hash, created_at, expires_at, attempts) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (tenant, email) DO UPDATE SET code_hash = EXCLUDED.code_hash, \
     created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
     attempts = EXCLUDED.attempts";
pub(crate) const GET_OTP: Spellings = locking!(
    "SELECT code_hash, expires_at, attempts FROM otp_codes WHERE tenant = $1 AND email = $2"
);
pub(crate) const COUNT_OTP_ATTEMPT: &str =
    "UPDATE otp_codes SET attempts = $1 WHERE tenant = $2 AND email = $3";
pub(crate) const DELETE_OTP: &str = "DELETE FROM otp_codes WHERE tenant = $1 AND email = $2";

pub(crate) const INSERT_CONTACT: &str = concat!(
    "INSERT INTO contacts (",
    contact_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
pub(crate) const FIND_CONTACT: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts WHERE hash_hash = $1"
);
pub(crate) const LIST_TENANT_CONTACTS: Spellings = by_insertion!(
    concat!(
        "SELECT ",
        contact_columns!(),
        " FROM contacts WHERE tenant = $1 ORDER BY created_at DESC,"
    ),
    " DESC"
);
pub(crate) const LIST_CONTACTS: Spellings = by_insertion!(
    concat!(
        "SELECT ",
        contact_columns!(),
        " FROM contacts ORDER BY created_at DESC,"
    ),
    " DESC"
);
pub(crate) const REVOKE_CONTACT: Spellings =
    announced!("UPDATE contacts SET revoked = TRUE WHERE id = $1", 2, 3);

pub(crate) const FIND_IDENTITY_LINK: &str =
    "SELECT user_id FROM identity_links WHERE idp = $1 AND subject = $2";
/// Replaces an earlier link of the same subject.
pub(crate) const LINK_IDENTITY: &str = "INSERT INTO identity_links \
     (idp, subject, user_id, created_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (idp, subject) DO UPDATE SET user_id = EXCLUDED.user_id";
/// Replaces an earlier record of the same session.
pub(crate) const PUT_IDP_SESSION: &str = concat!(
    "INSERT INTO idp_sessions (",
    idp_session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (session_hash) DO UPDATE SET idp = EXCLUDED.idp, sid = EXCLUDED.sid, \
     subject = EXCLUDED.subject, id_token = EXCLUDED.id_token, expires_at = EXCLUDED.expires_at"
);
pub(crate) const GET_IDP_SESSION: &str = concat!(
    "SELECT ",
    idp_session_columns!(),
    " FROM idp_sessions WHERE session_hash = $1"
);
pub(crate) const END_IDP_SESSIONS_BY_SID: &str =
    "DELETE FROM idp_sessions WHERE idp = $1 AND sid = $2 RETURNING session_hash";
pub(crate) const END_IDP_SESSIONS_BY_SUBJECT: &str =
    "DELETE FROM idp_sessions WHERE idp = $1 AND subject = $2 RETURNING session_hash";
pub(crate) const DELETE_SESSION_QUIETLY: &str =
    "DELETE FROM sessions WHERE id_hash = $1 RETURNING user_id, sid";
/// Every session of a user but one (`$2`, a hash; '' keeps none).
pub(crate) const DELETE_USER_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2 RETURNING id_hash, user_id, sid";
/// A session's new id hash; its provider session follows it.
pub(crate) const REKEY_SESSION: &str = "UPDATE sessions SET id_hash = $2 WHERE id_hash = $1";
pub(crate) const REKEY_IDP_SESSION: &str =
    "UPDATE idp_sessions SET session_hash = $2 WHERE session_hash = $1";

pub(crate) const INSERT_ACCOUNT_TOKEN: &str = concat!(
    "INSERT INTO account_tokens (",
    account_token_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
pub(crate) const GET_ACCOUNT_TOKEN: &str = concat!(
    "SELECT ",
    account_token_columns!(),
    " FROM account_tokens WHERE token_hash = $1"
);
/// Spends a link: under any concurrency exactly one caller gets the row back.
pub(crate) const SPEND_ACCOUNT_TOKEN: &str = concat!(
    "UPDATE account_tokens SET used = TRUE WHERE token_hash = $1 AND used = FALSE RETURNING ",
    account_token_columns!()
);
pub(crate) const GET_ACCOUNT_TOKEN_BY_ID: &str = concat!(
    "SELECT ",
    account_token_columns!(),
    " FROM account_tokens WHERE id = $1"
);
/// The links of one kind in a tenant, newest first.
pub(crate) const LIST_ACCOUNT_TOKENS: &str = concat!(
    "SELECT ",
    account_token_columns!(),
    " FROM account_tokens WHERE tenant = $1 AND kind = $2 ORDER BY created_at DESC, id"
);
pub(crate) const DELETE_ACCOUNT_TOKEN: &str = "DELETE FROM account_tokens WHERE id = $1";
/// The unused links of one kind for a user.
pub(crate) const DROP_ACCOUNT_TOKENS: &str =
    "DELETE FROM account_tokens WHERE user_id = $1 AND kind = $2 AND used = FALSE";

/// The head of a lookup of several subjects, before the list of keys (`…)`).
pub(crate) const LOGIN_FAILURES_HEAD: &str = concat!(
    "SELECT ",
    login_failure_columns!(),
    " FROM login_failures WHERE subject IN ("
);
/// Makes sure the row exists, so that the next statement can lock it.
pub(crate) const START_LOGIN_FAILURES: &str = "INSERT INTO login_failures \
     (subject, window_start, failures, banned_until, expires_at) \
     VALUES ($1, $2, 0, NULL, $3) ON CONFLICT (subject) DO NOTHING";
pub(crate) const GET_LOGIN_FAILURES: Spellings = locking!(concat!(
    "SELECT ",
    login_failure_columns!(),
    " FROM login_failures WHERE subject = $1"
));
pub(crate) const SET_LOGIN_FAILURES: &str = "UPDATE login_failures \
     SET window_start = $2, failures = $3, banned_until = $4, \
     expires_at = $5 WHERE subject = $1";
pub(crate) const CLEAR_LOGIN_FAILURES: &str = "DELETE FROM login_failures WHERE subject = $1 \
     AND (banned_until IS NULL OR banned_until <= $2)";

/// Adds every scope of a JSON array in one statement: concurrent saves of overlapping scopes
/// both succeed.
pub(crate) const SAVE_CONSENT: Spellings = Spellings {
    sqlite: "INSERT INTO consents (user_id, client_id, scope) \
             SELECT $1, $2, value FROM json_each($3) WHERE TRUE ON CONFLICT DO NOTHING",
    postgres: "INSERT INTO consents (user_id, client_id, scope) \
               SELECT $1, $2, value FROM json_array_elements_text($3::JSON) \
               ON CONFLICT DO NOTHING",
};

/// Starts (or restarts) an enrolment; a confirmed factor is left alone.
pub(crate) const PUT_TOTP: &str = concat!(
    "INSERT INTO totp_factors (",
    totp_columns!(),
    ") VALUES ($1, $2, FALSE, 0, $3) \
     ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, \
     last_step = 0, created_at = EXCLUDED.created_at WHERE totp_factors.confirmed = FALSE"
);
pub(crate) const GET_TOTP: &str = concat!(
    "SELECT ",
    totp_columns!(),
    " FROM totp_factors WHERE user_id = $1"
);
/// Accepts a time step once: only a step after the last one accepted changes the row, so of
/// two racing uses of one code exactly one succeeds. The first accepted step confirms.
pub(crate) const ACCEPT_TOTP_STEP: &str = "UPDATE totp_factors SET last_step = $2, \
     confirmed = TRUE WHERE user_id = $1 AND last_step < $2";
pub(crate) const DELETE_RECOVERY_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
/// Every second factor of a user (authenticator app, passkeys), for an administrator's reset;
/// recovery codes, half-signed-in records and ceremonies in progress go with them.
pub(crate) const DELETE_FACTORS: [&str; 5] = [
    "DELETE FROM totp_factors WHERE user_id = $1",
    "DELETE FROM passkeys WHERE user_id = $1",
    "DELETE FROM recovery_codes WHERE user_id = $1",
    "DELETE FROM pending_factors WHERE user_id = $1",
    "DELETE FROM passkey_ceremonies WHERE user_id = $1",
];
pub(crate) const INSERT_RECOVERY_CODE: &str =
    "INSERT INTO recovery_codes (user_id, code_hash, used) VALUES ($1, $2, FALSE)";
/// Spends a recovery code: exactly one caller changes the row.
pub(crate) const USE_RECOVERY_CODE: &str = "UPDATE recovery_codes SET used = TRUE \
     WHERE user_id = $1 AND code_hash = $2 AND used = FALSE";
pub(crate) const COUNT_RECOVERY_CODES: &str =
    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used = FALSE";
pub(crate) const INSERT_PENDING_FACTOR: &str = concat!(
    "INSERT INTO pending_factors (",
    pending_factor_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
/// Takes a pending sign-in: deleted by the first caller, whatever comes of it.
pub(crate) const TAKE_PENDING_FACTOR: &str = concat!(
    "DELETE FROM pending_factors WHERE token_hash = $1 RETURNING ",
    pending_factor_columns!()
);

pub(crate) const INSERT_PASSKEY: &str = concat!(
    "INSERT INTO passkeys (",
    passkey_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
pub(crate) const LIST_PASSKEYS: &str = concat!(
    "SELECT ",
    passkey_columns!(),
    " FROM passkeys WHERE user_id = $1 ORDER BY created_at, cred_id"
);
pub(crate) const GET_PASSKEY: &str = concat!(
    "SELECT ",
    passkey_columns!(),
    " FROM passkeys WHERE cred_id = $1"
);
pub(crate) const USE_PASSKEY: &str =
    "UPDATE passkeys SET passkey = $3, last_used = $4 WHERE user_id = $1 AND cred_id = $2";
pub(crate) const DELETE_PASSKEY: &str = "DELETE FROM passkeys WHERE user_id = $1 AND cred_id = $2";
pub(crate) const INSERT_PASSKEY_CEREMONY: &str = concat!(
    "INSERT INTO passkey_ceremonies (",
    passkey_ceremony_columns!(),
    ") VALUES ($1, $2, $3, $4, $5)"
);
pub(crate) const TAKE_PASSKEY_CEREMONY: &str = concat!(
    "DELETE FROM passkey_ceremonies WHERE id_hash = $1 RETURNING ",
    passkey_ceremony_columns!()
);
