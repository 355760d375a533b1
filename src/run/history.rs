//! The history floor of a run without ledger state (issue 22): which orders it leaves, the
//! floor it records for later runs (`state.history_floor`), and what it says about them.

use std::collections::HashMap;

use super::drive::Sessions;
use super::{RunOptions, WatermarkPolicy, RECENT_SECS};
use crate::config::Config;
use crate::error::Error;
use crate::ledger::Existing;
use crate::transform::{self, Built, Invalid};

/// Sorts the orders older than the floor: those the ledger holds (`existing`) or this run is
/// sending (`sending`) join `built` and `invalid`, decided as any other; the others are left,
/// and their number is returned.
pub(super) fn keep_known(
    old: (Vec<Built>, Vec<Invalid>),
    existing: &HashMap<String, Existing>,
    sending: &super::IdSet,
    built: &mut Vec<Built>,
    invalid: &mut Vec<Invalid>,
) -> u64 {
    let known =
        |id: Option<&str>| id.is_some_and(|id| existing.contains_key(id) || sending.contains(id));
    let mut left = 0;
    for order in old.0 {
        if known(Some(&order.event.custom_data.order_id)) {
            built.push(order);
        } else {
            left += 1;
        }
    }
    for order in old.1 {
        if known(order.order_id.as_deref()) {
            invalid.push(order);
        } else {
            left += 1;
        }
    }
    left
}

/// What a run without ledger state says about the orders older than [`RECENT_SECS`] it left
/// (`left` orders, event times before `from`, unix seconds), and how to send them.
///
/// A later run that leaves orders under the floor the first run recorded (`first` false) says
/// so in its own words.
pub(super) fn note(left: u64, from: i64, first: bool) -> String {
    let at = |t: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    if !first {
        return format!(
            "left {left} orders dated before {} (the floor the first run without ledger state \
             recorded: Meta deduplicates store events for 7 days only, so older ones a dropped \
             ledger had sent would count twice). If Meta never received them, send them with \
             `ocapi backfill --from {} --to {}`, or lift the floor with `ocapi run \
             --initial-sync` (or `source.start` in the config)",
            at(from),
            at(from + RECENT_SECS - transform::MAX_AGE_SECS),
            at(from)
        );
    }
    format!(
        "left {left} orders older than 7 days (event time before {}): the ledger held no state \
         for this connector (a first install, or a dropped ledger), and Meta deduplicates \
         store events for 7 days only, so older ones a dropped ledger had sent would count \
         twice. If Meta never received them, send them with `ocapi backfill --from {} --to {}` \
         (the 62 days Meta accepts), or, on a fresh ledger, with `ocapi run --initial-sync` or \
         `source.start` in the config",
        at(from),
        at(from + RECENT_SECS - transform::MAX_AGE_SECS),
        at(from)
    )
}

/// The event-time floor of this run (unix seconds), if any: orders dated before it that the
/// ledger does not hold are left and counted `history_left`.
///
/// A run with no ledger state, no `source.start` and no `--initial-sync` applies `now` minus
/// [`RECENT_SECS`] and records it in the `state` table (migration 0017), so later runs keep
/// leaving those orders even when their rows are re-stamped and read again; `--initial-sync`
/// clears it; `source.start` and a pass that leaves the watermark ([`WatermarkPolicy::Leave`],
/// a backfill) are never limited by it. A dry run reads the floor but writes nothing.
pub(super) async fn floor(
    config: &Config,
    options: &RunOptions,
    policy: WatermarkPolicy,
    sessions: &Sessions<'_>,
    no_state: bool,
    now: i64,
) -> Result<Option<i64>, Error> {
    if options.window.is_some() || !policy.advances() || config.source.start.is_some() {
        return Ok(None);
    }
    let session = sessions.ledger_session;
    let stored = match session.readable() {
        Some(ledger) => {
            session
                .pool
                .within(
                    "reading the history floor",
                    ledger.history_floor(sessions.ledger),
                )
                .await?
        }
        None => None,
    };
    let write = |floor: Option<i64>| async move {
        match session.writable() {
            Some(ledger) => {
                session
                    .pool
                    .within(
                        "recording the history floor",
                        ledger.set_history_floor(sessions.ledger, floor),
                    )
                    .await
            }
            None => Ok(()),
        }
    };
    if options.initial_sync {
        if stored.is_some() {
            write(None).await?;
            tracing::info!("--initial-sync: the 7-day floor of the first run is lifted");
        }
        return Ok(None);
    }
    if stored.is_some() || !no_state {
        return Ok(stored);
    }
    let floor = now - RECENT_SECS;
    write(Some(floor)).await?;
    Ok(Some(floor))
}
