//! What `explain` advises for an order ([`Advice`]), decided from the order's state alone: its
//! ledger row (status, reason, event time), what the source holds now as a run would build it,
//! and, for an order no run has handled, where its watermark stands. Pure, so that every state
//! is table-tested.
//!
//! The rules it follows are the run's: Meta takes store events up to 62 days old
//! (docs/meta-capi.md decision 3, `transform::MAX_AGE_SECS`), so no fix can send an older order; a
//! held order is sent by the first incremental run once its time is within
//! `transform::MAX_FUTURE_SECS`; a sent order is never sent again; an invalid or rejected order
//! is sent once its source rows change and a run reads them again.

use rust_decimal::Decimal;

use super::advice::Advice;
use crate::ledger::{Position, Status};
use crate::transform::{InvalidReason, MAX_AGE_SECS, MAX_FUTURE_SECS};

/// What the source holds of the order now, built as a run would build it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InSource {
    /// No row with this order id.
    Nothing,
    /// Rows that build into an event.
    Event {
        /// The event time, unix seconds.
        event_time: i64,
        /// The order's value.
        value: Decimal,
        /// Dated ahead of now: the unix time from which a run may send it.
        held_until: Option<i64>,
    },
    /// Rows that cannot become an event.
    Invalid {
        /// Why.
        reason: InvalidReason,
        /// The event time (unix seconds), when it could be read.
        event_time: Option<i64>,
    },
}

/// The order's ledger row, as far as the advice depends on it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded<'a> {
    /// Its status.
    pub(crate) status: Status,
    /// Why it is invalid (an [`InvalidReason`]'s text) or rejected (Meta's message).
    pub(crate) reason: Option<&'a str>,
    /// The event time recorded, unix seconds.
    pub(crate) event_time: Option<i64>,
    /// The value recorded (the value sent, for a sent order).
    pub(crate) value: Option<Decimal>,
    /// When a run noticed a row of the sent order added or changed (as the ledger shows it).
    pub(crate) changed_noticed: Option<&'a str>,
}

/// Whether incremental runs reach an order that has source rows but no ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Every row of the order has a NULL watermark: incremental runs never read it.
    Unwatermarked,
    /// The order's (last row's) watermark, and where it stands against the connector's.
    At {
        /// The order's watermark.
        watermark: String,
        /// Where it stands.
        position: Position,
    },
}

/// What the ledger holds of the order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InLedger<'a> {
    /// A row.
    Row(Recorded<'a>),
    /// No row: no run has handled the order yet; whether one will.
    Nothing(Reach),
}

/// Everything the advice depends on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderState<'a> {
    /// The ledger's side.
    pub(crate) ledger: InLedger<'a>,
    /// The source's side.
    pub(crate) source: InSource,
    /// `source.watermark_column`, named in the advice for unwatermarked rows.
    pub(crate) watermark_column: &'a str,
    /// Now, unix seconds.
    pub(crate) now: i64,
}

impl OrderState<'_> {
    /// The event time a run would use now (the source's, else the ledger's), unix seconds.
    fn event_time(&self) -> Option<i64> {
        match (&self.source, &self.ledger) {
            (InSource::Event { event_time, .. }, _) => Some(*event_time),
            (InSource::Invalid { event_time, .. }, _) => *event_time,
            (InSource::Nothing, InLedger::Row(row)) => row.event_time,
            (InSource::Nothing, InLedger::Nothing(_)) => None,
        }
    }

    /// Older than Meta takes store events: the transform's rule (`transform::build`).
    fn too_old(&self) -> bool {
        let reason = match self.source {
            InSource::Invalid { reason, .. } => Some(reason),
            _ => None,
        };
        too_old(reason, self.event_time(), self.now)
    }
}

/// Whether an order is too old for any run to send: the source's rows build into
/// [`InvalidReason::TooOld`] (`reason`), or its event time (unix seconds) is more than
/// `MAX_AGE_SECS` before `now` (docs/meta-capi.md decision 3). `explain` and `reconcile` both
/// classify by this, so that they agree.
pub(crate) fn too_old(reason: Option<InvalidReason>, event_time: Option<i64>, now: i64) -> bool {
    reason == Some(InvalidReason::TooOld) || event_time.is_some_and(|t| t < now - MAX_AGE_SECS)
}

