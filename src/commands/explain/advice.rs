//! What `explain` advises for an order, and how it says it: one [`Advice`] per situation the
//! ledger and the source can leave an order in (decided in `decide.rs`), with a stable code
//! and the words `explain` prints.

use std::fmt;

use crate::ledger::Status;
use crate::transform::InvalidReason;

/// The advice: what happened to the order and what, if anything, will send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Advice {
    /// Sent; nothing changed since.
    Sent,
    /// Sent, and a row of it was added or changed since: never sent again.
    ChangedAfterSend {
        /// When a run noticed, if one did.
        noticed: Option<String>,
    },
    /// A negative total: a return or void, never sent.
    Return,
    /// More than 62 days old: Meta refuses it, whatever is fixed.
    TooOld {
        /// What `reconcile` counts it as: its ledger status, or `invalid` (with the reason
        /// `event time more than 62 days old`) when no run has recorded it.
        counted_as: Status,
    },
    /// Held (dated ahead): the first run from `until` (unix seconds) sends it.
    HeldUntil {
        /// Unix seconds.
        until: i64,
    },
    /// Held, and due since `since` (unix seconds): the next incremental run sends it.
    HeldDue {
        /// Unix seconds.
        since: i64,
    },
    /// Held, but its rows are no longer in the source: it will not be sent.
    HeldGone,
    /// A walk-in sale (recorded `anonymous`, or so as the source holds it): no customer
    /// information, so Meta cannot attribute it; nothing to fix.
    Anonymous {
        /// The ledger has it `anonymous` and the source now carries customer data for it (a
        /// loyalty card linked after the sale): the run that reads it again sends it.
        linked: bool,
    },
    /// Invalid for `reason`: fixing the source row gets it sent.
    FixInvalid {
        /// The recorded reason.
        reason: String,
    },
    /// Rejected by Meta for `reason`: fixing the source row gets it sent again.
    FixRejected {
        /// Meta's message.
        reason: String,
    },
    /// Invalid or rejected, and its rows are no longer in the source: nothing to send.
    Removed {
        /// `invalid` or `rejected`.
        status: Status,
        /// The recorded reason.
        reason: String,
    },
    /// Not handled by a run yet, and invalid as the source holds it now.
    FixInSource {
        /// Why it cannot become an event.
        reason: InvalidReason,
    },
    /// Not handled by a run yet, and every row has a NULL watermark.
    Unwatermarked {
        /// `source.watermark_column`.
        column: String,
    },
    /// Not handled: no run has completed a page yet.
    NoRunYet,
    /// Not handled: the connector has no watermark stored yet.
    NoWatermark,
    /// Not handled: the stored watermark cannot be compared with the order's.
    Incomparable {
        /// The stored watermark.
        stored: String,
    },
    /// Not handled: its watermark is behind the connector's (written late).
    Behind {
        /// The order's watermark.
        watermark: String,
        /// The connector's.
        stored: String,
    },
    /// Not handled yet: the next run reads and sends it.
    NextRun {
        /// The order's watermark.
        watermark: String,
        /// The connector's.
        stored: String,
    },
    /// Neither the source nor the ledger has the order.
    NotInSource,
}

impl Advice {
    /// A stable name for the advice, printed beside it so that scripts and tests need not read
    /// its prose.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::ChangedAfterSend { .. } => "changed_after_send",
            Self::Return => "return",
            Self::TooOld { .. } => "too_old",
            Self::HeldUntil { .. } => "held",
            Self::HeldDue { .. } => "held_due",
            Self::HeldGone => "held_gone",
            Self::Anonymous { .. } => "anonymous",
            Self::FixInvalid { .. } => "fix_invalid",
            Self::FixRejected { .. } => "fix_rejected",
            Self::Removed { .. } => "removed",
            Self::FixInSource { .. } => "fix_source",
            Self::Unwatermarked { .. } => "null_watermark",
            Self::NoRunYet => "no_run_yet",
            Self::NoWatermark => "no_watermark",
            Self::Incomparable { .. } => "incomparable_watermark",
            Self::Behind { .. } => "behind_watermark",
            Self::NextRun { .. } => "next_run",
            Self::NotInSource => "not_in_source",
        }
    }
}

