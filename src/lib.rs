//! ocapi sends a retailer's in-store purchases to Meta's Conversions API.
//!
//! The data flow reads top to bottom in the module list:
//!
//! ```text
//! [postgres] --keyset page--> source --SourceRow--> transform --Event--> destination --Delivery--> ledger --> stats
//!      ^                                                                                              |
//!      +------ ledger rows + watermark advance, ONE transaction, only after the destination answered --+
//! ```
//!
//! [`config`] is read and validated once; [`run`] drives one sync pass; [`ledger`] makes sure
//! that no order is ever sent twice and that every order can be reconciled.

pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod demo;
pub mod destination;
pub mod error;
pub mod event;
pub mod ledger;
pub mod run;
pub mod sandbox;
pub mod source;
pub mod stats;
pub mod transform;

pub use error::Error;
