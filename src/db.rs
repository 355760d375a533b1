//! db: being written.
