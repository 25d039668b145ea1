//! Refresh-token rotations of concurrent requests gathered into one commit (group commit), on
//! either backend.
//!
//! A rotation alone pays a whole transaction: on SQLite, whose writes all go through one
//! connection, BEGIN, UPDATE, INSERT and COMMIT are each a round trip to sqlx's connection
//! thread (a thread hand-off and a wake-up) plus the commit's fsync, and rotations queue behind
//! each other; on PostgreSQL each statement is a network round trip and each commit a WAL
//! flush. Here one writer task per store takes every rotation waiting in its queue and commits
//! them in one transaction, sent in one call (`CommitRotations`, each in its backend's module,
//! their SQL in `store::sql::queries`: on SQLite run on the writer connection's own handle,
//! taken from sqlx's thread and kept for the batches that queue meanwhile, up to a bound; one
//! statement on PostgreSQL): statements, round trips and the flush are shared, and so is the
//! read of the spent tokens' users, which every refresh grant needs. A rotation is still
//! answered only after the commit that holds it is durable, and a token is spent by exactly one
//! rotation: the batch's UPDATE returns each spent row once, concurrent batches (of other
//! nodes, or this node's others in flight on PostgreSQL, `CommitRotations::COMMITS_IN_FLIGHT`)
//! wait on the row lock (PostgreSQL) or the write lock (SQLite) and then find it used.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::{Database, Pool};
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{RefreshToken, StoreError, Successor, User};

/// The successors a batch stores, each with the hash of the token it follows: a token named by
/// several rotations of the batch gets the first one's only (the others are replays of it, as
/// they would be in separate commits).
pub(crate) fn successors(batch: &[Rotation]) -> Vec<(&str, &Successor)> {
    let mut named = HashSet::with_capacity(batch.len());
    batch
        .iter()
        .filter(|r| named.insert(r.token_hash.as_str()))
        .filter_map(|r| Some((r.token_hash.as_str(), r.successor.as_ref()?)))
        .collect()
}

/// Each rotation's outcome, in order, from the tokens its commit spent and their users: a
/// token named twice in one batch is fresh for its first rotation only.
pub(crate) fn outcomes(
    batch: &[Rotation],
    spent: Vec<RefreshToken>,
    users: &HashMap<String, User>,
) -> Vec<Option<Spent>> {
    let mut spent: HashMap<String, RefreshToken> = spent
        .into_iter()
        .map(|t| (t.token_hash.clone(), t))
        .collect();
    batch
        .iter()
        .map(|r| {
            spent.remove(&r.token_hash).map(|token| Spent {
                user: users.get(&token.user_id).cloned(),
                token,
            })
        })
        .collect()
}

/// At most this many rotations share one commit (bounds the time a transaction holds its
/// locks and the latency of the first rotation in it).
const MAX_BATCH: usize = 128;

/// One rotation: spend `token_hash` and, when `successor` accepts the spent token, store it.
#[derive(Debug)]
pub(crate) struct Rotation {
    pub token_hash: String,
    pub successor: Option<Successor>,
}

/// A token a rotation spent, and its user as the commit read it (`None`: no such user).
#[derive(Debug)]
pub(crate) struct Spent {
    pub token: RefreshToken,
    pub user: Option<User>,
}

/// What one rotation's commit decided: the spent token when it was fresh, `None` when the
/// token was unknown or already used (the caller then asks which).
type Outcome = Result<Option<Spent>, StoreError>;

/// A backend that commits a batch of rotations in one transaction: for each rotation, in
/// order, the token it spent with its user (`None` when unknown, used before, or spent by an
/// earlier rotation of the same batch). All or none are committed. The successors are
/// `successors(batch)`, the outcomes `outcomes(…)`, so that both backends follow one rule.
pub(crate) trait CommitRotations: Send + Sync + 'static {
    /// The backend's sqlx database.
    type Db: Database;
    /// How many batches may be committing at once. While they are, the next batch gathers
    /// what queues; on a backend that flushes concurrent commits together (PostgreSQL), more
    /// than one keeps rotations from waiting out a whole flush before theirs begins.
    const COMMITS_IN_FLIGHT: usize;
    /// Commits `first` and answers its rotations (`Batch::answer`). A backend that commits
    /// one batch at a time may go on with the batches `more` gives (`None`: nothing is
    /// waiting) while it holds its writer, each in a commit of its own, instead of giving the
    /// writer back and taking it again for each.
    fn commit_batches(
        writer: &Pool<Self::Db>,
        first: Batch,
        more: &mut (dyn FnMut() -> Option<Batch> + Send),
    ) -> impl Future<Output = ()> + Send;
}

struct Job {
    rotation: Rotation,
    reply: oneshot::Sender<Outcome>,
}

