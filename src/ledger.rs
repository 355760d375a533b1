//! ledger: being written.
