//! ocapi sends a retailer's in-store purchases to Meta's Conversions API.
//!
//! The modules are listed in the order data flows through them (docs/architecture.md draws it):
//!
//! ```text
//! [postgres] --changed orders, streamed--> source --SourceRow--> transform --Event--> destination --Delivery--> ledger --> stats
//!      ^                                                                                              |
//!      +------ ledger rows + watermark advance, ONE transaction, only after the destination answered --+
//! ```
//!
//! [`config`] is read and validated once, with [`secret`] values that never reach a log; [`db`]
//! connects; [`source`] reads; [`transform`] builds one [`event::Event`] per order;
//! [`destination`] delivers; [`ledger`] records, so that no order is sent twice and every order
//! can be reconciled; [`run`] drives one pass through them; [`stats`], [`metrics`] and [`alerts`]
//! tell what a run did; [`error`] maps every outcome to an exit status. The subcommands live in
//! [`commands`], one file each; [`cli`] is the command line; [`sandbox`] (cargo feature
//! `sandbox`, on by default) is a local stand-in for the Graph API.

pub mod config;
pub mod secret;
pub mod db;
pub mod source;
pub mod transform;
pub mod event;
pub mod destination;
pub mod ledger;
pub mod lock;
pub mod lag;
pub mod run;
pub mod stats;
pub mod metrics;
pub mod alerts;
pub mod error;
pub mod cli;
pub mod commands;
#[cfg(feature = "sandbox")]
pub mod sandbox;

pub use error::Error;
