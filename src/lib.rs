//! ocapi sends a retailer's in-store purchases to Meta's Conversions API.
//!
//! The modules are listed in the order data flows through them (docs/architecture.md draws it),
//! and each imports only modules listed above it: no import cycle, no import against the flow.
//!
//! ```text
//! [postgres] --changed orders, streamed--> source --SourceRow--> transform --Event--> destination --Delivery--> ledger --> stats
//!      ^                                                                                              |
//!      +------ ledger rows + watermark advance, ONE transaction, only after the destination answered --+
//! ```
//!
//! [`country`] resolves a country from any code or name (config and transform use it);
//! [`config`] is read and validated once, with [`secret`] values that never reach a log; [`db`]
//! connects; [`source`] reads; [`transform`] builds one [`event::Event`] (the type is defined
//! first, since transform, destination and ledger all speak it) per order; [`destination`]
//! delivers; [`stats`] (with [`lag`]) and [`metrics`] count what happened; [`lock`] keeps runs
//! apart; [`error`] is every module's error in one type, mapped to an exit status; [`ledger`]
//! records outcomes and run stats, so that no order is sent twice and every order can be
//! reconciled; [`run`] drives one pass through them; [`alerts`] tells a chat about it. The subcommands live in
//! [`commands`], one file each; [`cli`] is the command line; [`sandbox`] (cargo feature
//! `sandbox`, on by default) is a local stand-in for the Graph API.

pub mod escape;
pub mod human;
pub mod secret;
pub mod country;
pub mod config;
pub mod db;
pub mod source;
pub mod event;
pub mod transform;
pub mod destination;
pub mod lag;
pub mod stats;
pub mod metrics;
pub mod lock;
pub mod error;
pub mod ledger;
pub mod run;
pub mod alerts;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod cli;
pub mod commands;

pub use error::Error;

/// A short text that is kept inline up to 24 bytes, else on the heap (`compact_str`), with
/// `String`'s API and `&str` by `Deref`: a source row's values, an event's ids and currency.
/// A fully populated row holds about twenty values and an event a few more texts, most of them
/// short (names, codes, amounts, dates, order ids); allocating each, and freeing it on another
/// thread once the order was recorded, was ~10% of a run's CPU (issue 24).
pub type Text = compact_str::CompactString;
