//! The moka caches in front of the store: bounded in size, and each entry trusted for at most
//! `session.cache_ttl` (at least a second), the staleness bound the configuration states for
//! every node.

use std::hash::Hash;
use std::time::Duration;

use moka::sync::Cache;

use crate::config::Config;

/// A cache of at most `capacity` entries, each kept for the configured staleness bound.
pub fn bounded<K, V>(config: &Config, capacity: u64) -> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .time_to_live(config.session.cache_ttl.0.max(Duration::from_secs(1)))
        .build()
}
