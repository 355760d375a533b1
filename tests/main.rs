//! The integration tests: one binary, a real PostgreSQL database per test, real HTTP against
//! the local Graph API stand-in. They read like the README: migrate, run, run again.
#![allow(clippy::unwrap_used)]

mod changes;
mod changes2;
mod changes3;
mod conn;
mod contract;
mod db_faults;
mod docs;
mod docker;
mod env;
mod exit;
mod fdw;
mod faults;
mod hash;
mod hostile;
mod identity;
mod init;
mod layout;
mod lifecycle;
mod meta;
mod meta_side;
mod meta_side2;
mod ops;
mod orders;
mod report;
mod support;
mod sync;
mod unattended;
mod ux;
mod walkin;
