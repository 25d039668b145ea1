//! SQLite's commit of a batch of refresh-token rotations (`store::rotation_batch`), run on the
//! writer connection's own SQLite handle, taken from sqlx's connection thread for the commit.
//!
//! Through sqlx, a statement's every row and every statement's end is a message from sqlx's
//! connection thread to the task that awaits it, and each message that finds that task
//! waiting wakes its thread. Under load (RS256 refresh grants, 64 connections), a commit of
//! about nine rotations cost 29 context switches between the two threads (`/proc`), and the
//! two threads 38 µs of CPU per rotation (perf). Here the task locks the handle out of sqlx's
//! thread (a hand-off there and back), runs the transaction on it directly, and gives it
//! back: 8 switches per commit and about 35 µs, most of it SQLite's own work and the sync
//! (docs/benchmarks.md, December 7, session 29). The batches that queue meanwhile run here
//! too, each its own transaction, before the handle goes back (`SqliteStore::commit_batches`).

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, ToSql, TransactionBehavior, params_from_iter};

use super::super::rotation_batch::{self, Rotation, Spent};
use super::super::sql::queries::{
    SPEND_REFRESH_TOKENS_HEAD, SPEND_REFRESH_TOKENS_TAIL, SQLITE_SPENT_USERS_HEAD,
    SQLITE_SPENT_USERS_TAIL, SQLITE_STORE_SUCCESSORS_HEAD, SQLITE_STORE_SUCCESSORS_TAIL,
};
use super::super::sql::rows::{self, StoreRow};
use super::super::{StoreError, User};

/// One transaction: begin (taking the write lock), store the successors of the tokens the
/// batch will spend (stored before they are spent: the write lock is held throughout, so
/// "unused now" is "spent by this batch"), spend them, read the users of those it spent,
/// commit. Nothing is committed unless all of it ran: the transaction rolls back when it is
/// dropped uncommitted.
pub(super) fn commit(
    db: &mut Connection,
    batch: &[Rotation],
) -> Result<Vec<Option<Spent>>, StoreError> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let successors = rotation_batch::successors(batch);
    if !successors.is_empty() {
        let sql = [
            SQLITE_STORE_SUCCESSORS_HEAD,
            "VALUES ",
            &vec![format!("({})", placeholders(5)); successors.len()].join(", "),
            SQLITE_STORE_SUCCESSORS_TAIL,
        ]
        .concat();
        let values = successors.iter().flat_map(|(parent, next)| {
            [
                parent as &dyn ToSql,
                &next.token_hash,
                &next.client_id,
                &next.now,
                &next.expires_at,
            ]
        });
        tx.execute(&sql, params_from_iter(values))?;
    }
    let spent = query(
        &tx,
        &[
            SPEND_REFRESH_TOKENS_HEAD,
            &placeholders(batch.len()),
            SPEND_REFRESH_TOKENS_TAIL,
        ]
        .concat(),
        batch.iter().map(|r| r.token_hash.as_str()),
        |row| rows::refresh_token(row),
    )?;
    // Each user once, however many of its tokens the batch spent (a user's devices, or one
    // client's many sessions, share a commit).
    let user_ids: BTreeSet<&str> = spent.iter().map(|t| t.user_id.as_str()).collect();
    let users = if user_ids.is_empty() {
        Vec::new()
    } else {
        query(
            &tx,
            &[
                SQLITE_SPENT_USERS_HEAD,
                &placeholders(user_ids.len()),
                SQLITE_SPENT_USERS_TAIL,
            ]
            .concat(),
            user_ids.iter().copied(),
            |row| rows::user(row),
        )?
    };
    tx.commit()?;
    let users: HashMap<String, User> = users.into_iter().map(|u| (u.id.clone(), u)).collect();
    Ok(rotation_batch::outcomes(batch, spent, &users))
}

/// Every row of `sql` with `params` bound, each decoded by `decode`.
fn query<'p, T>(
    tx: &Connection,
    sql: &str,
    params: impl Iterator<Item = &'p str>,
    decode: impl Fn(&Row<'_, '_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = tx.prepare(sql)?;
    let mut found = statement.query(params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = found.next()? {
        out.push(decode(&Row(row))?);
    }
    Ok(out)
}

/// `n` placeholders: `?, ?, ?`.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A rusqlite row read through the decoders both sqlx backends share.
pub(super) struct Row<'a, 'stmt>(&'a rusqlite::Row<'stmt>);

impl Row<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> Result<T, StoreError> {
        self.0.get(column).map_err(StoreError::from)
    }
}

impl StoreRow for Row<'_, '_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.get(column)
    }
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.get(column)
    }
    fn optional_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.get(column)
    }
}