/// The advice for an order in `state`.
pub(crate) fn advise(state: &OrderState<'_>) -> Advice {
    let negative = InvalidReason::NegativeValue.as_str();
    match &state.ledger {
        InLedger::Row(row) => match row.status {
            Status::Sent => {
                let differs = match state.source {
                    InSource::Event {
                        event_time, value, ..
                    } => Some(event_time) != row.event_time || Some(value) != row.value,
                    _ => false,
                };
                if row.changed_noticed.is_some() || differs {
                    Advice::ChangedAfterSend {
                        noticed: row.changed_noticed.map(str::to_owned),
                    }
                } else {
                    Advice::Sent
                }
            }
            Status::Invalid if row.reason == Some(negative) => Advice::Return,
            status if state.too_old() => Advice::TooOld { counted_as: status },
            Status::Held if state.source == InSource::Nothing => Advice::HeldGone,
            Status::Held => {
                let until = row.event_time.map_or(state.now, |t| t - MAX_FUTURE_SECS);
                if until <= state.now {
                    Advice::HeldDue { since: until }
                } else {
                    Advice::HeldUntil { until }
                }
            }
            Status::Anonymous => Advice::Anonymous {
                linked: matches!(state.source, InSource::Event { .. }),
            },
            status if state.source == InSource::Nothing => Advice::Removed {
                status,
                reason: row.reason.unwrap_or("-").to_owned(),
            },
            Status::Invalid => Advice::FixInvalid {
                reason: row.reason.unwrap_or("-").to_owned(),
            },
            Status::Rejected => Advice::FixRejected {
                reason: row.reason.unwrap_or("-").to_owned(),
            },
        },
        InLedger::Nothing(reach) => match (&state.source, reach) {
            (InSource::Nothing, _) => Advice::NotInSource,
            (
                InSource::Invalid {
                    reason: InvalidReason::NegativeValue,
                    ..
                },
                _,
            ) => Advice::Return,
            // `reconcile` counts an order no run recorded as a run would record it.
            _ if state.too_old() => Advice::TooOld {
                counted_as: Status::Invalid,
            },
            (InSource::Invalid { reason, .. }, _) if reason.is_anonymous() => {
                Advice::Anonymous { linked: false }
            }
            (InSource::Invalid { reason, .. }, _) => Advice::FixInSource { reason: *reason },
            (InSource::Event { .. }, Reach::Unwatermarked) => Advice::Unwatermarked {
                column: state.watermark_column.to_owned(),
            },
            (
                InSource::Event { held_until, .. },
                Reach::At {
                    watermark,
                    position,
                },
            ) => match position {
                Position::NoRunYet => Advice::NoRunYet,
                Position::NoWatermark => Advice::NoWatermark,
                Position::Incomparable { stored } => Advice::Incomparable {
                    stored: stored.clone(),
                },
                Position::Behind { stored } => Advice::Behind {
                    watermark: watermark.clone(),
                    stored: stored.clone(),
                },
                Position::Ahead { .. } if held_until.is_some_and(|t| t > state.now) => {
                    Advice::HeldUntil {
                        until: held_until.unwrap_or(state.now),
                    }
                }
                Position::Ahead { stored } => Advice::NextRun {
                    watermark: watermark.clone(),
                    stored: stored.clone(),
                },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Now in the tests: 2026-11-01T00:00:00Z.
    const NOW: i64 = 1_793_491_200;
    /// A day, in seconds.
    const DAY: i64 = 86_400;

    /// A ledger row with `status`, `reason` and an event time `age` seconds before `NOW`,
    /// worth 10.
    fn row(status: Status, reason: Option<&'static str>, age: i64) -> InLedger<'static> {
        InLedger::Row(Recorded {
            status,
            reason,
            event_time: Some(NOW - age),
            value: Some(Decimal::TEN),
            changed_noticed: None,
        })
    }

    /// The source's event `age` seconds before `NOW`, worth 10.
    fn event(age: i64) -> InSource {
        InSource::Event {
            event_time: NOW - age,
            value: Decimal::TEN,
            held_until: None,
        }
    }

    /// An order no run has handled, at watermark `w2` against the connector's `w1`.
    fn unread(position: Position) -> InLedger<'static> {
        InLedger::Nothing(Reach::At {
            watermark: "w2".to_owned(),
            position,
        })
    }

    #[test]
    fn the_advice_follows_from_the_orders_state() {
        let stored = || "w1".to_owned();
        let invalid_reason = Some("insufficient customer information");
        let walk_in = Some(InvalidReason::Anonymous.as_str());
        let negative = Some(InvalidReason::NegativeValue.as_str());
        let gone = Some(InvalidReason::HeldOrderGone.as_str());
        let too_old = InSource::Invalid {
            reason: InvalidReason::TooOld,
            event_time: Some(NOW - 70 * DAY),
        };
        let changed = InLedger::Row(Recorded {
            changed_noticed: Some("2026-10-30 10:00:00+00"),
            ..match row(Status::Sent, None, DAY) {
                InLedger::Row(r) => r,
                InLedger::Nothing(_) => unreachable!(),
            }
        });
        let table: Vec<(&str, InLedger<'static>, InSource, Advice)> = vec![
            (
                "sent, unchanged",
                row(Status::Sent, None, DAY),
                event(DAY),
                Advice::Sent,
            ),
            (
                "sent, value changed in the source since",
                row(Status::Sent, None, DAY),
                InSource::Event {
                    event_time: NOW - DAY,
                    value: Decimal::ONE_HUNDRED,
                    held_until: None,
                },
                Advice::ChangedAfterSend { noticed: None },
            ),
            (
                "sent, a run noticed a change",
                changed,
                event(DAY),
                Advice::ChangedAfterSend {
                    noticed: Some("2026-10-30 10:00:00+00".to_owned()),
                },
            ),
            (
                "sent long ago: still just sent",
                row(Status::Sent, None, 100 * DAY),
                InSource::Nothing,
                Advice::Sent,
            ),
            (
                "invalid, recent: fixing the row sends it",
                row(Status::Invalid, invalid_reason, DAY),
                InSource::Invalid {
                    reason: InvalidReason::InsufficientCustomerInformation,
                    event_time: Some(NOW - DAY),
                },
                Advice::FixInvalid {
                    reason: "insufficient customer information".to_owned(),
                },
            ),
            (
                "a walk-in sale: nothing to fix",
                row(Status::Anonymous, walk_in, DAY),
                InSource::Invalid {
                    reason: InvalidReason::Anonymous,
                    event_time: Some(NOW - DAY),
                },
                Advice::Anonymous { linked: false },
            ),
            (
                "a walk-in sale whose customer was linked since",
                row(Status::Anonymous, walk_in, DAY),
                event(DAY),
                Advice::Anonymous { linked: true },
            ),
            (
                "a walk-in sale no run has read yet",
                unread(Position::Ahead { stored: stored() }),
                InSource::Invalid {
                    reason: InvalidReason::Anonymous,
                    event_time: Some(NOW - DAY),
                },
                Advice::Anonymous { linked: false },
            ),
            (
                "invalid, older than 62 days: nothing to do",
                row(Status::Invalid, invalid_reason, 63 * DAY),
                InSource::Invalid {
                    reason: InvalidReason::TooOld,
                    event_time: Some(NOW - 63 * DAY),
                },
                Advice::TooOld {
                    counted_as: Status::Invalid,
                },
            ),
            (
                "invalid as too old, the source gone too",
                row(
                    Status::Invalid,
                    Some("event time more than 62 days old"),
                    70 * DAY,
                ),
                InSource::Nothing,
                Advice::TooOld {
                    counted_as: Status::Invalid,
                },
            ),
            (
                "rejected, older than 62 days now",
                row(Status::Rejected, Some("invalid parameter"), 63 * DAY),
                event(63 * DAY),
                Advice::TooOld {
                    counted_as: Status::Rejected,
                },
            ),
            (
                "rejected, recent",
                row(Status::Rejected, Some("invalid parameter"), DAY),
                event(DAY),
                Advice::FixRejected {
                    reason: "invalid parameter".to_owned(),
                },
            ),
            (
                "rejected, its rows deleted since",
                row(Status::Rejected, Some("invalid parameter"), DAY),
                InSource::Nothing,
                Advice::Removed {
                    status: Status::Rejected,
                    reason: "invalid parameter".to_owned(),
                },
            ),
            (
                "a return, however old",
                row(Status::Invalid, negative, 90 * DAY),
                InSource::Invalid {
                    reason: InvalidReason::TooOld,
                    event_time: Some(NOW - 90 * DAY),
                },
                Advice::Return,
            ),
            (
                "held, dated ten minutes ahead",
                row(Status::Held, None, -600),
                event(-600),
                Advice::HeldUntil {
                    until: NOW + 600 - MAX_FUTURE_SECS,
                },
            ),
            (
                "held, its time has come",
                row(Status::Held, None, -60),
                event(-60),
                Advice::HeldDue {
                    since: NOW + 60 - MAX_FUTURE_SECS,
                },
            ),
            (
                "held, its rows gone from the source",
                row(Status::Held, None, -600),
                InSource::Nothing,
                Advice::HeldGone,
            ),
            (
                "invalid because its held rows went away",
                row(Status::Invalid, gone, DAY),
                InSource::Nothing,
                Advice::Removed {
                    status: Status::Invalid,
                    reason: "held order no longer in the source".to_owned(),
                },
            ),
            (
                "never read, older than 62 days",
                unread(Position::Ahead { stored: stored() }),
                too_old.clone(),
                Advice::TooOld {
                    counted_as: Status::Invalid,
                },
            ),
            (
                "never read, behind the watermark and older than 62 days",
                unread(Position::Behind { stored: stored() }),
                too_old,
                Advice::TooOld {
                    counted_as: Status::Invalid,
                },
            ),
            (
                "never read, invalid as it stands",
                unread(Position::Ahead { stored: stored() }),
                InSource::Invalid {
                    reason: InvalidReason::MissingCurrency,
                    event_time: Some(NOW - DAY),
                },
                Advice::FixInSource {
                    reason: InvalidReason::MissingCurrency,
                },
            ),
            (
                "never read, a return",
                unread(Position::Ahead { stored: stored() }),
                InSource::Invalid {
                    reason: InvalidReason::NegativeValue,
                    event_time: Some(NOW - DAY),
                },
                Advice::Return,
            ),
            (
                "never read, NULL watermarks",
                InLedger::Nothing(Reach::Unwatermarked),
                event(DAY),
                Advice::Unwatermarked {
                    column: "updated_at".to_owned(),
                },
            ),
            (
                "never read, no run yet",
                unread(Position::NoRunYet),
                event(DAY),
                Advice::NoRunYet,
            ),
            (
                "never read, no watermark stored",
                unread(Position::NoWatermark),
                event(DAY),
                Advice::NoWatermark,
            ),
            (
                "never read, a watermark of an unknown type",
                unread(Position::Incomparable { stored: stored() }),
                event(DAY),
                Advice::Incomparable { stored: stored() },
            ),
            (
                "never read, written late",
                unread(Position::Behind { stored: stored() }),
                event(DAY),
                Advice::Behind {
                    watermark: "w2".to_owned(),
                    stored: stored(),
                },
            ),
            (
                "never read yet, the next run reads it",
                unread(Position::Ahead { stored: stored() }),
                event(DAY),
                Advice::NextRun {
                    watermark: "w2".to_owned(),
                    stored: stored(),
                },
            ),
            (
                "never read yet, dated ahead",
                unread(Position::Ahead { stored: stored() }),
                InSource::Event {
                    event_time: NOW + 600,
                    value: Decimal::TEN,
                    held_until: Some(NOW + 600 - MAX_FUTURE_SECS),
                },
                Advice::HeldUntil {
                    until: NOW + 600 - MAX_FUTURE_SECS,
                },
            ),
            (
                "nowhere",
                unread(Position::NoRunYet),
                InSource::Nothing,
                Advice::NotInSource,
            ),
        ];
        for (case, ledger, source, expected) in table {
            let state = OrderState {
                ledger,
                source,
                watermark_column: "updated_at",
                now: NOW,
            };
            assert_eq!(advise(&state), expected, "{case}");
        }
    }
}
