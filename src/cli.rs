//! cli: being written.
