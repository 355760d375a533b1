//! run: being written.