/// Unix seconds for people (`2026-12-07 01:27:03 UTC`, `-` when out of range).
fn rfc3339(t: i64) -> String {
    crate::human::instant_secs(t)
}

/// The advice in words, as `explain` prints it.
impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sent => f.write_str("sent"),
            Self::ChangedAfterSend { noticed } => write!(
                f,
                "sent; a row of the order was added or changed after it was sent{}, and ocapi \
                 never sends an order twice (Meta takes no correction and would count it \
                 twice): counted as changed_after_send",
                noticed
                    .as_ref()
                    .map(|t| format!(" (noticed {t})"))
                    .unwrap_or_default()
            ),
            Self::Return => f.write_str(
                "a return or void (a negative total): not a purchase, so nothing is sent and \
                 nothing needs fixing; `reconcile` counts it under returns",
            ),
            Self::TooOld { counted_as } => write!(
                f,
                "too old to send: Meta takes store events up to 62 days old; nothing to do, \
                 `backfill` cannot send it either (`reconcile` counts it as {})",
                counted_as.as_str()
            ),
            Self::HeldUntil { until } => write!(
                f,
                "held until {}: its event time is ahead of now (a till clock running fast?); \
                 nothing to fix, the first run after that sends it",
                rfc3339(*until)
            ),
            Self::HeldDue { since } => write!(
                f,
                "held, and due since {}: nothing to fix, the next `ocapi run` sends it",
                rfc3339(*since)
            ),
            Self::HeldGone => f.write_str(
                "held (dated ahead), but its rows are no longer in the source: it will not be \
                 sent; if the sale stands, restore its rows with a new watermark and the next \
                 run sends it",
            ),
            Self::Anonymous { linked: false } => f.write_str(
                "anonymous: a walk-in sale, with no customer information in its rows, so it \
                 cannot be matched: Meta attributes a store sale to a person through their \
                 customer data (email, phone, name, ...), and cannot attribute this one, so it \
                 is not sent. Nothing to fix: it is not an error and does not count as invalid. \
                 If customer data is added to it later (a loyalty card linked after the sale) \
                 and a run reads it again, it is sent then, once",
            ),
            Self::Anonymous { linked: true } => f.write_str(
                "anonymous when a run read it (a walk-in sale, no customer information), and \
                 the source now holds customer information for it: the run that reads it \
                 again sends it, once (its watermark column must have moved, or be within \
                 `source.lookback`; else `ocapi backfill` around its event time)",
            ),
            Self::FixInvalid { reason } => write!(
                f,
                "invalid: {reason}; fix the source row and touch its watermark column, and the \
                 next run sends it"
            ),
            Self::FixRejected { reason } => write!(
                f,
                "rejected by Meta: {reason}; fix the source row and touch its watermark column, \
                 and the next run sends it again"
            ),
            Self::Removed { status, reason } => write!(
                f,
                "{}: {reason}; its rows are no longer in the source, so there is nothing to \
                 fix or send",
                match status {
                    Status::Rejected => "rejected by Meta",
                    _ => "invalid",
                }
            ),
            Self::FixInSource { reason } => write!(
                f,
                "invalid as the source holds it: {reason}; fix the source row and touch its \
                 watermark column, and the next run sends it"
            ),
            Self::Unwatermarked { column } => write!(
                f,
                "every row of the order has a NULL {column:?}: incremental runs read rows by \
                 their watermark and never read these; fill the column, or send the order with \
                 `ocapi backfill --from … --to …` around its event time"
            ),
            Self::NoRunYet => f.write_str("no run has completed a page yet: run `ocapi run`"),
            Self::NoWatermark => f.write_str("no watermark is stored yet: run `ocapi run`"),
            Self::Incomparable { stored } => write!(f, "the stored watermark is {stored}"),
            Self::Behind { watermark, stored } => write!(
                f,
                "its watermark {watermark} is behind the connector's {stored} (the row was \
                 written late, beyond `source.lookback`); send it with `ocapi backfill --from \
                 … --to …` around its event time"
            ),
            Self::NextRun { watermark, stored } => write!(
                f,
                "its watermark {watermark} is ahead of the connector's {stored}: the next run \
                 sends it"
            ),
            Self::NotInSource => f.write_str("the source has no row with this order id"),
        }
    }
}
