// Copyright 2026 Cloudflare, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//! The idle watch of the connections in the pool, started only once a connection has stayed
//! idle.
//!
//! A connection released to the pool is watched by a task ([ConnectionPool::idle_poll]) that
//! removes it when the peer closes it or its idle timeout passes. That task holds the
//! connection's lock while it waits, so taking the connection again means waking the task,
//! letting it release the lock, and being woken in turn; on a busy proxy, where a connection is
//! released and taken again for every request, that is a task spawned, a timer registered and
//! two wake-ups per request. Most such connections are taken again within microseconds.
//!
//! So a released connection goes into the pool unlocked and into a queue here, and one sweeper
//! task per connector, which runs only while the queue is not empty, starts the usual watch for
//! each connection that is still in the pool [WATCH_AFTER] after its release. Until then a
//! connection the peer closed stays in the pool; whoever takes it finds it closed with the
//! same check that guards every reuse ([super::test_reusable_stream]) and connects anew.

use super::{IdleConnection, PoolCallback};
use crate::protocols::Stream;
use futures::FutureExt;
use log::debug;
use parking_lot::Mutex as SyncMutex;
use pingora_pool::ConnectionPool;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{oneshot, Mutex, Notify, OwnedMutexGuard};

/// How long a released connection goes without a watch. Connections with an idle timeout
/// shorter than [MIN_DEFERRED_TIMEOUT] are watched at once.
pub(crate) const WATCH_AFTER: Duration = Duration::from_millis(100);

/// The shortest idle timeout that may wait for the sweeper: a connection is watched at most
/// `2 × WATCH_AFTER` after its release, and must not be handed out past its timeout meanwhile.
pub(crate) const MIN_DEFERRED_TIMEOUT: Duration = Duration::from_millis(400);

pub(crate) type Pool = ConnectionPool<Arc<Mutex<Stream>>>;

/// A connection just put in the pool: what [ConnectionPool::put] answered, with its idle timeout.
pub(crate) struct Released {
    pub(crate) meta: IdleConnection,
    pub(crate) timeout: Option<Duration>,
    pub(crate) notify_close: Arc<Notify>,
    pub(crate) watch_use: oneshot::Receiver<bool>,
}

/// A connection in the pool whose watch has not started.
struct Unwatched {
    stream: Weak<Mutex<Stream>>,
    released: Released,
}

/// The watch of one connector's pool: the connections released and not yet watched, oldest
/// first, and what starting a watch needs.
pub(crate) struct IdleWatch {
    pool: Arc<Pool>,
    /// Told how long an evicted connection was idle.
    callback: Option<PoolCallback>,
    queue: SyncMutex<VecDeque<Unwatched>>,
    sweeping: AtomicBool,
}

impl IdleWatch {
    pub(crate) fn new(pool: Arc<Pool>, callback: Option<PoolCallback>) -> Self {
        IdleWatch {
            pool,
            callback,
            queue: SyncMutex::default(),
            sweeping: AtomicBool::new(false),
        }
    }

    /// Watches a connection from now on: `locked` is its lock, taken before it was pooled.
    pub(crate) fn watch_now(&self, locked: OwnedMutexGuard<Stream>, released: Released) {
        let Released {
            meta,
            timeout,
            notify_close,
            watch_use,
        } = released;
        let timeout = timeout.map(|t| t.saturating_sub(meta.elapsed()));
        let pool = self.pool.clone();
        let callback = self.callback.clone();
        pingora_runtime::current_handle().spawn(async move {
            if pool
                .idle_poll(locked, &meta.connection, timeout, notify_close, watch_use)
                .await
            {
                if let Some(callback) = callback {
                    callback(meta.elapsed());
                }
            }
        });
    }

