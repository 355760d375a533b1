//! ocapi sends a retailer's in-store purchases to Meta's Conversions API.
//!
//! The data flow reads top to bottom in the module list:
//!
//! ```text
//! [postgres] --changed orders, streamed--> source --SourceRow--> transform --Event--> destination --Delivery--> ledger --> stats
//!      ^                                                                                              |
//!      +------ ledger rows + watermark advance, ONE transaction, only after the destination answered --+
//! ```
//!
//! [`config`] is read and validated once; [`run`] drives one sync pass; [`ledger`] makes sure
//! that no order is ever sent twice and that every order can be reconciled.
//!
//! Around a run (issue #5): [`schedule`] repeats it (`watch`), [`backfill`] re-reads a window,
//! [`history`] lists runs, [`reconcile`] sets the source beside the ledger, [`explain`] follows
//! one order, [`quality`] reads Meta's Dataset Quality API and [`metrics`] writes Prometheus
//! text.
//!
//! Running unattended (issue #17): [`listen`] serves `/metrics`, `/healthz` and `/readyz` for
//! `watch --listen` with [`health`] behind the probes, [`lag`] measures the upload lag,
//! [`alerts`] posts to a chat webhook, [`report`] writes the HTML report and [`progress`] shows
//! a run's progress.

pub mod alerts;
pub mod backfill;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod demo;
pub mod destination;
pub mod error;
pub mod event;
pub mod explain;
pub mod health;
pub mod history;
pub mod lag;
pub mod ledger;
pub mod listen;
pub mod lock;
pub mod metrics;
pub mod progress;
pub mod quality;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod schedule;
pub mod secret;
pub mod source;
pub mod stats;
pub mod transform;

pub use error::Error;
