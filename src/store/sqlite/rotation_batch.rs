//! Refresh-token rotations of concurrent requests gathered into one SQLite commit.
//!
//! Every write goes through one SQLite connection, so rotations queue behind each other, and
//! each paid a whole transaction of its own: BEGIN, UPDATE, INSERT and COMMIT, each a round
//! trip to sqlx's connection thread (a thread hand-off and a wake-up), plus the commit's fsync.
//! Here one writer task takes every rotation waiting in its queue and runs them in one
//! transaction of four statements: the statements, the round trips and the fsync are shared.
//! A rotation is still answered only after the commit that holds it is durable.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::store::sql::rows::{self, REFRESH_COLUMNS};
use crate::store::{RefreshToken, StoreError, Successor};

/// At most this many rotations share one commit (bounds the time a transaction holds the
/// write lock and the latency of the first rotation in it).
const MAX_BATCH: usize = 128;

/// What one rotation's commit decided: the spent token when it was fresh, `None` when the
/// token was unknown or already used (the caller then asks which).
type Outcome = Result<Option<RefreshToken>, StoreError>;

struct Job {
    token_hash: String,
    successor: Option<Successor>,
    reply: oneshot::Sender<Outcome>,
}

/// The queue in front of the writer task.
#[derive(Debug, Default)]
pub(super) struct RotationBatcher {
    /// Started on first use, in the runtime of that call: the store may be opened in a
    /// runtime that ends before the one serving requests (Pingora builds its own). A queue
    /// whose task is gone (its runtime ended) is replaced.
    queue: Mutex<Option<mpsc::UnboundedSender<Job>>>,
}

impl RotationBatcher {
    /// Spends `token_hash` and stores its successor in a commit shared with the rotations
    /// queued beside it.
    pub(super) async fn rotate(
        &self,
        writer: &SqlitePool,
        token_hash: &str,
        successor: Option<Successor>,
    ) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            token_hash: token_hash.to_owned(),
            successor,
            reply,
        };
        {
            let mut queue = self
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let unsent = match queue.as_ref() {
                Some(sender) => sender.send(job).err().map(|e| e.0),
                None => Some(job),
            };
            if let Some(job) = unsent {
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(run(writer.clone(), receiver));
                // Fails only if that runtime is already shutting down; the answer below then
                // reports the writer gone.
                let _ = sender.send(job);
                *queue = Some(sender);
            }
        }
        answer.await.map_err(|_| {
            StoreError::Unavailable("the store's writer task stopped before answering".into())
        })?
    }
}

/// The writer task: one commit per batch of whatever is waiting.
async fn run(writer: SqlitePool, mut receiver: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match commit(&writer, &batch).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    // A caller that went away (client disconnected) still had its token spent,
                    // as it would have without batching.
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rotations = batch.len(), "a batch of refresh-token rotations was not committed");
                let message = e.to_string();
                for job in batch.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// Runs every job of `batch` in one transaction of four statements whatever its size (BEGIN,
/// one UPDATE spending every token, one INSERT of every successor, COMMIT): each statement is
/// a round trip to sqlx's connection thread, so per-job statements would cost a thread hand-off
/// per rotation. All or none are committed.
async fn commit(
    writer: &SqlitePool,
    batch: &[Job],
) -> Result<Vec<Option<RefreshToken>>, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut spend = QueryBuilder::<Sqlite>::new(
        "UPDATE refresh_tokens SET used = 1 WHERE used = 0 AND token_hash IN (",
    );
    let mut hashes = spend.separated(", ");
    for job in batch {
        hashes.push_bind(&job.token_hash);
    }
    spend.push(") RETURNING ");
    spend.push(REFRESH_COLUMNS);
    let rows = spend.build().fetch_all(&mut *tx).await?;
    let mut spent: HashMap<String, RefreshToken> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let old = rows::refresh_token(row)?;
        spent.insert(old.token_hash.clone(), old);
    }
    // A token named twice in one batch is fresh for the first job only: `remove` hands it out
    // once, as two separate commits would have.
    let outcomes: Vec<Option<RefreshToken>> = batch
        .iter()
        .map(|job| spent.remove(&job.token_hash))
        .collect();
    let successors: Vec<RefreshToken> = batch
        .iter()
        .zip(&outcomes)
        .filter_map(|(job, old)| job.successor.as_ref()?.of(old.as_ref()?))
        .collect();
    if !successors.is_empty() {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO refresh_tokens (");
        insert.push(REFRESH_COLUMNS).push(") ");
        insert.push_values(&successors, |mut row, t| {
            row.push_bind(&t.token_hash)
                .push_bind(&t.grant_id)
                .push_bind(&t.client_id)
                .push_bind(&t.user_id)
                .push_bind(&t.scope)
                .push_bind(t.expires_at)
                .push_bind(t.auth_time);
        });
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}
