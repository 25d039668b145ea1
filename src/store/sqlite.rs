//! SQLite implementation of the store (the embedded default).