    /// Queues a connection pooled unlocked, to be watched if it is still idle [WATCH_AFTER]
    /// from now, and starts the sweeper unless it runs.
    pub(crate) fn watch_later(self: &Arc<Self>, stream: Weak<Mutex<Stream>>, released: Released) {
        self.queue.lock().push_back(Unwatched { stream, released });
        if !self.sweeping.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            pingora_runtime::current_handle().spawn(async move { this.sweep().await });
        }
    }

    /// Starts the watch of each queued connection older than [WATCH_AFTER], every
    /// [WATCH_AFTER], until the queue is empty.
    async fn sweep(self: Arc<Self>) {
        // Cleared however the task ends (the runtime shutting down drops it), so that the next
        // release starts a new sweeper.
        struct Sweeping<'a>(&'a AtomicBool);
        impl Drop for Sweeping<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let mut sweeping = Some(Sweeping(&self.sweeping));
        loop {
            tokio::time::sleep(WATCH_AFTER).await;
            let now = Instant::now();
            let due: Vec<Unwatched> = {
                let mut queue = self.queue.lock();
                let n = queue
                    .iter()
                    .take_while(|c| now.duration_since(c.released.meta.idle_since) >= WATCH_AFTER)
                    .count();
                queue.drain(..n).collect()
            };
            for connection in due {
                self.watch_if_idle(connection);
            }
            if !self.queue.lock().is_empty() {
                continue;
            }
            drop(sweeping.take());
            // A release between the check above and the flag's reset found the flag set and
            // started no sweeper: go on for it, unless another one has started since.
            if self.queue.lock().is_empty() || self.sweeping.swap(true, Ordering::AcqRel) {
                return;
            }
            sweeping = Some(Sweeping(&self.sweeping));
        }
    }

    /// Starts the watch of a queued connection if it is still idle in the pool.
    fn watch_if_idle(&self, mut c: Unwatched) {
        match c.released.watch_use.try_recv() {
            // Taken again: nothing to watch.
            Ok(_) => return,
            // Dropped from the pool: by an eviction when its notice is there.
            Err(TryRecvError::Closed) => {
                if c.released.notify_close.notified().now_or_never().is_some() {
                    if let Some(callback) = &self.callback {
                        callback(c.released.meta.elapsed());
                    }
                }
                return;
            }
            Err(TryRecvError::Empty) => {}
        }
        let Some(stream) = c.stream.upgrade() else {
            return;
        };
        // Locked by whoever is taking it right now.
        let Ok(locked) = stream.try_lock_owned() else {
            return;
        };
        debug!(
            "watching a connection idle for {:?}",
            c.released.meta.elapsed()
        );
        self.watch_now(locked, c.released);
    }
}

#[cfg(test)]
mod tests {
    use super::super::TransportConnector;
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const KEY: u64 = 7;

    fn released(connector: &TransportConnector, timeout: Option<Duration>) -> DuplexStream {
        let (server, client) = tokio::io::duplex(64);
        connector.release_stream(Box::new(client), KEY, timeout);
        server
    }

    /// Waits for the pool to drop its connection: the server's end then reads the end.
    async fn closed_within(server: &mut DuplexStream, limit: Duration) -> Duration {
        let start = Instant::now();
        let mut buf = [0; 1];
        let n = tokio::time::timeout(limit, server.read(&mut buf))
            .await
            .expect("the pool drops the connection in time")
            .expect("a read of the closed end");
        assert_eq!(n, 0);
        start.elapsed()
    }

    #[tokio::test]
    async fn a_released_connection_is_taken_again_without_waiting_for_a_watcher() {
        let connector = TransportConnector::new(None);
        let mut server = released(&connector, None);
        let s = connector.connection_pool.get(&KEY).expect("pooled");
        // The old watcher held the lock from the release on, until woken and scheduled.
        assert!(s.try_lock().is_ok());
        let mut stream = Arc::try_unwrap(s)
            .ok()
            .expect("the pool's reference only")
            .into_inner();
        // Taken before the sweep: the sweeper leaves it alone and stops.
        tokio::time::sleep(WATCH_AFTER * 5).await;
        assert!(!connector.idle_watch.sweeping.load(Ordering::Acquire));
        stream.write_all(b"x").await.unwrap();
        let mut buf = [0; 1];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"x");
    }

    #[tokio::test]
    async fn a_connection_the_peer_closes_while_idle_leaves_the_pool() {
        let connector = TransportConnector::new(None);
        let mut server = released(&connector, None);
        server.shutdown().await.unwrap();
        closed_within(&mut server, Duration::from_secs(5)).await;
        assert!(connector.connection_pool.get(&KEY).is_none());
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_at_its_timeout() {
        let connector = TransportConnector::new(None);
        let timeout = Duration::from_millis(500);
        let mut server = released(&connector, Some(timeout));
        let waited = closed_within(&mut server, Duration::from_secs(5)).await;
        assert!(waited >= timeout - Duration::from_millis(20), "{waited:?}");
        assert!(connector.connection_pool.get(&KEY).is_none());
    }

    #[tokio::test]
    async fn a_short_idle_timeout_is_watched_from_the_release() {
        let connector = TransportConnector::new(None);
        let timeout = Duration::from_millis(20);
        let mut server = released(&connector, Some(timeout));
        let waited = closed_within(&mut server, Duration::from_secs(5)).await;
        // Left to the sweeper, it would close at WATCH_AFTER or later.
        assert!(waited < WATCH_AFTER, "{waited:?}");
        assert!(!connector.idle_watch.sweeping.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn connections_released_while_the_sweeper_ends_are_still_watched() {
        let connector = TransportConnector::new(None);
        let mut servers = Vec::new();
        for _ in 0..20 {
            let mut server = released(&connector, None);
            server.shutdown().await.unwrap();
            servers.push(server);
            tokio::time::sleep(WATCH_AFTER / 4).await;
        }
        for server in &mut servers {
            closed_within(server, Duration::from_secs(5)).await;
        }
        tokio::time::sleep(WATCH_AFTER * 5).await;
        assert!(!connector.idle_watch.sweeping.load(Ordering::Acquire));
        assert!(connector.idle_watch.queue.lock().is_empty());
    }
}