/// Rotations committed together, and where each one's outcome goes.
pub(crate) struct Batch {
    pub rotations: Vec<Rotation>,
    replies: Vec<oneshot::Sender<Outcome>>,
}

impl Batch {
    fn of(jobs: &mut Vec<Job>) -> Batch {
        let (rotations, replies) = jobs.drain(..).map(|job| (job.rotation, job.reply)).unzip();
        Batch { rotations, replies }
    }

    /// Answers each rotation with what the batch's commit (begun at `started`) decided.
    pub(crate) fn answer(
        self,
        committed: Result<Vec<Option<Spent>>, StoreError>,
        started: Instant,
    ) {
        match committed {
            Ok(outcomes) => {
                crate::metrics::refresh_rotation_commit(
                    self.replies.len(),
                    started.elapsed().as_secs_f64(),
                );
                for (reply, outcome) in self.replies.into_iter().zip(outcomes) {
                    // A caller that went away (client disconnected) still had its token spent,
                    // as it would have without batching.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rotations = self.replies.len(), "a batch of refresh-token rotations was not committed");
                let message = e.to_string();
                for reply in self.replies {
                    let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// The queue in front of the writer task of store `S`.
pub(crate) struct RotationBatcher<S> {
    /// Started on first use. A queue whose task is gone (its runtime ended) is replaced.
    queue: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    /// The runtime the store was opened on, where the writer task runs while it lives:
    /// under `serve` the process's background runtime, whose thread is idle but for such work.
    /// On the runtime that serves requests, each of a commit's statements would wake the
    /// writer behind every request task ready to run (tens under load: milliseconds per
    /// statement), and the rotations waiting for that commit would wait as long.
    home: Option<Handle>,
    store: PhantomData<fn() -> S>,
}

impl<S> RotationBatcher<S> {
    /// A batcher whose writer task will run on the current runtime, if any; else (or once
    /// that runtime has ended) on the runtime of the rotation that starts it.
    pub(crate) fn new() -> Self {
        RotationBatcher {
            queue: Mutex::default(),
            home: Handle::try_current().ok(),
            store: PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for RotationBatcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotationBatcher")
    }
}

impl<S: CommitRotations> RotationBatcher<S> {
    /// Spends `token_hash` and stores its successor in a commit shared with the rotations
    /// queued beside it.
    pub(crate) async fn rotate(
        &self,
        writer: &Pool<S::Db>,
        token_hash: &str,
        successor: Option<Successor>,
    ) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            rotation: Rotation {
                token_hash: token_hash.to_owned(),
                successor,
            },
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
                *queue = Some(self.start(writer, job));
            }
        }
        answer.await.map_err(|_| {
            StoreError::Unavailable("the store's writer task stopped before answering".into())
        })?
    }

    /// Starts a writer task with `job` first: on the home runtime while it runs, else on this
    /// one.
    fn start(&self, writer: &Pool<S::Db>, mut job: Job) -> mpsc::UnboundedSender<Job> {
        let here = Handle::current();
        for runtime in self.home.iter().chain([&here]) {
            let (sender, receiver) = mpsc::unbounded_channel();
            // A runtime that has ended drops the task at once, and with it the receiver: the
            // send then fails.
            runtime.spawn(run::<S>(writer.clone(), receiver));
            match sender.send(job) {
                Ok(()) => return sender,
                Err(unsent) => job = unsent.0,
            }
        }
        // This runtime is shutting down too: dropping the job drops its reply, and the caller
        // is told the writer is gone. The next rotation starts a writer again.
        drop(job);
        mpsc::unbounded_channel().0
    }
}

/// The writer task: one commit per batch of whatever is waiting, at most
/// `S::COMMITS_IN_FLIGHT` at once.
///
/// A token named by two batches in flight at once is still spent by one: the second batch's
/// UPDATE waits for the first one's row lock (PostgreSQL) and then finds the token used,
/// exactly as a batch of another node would. Each batch locks its rows in key order, so two
/// batches cannot wait on each other.
async fn run<S: CommitRotations>(writer: Pool<S::Db>, mut receiver: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(S::COMMITS_IN_FLIGHT.max(1)));
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        // A slot first, then the jobs: a batch takes everything that queued while every slot
        // was committing.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        if receiver.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        let batch = Batch::of(&mut jobs);
        if S::COMMITS_IN_FLIGHT > 1 {
            let writer = writer.clone();
            tokio::spawn(async move {
                S::commit_batches(&writer, batch, &mut || None).await;
                drop(slot);
            });
        } else {
            // One commit at a time (SQLite) needs no task of its own, and the batches that
            // queue meanwhile may follow it on the writer it holds.
            let mut more = || {
                while jobs.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                (!jobs.is_empty()).then(|| Batch::of(&mut jobs))
            };
            S::commit_batches(&writer, batch, &mut more).await;
            drop(slot);
        }
    }
}
