//! The integration tests: one binary, a real PostgreSQL database per test, real HTTP against
//! the local Graph API stand-in. They read like the README: migrate, run, run again.
#![allow(clippy::unwrap_used)]

mod conn;
mod contract;
mod docker;
mod exit;
mod faults;
mod hash;
mod identity;
mod layout;
mod meta;
mod ops;
mod orders;
mod report;
mod support;
mod sync;
mod unattended;
