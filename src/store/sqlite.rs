//! SQLite implementation of the store (the embedded default).

/// Placeholder until the SQLite implementation lands.
pub struct SqliteStore;
