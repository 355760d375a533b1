//! The order-level dedup policy: what to do with each order a page holds, given what the ledger
//! holds of it and what this run already sent. Pure (no I/O, no clock), so it is table-tested;
//! the I/O around it (the ledger lookup, the run's in-flight set) is in `send`.

use std::collections::{BTreeMap, HashMap};

use crate::event::same_version;
use crate::ledger::{Changed, Existing, Status};
use crate::source::Watermark;
use crate::stats::RunStats;
use crate::transform::{Built, Invalid, InvalidReason};

/// An order as this run read it, for the dedup policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Candidate<'a> {
    /// A valid event whose time has come.
    Due {
        /// The order's watermark (the largest of its rows').
        watermark: &'a Watermark,
        /// Its event's digest, when the ledger row has one to compare with.
        digest: Option<&'a str>,
    },
    /// A valid event dated ahead: held until its time.
    Held {
        /// The order's watermark (the largest of its rows').
        watermark: &'a Watermark,
        /// Its event's digest, when the ledger row has one to compare with.
        digest: Option<&'a str>,
    },
    /// An order that cannot become an event.
    Invalid {
        /// The order's watermark (the largest of its rows').
        watermark: &'a Watermark,
        /// Why it cannot.
        reason: InvalidReason,
        /// [`crate::transform::content_digest`] of its rows, when read.
        content: Option<&'a str>,
    },
}

impl Candidate<'_> {
    /// The order's watermark, whatever the candidate's kind.
    fn watermark(&self) -> &Watermark {
        match self {
            Self::Due { watermark, .. }
            | Self::Held { watermark, .. }
            | Self::Invalid { watermark, .. } => watermark,
        }
    }

    /// The digest of the event the order becomes, when known.
    fn digest(&self) -> Option<&str> {
        match self {
            Self::Due { digest, .. } | Self::Held { digest, .. } => *digest,
            Self::Invalid { .. } => None,
        }
    }

    /// Whether the order is the version recorded as `watermark` and `digest`: the same event
    /// when both digests are known (rows re-stamped without a change to what is sent are the
    /// same version), else the same watermark value (rows written before digests, and digests
    /// that differ but were taken under other normalization rules: [`same_version`]).
    fn is_version(&self, watermark: Option<&Watermark>, digest: Option<&str>) -> bool {
        let same = match (digest, self.digest()) {
            (Some(recorded), Some(now)) => same_version(recorded, now),
            _ => None,
        };
        same.unwrap_or_else(|| watermark.is_some_and(|w| w == self.watermark()))
    }
}

/// What to do with an order, given its ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Send it.
    Send,
    /// Record it `held` (new, or changed while held).
    Hold,
    /// Held before and unchanged: leave its row (counted `held` again).
    StillHeld,
    /// Record it `invalid` (new, changed, or invalid for another reason now).
    RecordInvalid,
    /// Invalid before for the same reason and unchanged: counted `skipped_invalid`, not
    /// `invalid` again.
    StillInvalid,
    /// A walk-in sale recorded `anonymous` before and unchanged: counted nowhere again. Like
    /// an invalid order, it is sent once its rows change and carry customer data.
    StillAnonymous,
    /// Already sent (or being sent in this run): counted `skipped_duplicate`.
    Duplicate {
        /// A row was added or changed after the order was sent and that change was not
        /// counted before: counted `changed_after_send` too, and recorded on its ledger row.
        changed: bool,
    },
    /// Rejected before, and its source rows have not changed since: counted
    /// `skipped_rejected`.
    StillRejected,
}

/// The dedup policy: what to do with an order this run read, given what the ledger holds of it
/// (`existing`) and whether this run already sent it or is sending it (`seen_in_run`).
///
/// "Unchanged" means the order's watermark (the largest of its rows') is the one recorded; a
/// rejected order is sent again once its rows change (touching them is how a user retries it).
/// A sent order is "changed" only when what would be sent differs: the event it becomes has
/// another digest than the one recorded (whatever its rows' watermarks say), or, for rows
/// recorded without a digest (before sql/0014), another watermark. A sent order that is now
/// only too old to send has not changed.
pub(super) fn decide(
    existing: Option<&Existing>,
    seen_in_run: bool,
    candidate: &Candidate<'_>,
) -> Decision {
    if seen_in_run {
        return Decision::Duplicate { changed: false };
    }
    let Some(e) = existing else {
        return match candidate {
            Candidate::Due { .. } => Decision::Send,
            Candidate::Held { .. } => Decision::Hold,
            Candidate::Invalid { .. } => Decision::RecordInvalid,
        };
    };
    let unchanged = e
        .source_watermark
        .as_ref()
        .is_some_and(|w| w == candidate.watermark());
    // A touch (rows re-stamped, content the same) leaves an invalid or walk-in order as it was.
    let unchanged_invalid = unchanged
        || matches!(candidate, Candidate::Invalid { content: Some(c), .. }
                    if e.event_digest.as_deref() == Some(*c));
    match (e.status, candidate) {
        (
            Status::Sent,
            Candidate::Invalid {
                reason: InvalidReason::TooOld,
                ..
            },
        ) => Decision::Duplicate { changed: false },
        (Status::Sent, _) => Decision::Duplicate {
            changed: !candidate.is_version(e.source_watermark.as_ref(), e.event_digest.as_deref())
                && !candidate.is_version(e.changed_watermark.as_ref(), e.changed_digest.as_deref()),
        },
        (Status::Rejected, Candidate::Due { .. }) if unchanged => Decision::StillRejected,
        (Status::Held, Candidate::Held { .. }) if unchanged => Decision::StillHeld,
        (Status::Anonymous, Candidate::Invalid { reason, .. })
            if unchanged_invalid && reason.is_anonymous() =>
        {
            Decision::StillAnonymous
        }
        // An older build recorded walk-ins `invalid` ("no customer information"): recorded
        // `anonymous` now.
        (Status::Invalid, Candidate::Invalid { reason, .. })
            if unchanged_invalid
                && !reason.is_anonymous()
                && e.reason.as_deref() == Some(reason.as_str()) =>
        {
            Decision::StillInvalid
        }
        (_, Candidate::Due { .. }) => Decision::Send,
        (_, Candidate::Held { .. }) => Decision::Hold,
        (_, Candidate::Invalid { .. }) => Decision::RecordInvalid,
    }
}

/// A page's orders sorted by the policy, each order in at most one list.
#[derive(Debug, Default)]
pub(super) struct Sorted {
    /// Orders to send, in page order.
    pub(super) to_send: Vec<Built>,
    /// Orders to record `held` (new or changed while held).
    pub(super) held: Vec<Built>,
    /// Orders to record `invalid`: one per order id.
    pub(super) invalid: Vec<Invalid>,
    /// Sent orders changed since, with their watermark and digest now.
    pub(super) changed: Vec<Changed>,
    /// The ids of `to_send`: "in flight in this run" until the page commits.
    pub(super) sending: std::sync::Arc<super::IdSet>,
    /// The page's new invalid orders, counted in the run's stats once the page commits.
    pub(super) invalid_count: InvalidCount,
}

/// A page's new invalid orders (those it records, and rows without a usable order id), by
/// reason. Counted in the run's stats only when the page commits, so that a failed run's
/// `invalid` and ratio describe what it recorded: the orders of a page that did not commit
/// are read again, and counted, by the next run.
#[derive(Debug, Default)]
pub(super) struct InvalidCount {
    /// Orders.
    orders: u64,
    /// Orders by [`InvalidReason`] text.
    reasons: BTreeMap<String, u64>,
    /// Walk-in sales ([`InvalidReason::Anonymous`]): counted `anonymous`, never `invalid`.
    anonymous: u64,
}

impl InvalidCount {
    /// Counts one order invalid for `reason` (a walk-in sale as `anonymous`).
    fn add(&mut self, reason: InvalidReason) {
        if reason.is_anonymous() {
            self.anonymous += 1;
            return;
        }
        self.orders += 1;
        RunStats::bump(&mut self.reasons, reason.as_str(), 1);
    }

    /// Adds the count to a run's `invalid`, `invalid_reasons` and `anonymous`.
    pub(super) fn count_in(&self, stats: &mut RunStats) {
        stats.anonymous += self.anonymous;
        stats.invalid += self.orders;
        for (reason, n) in &self.reasons {
            RunStats::bump(&mut stats.invalid_reasons, reason, *n);
        }
    }
}

/// Applies [`decide`] to every order of a page and counts each decision in `stats` (all but
/// `rows_read`, and the new invalid orders, which [`Sorted::invalid_count`] holds until the
/// page commits). `seen_before(order_id)` says whether an earlier page of this run sent the
/// order or is sending it; orders earlier in this page are known here.
///
/// Only orders this run sent (or is sending) count as seen: an order it recorded invalid
/// earlier may come back fixed in a later page, and must then be sent.
pub(super) fn sort_page(
    built: Vec<Built>,
    invalid: Vec<Invalid>,
    existing: &HashMap<String, Existing>,
    seen_before: impl Fn(&str) -> bool,
    stats: &mut RunStats,
) -> Sorted {
    // Sized for the page's orders: grown from empty, it was rehashed a dozen times a page.
    let mut in_page =
        super::IdSet::with_capacity_and_hasher(built.len() + invalid.len(), Default::default());
    let mut changed: Vec<Changed> = Vec::new();
    // Captures only the skip counters (closures capture disjoint fields), so the loops below
    // count the rest directly.
    let mut count = |decision: Decision, candidate: &Candidate<'_>, order_id: &str| match decision {
        Decision::Duplicate { changed: true } => {
            stats.skipped_duplicate += 1;
            stats.changed_after_send += 1;
            changed.push(Changed {
                order_id: order_id.to_owned(),
                watermark: candidate.watermark().clone(),
                digest: candidate.digest().map(str::to_owned),
            });
        }
        Decision::Duplicate { changed: false } => stats.skipped_duplicate += 1,
        Decision::StillRejected => stats.skipped_rejected += 1,
        Decision::StillInvalid => stats.skipped_invalid += 1,
        Decision::Send
        | Decision::Hold
        | Decision::StillHeld
        | Decision::RecordInvalid
        | Decision::StillAnonymous => {}
    };

    // Each order decided first, by reference: the orders to send then stay where they are in
    // the page's own vector when it sends them all (nearly every page), and are collected in
    // place otherwise. Moved through a `filter_map` on every page, each order (~400 bytes) was
    // copied once more even where none left.
    let mut decisions: Vec<Decision> = Vec::with_capacity(built.len());
    for built in &built {
        stats.ahead_of_clock += u64::from(built.ahead);
        let order_id = built.event.custom_data.order_id.as_str();
        let recorded = existing.get(order_id);
        // Computed only for an order the ledger has sent (read again): a new order's digest
        // is computed once, when its outcome is recorded.
        let digest = recorded
            .filter(|e| e.status == Status::Sent)
            .map(|_| built.event.digest());
        let candidate = match built.held_until {
            Some(_) => Candidate::Held {
                watermark: &built.watermark,
                digest: digest.as_deref(),
            },
            None => Candidate::Due {
                watermark: &built.watermark,
                digest: digest.as_deref(),
            },
        };
        let seen = in_page.contains(order_id) || seen_before(order_id);
        let decision = decide(recorded, seen, &candidate);
        count(decision, &candidate, order_id);
        match decision {
            Decision::Send => {
                stats.events += 1;
                stats.zero_value += u64::from(built.event.custom_data.value.is_zero());
                for field in &built.dropped {
                    RunStats::bump(&mut stats.dropped, field.key(), 1);
                }
                in_page.insert(crate::Text::from(order_id));
            }
            Decision::Hold | Decision::StillHeld => stats.held += 1,
            _ => {}
        }
        decisions.push(decision);
    }
    let mut held: Vec<Built> = Vec::new();
    let to_send: Vec<Built> = if decisions.iter().all(|d| *d == Decision::Send) {
        built
    } else {
        built
            .into_iter()
            .zip(decisions)
            .filter_map(|(built, decision)| match decision {
                Decision::Send => Some(built),
                Decision::Hold => {
                    held.push(built);
                    None
                }
                _ => None,
            })
            .collect()
    };
    // Invalid orders to record: one row per order id.
    let mut to_record: Vec<Invalid> = Vec::new();
    let mut invalid_count = InvalidCount::default();
    for row in invalid {
        let Some(order_id) = row.order_id.as_deref() else {
            // No ledger row can remember it, so whether it was counted is the row's place:
            // read again (the lookback, a restart), an earlier run counted it.
            if row.reread {
                let candidate = Candidate::Invalid {
                    watermark: &row.watermark,
                    reason: row.reason,
                    content: row.digest.as_deref(),
                };
                count(Decision::StillInvalid, &candidate, "");
            } else {
                invalid_count.add(row.reason);
                tracing::warn!(watermark = %row.watermark, reason = %row.reason, "row without a usable order id skipped");
            }
            continue;
        };
        let candidate = Candidate::Invalid {
            watermark: &row.watermark,
            reason: row.reason,
            content: row.digest.as_deref(),
        };
        let seen = in_page.contains(order_id) || seen_before(order_id);
        let decision = decide(existing.get(order_id), seen, &candidate);
        count(decision, &candidate, order_id);
        if decision == Decision::RecordInvalid {
            invalid_count.add(row.reason);
            to_record.push(row);
        }
    }
    Sorted {
        sending: std::sync::Arc::new(in_page),
        to_send,
        held,
        invalid: to_record,
        changed,
        invalid_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::WatermarkKind;

    /// `text` as a watermark of a `timestamptz` column, for the life of the test.
    fn wm(text: &str) -> &'static Watermark {
        Box::leak(Box::new(Watermark::new(WatermarkKind::Timestamptz, text)))
    }

    /// A ledger row of `status` recorded at `watermark` by run 1.
    fn row(status: Status, watermark: &str) -> Existing {
        Existing {
            status,
            event_time: Some(1),
            value: None,
            source_watermark: Some(wm(watermark).clone()),
            run_id: Some(1),
            reason: (status == Status::Invalid).then(|| "missing currency".to_owned()),
            changed_watermark: None,
            event_digest: None,
            changed_digest: None,
        }
    }

    /// A ledger row of `status` recorded at `watermark` with the event digest `digest`.
    fn with_digest(status: Status, watermark: &str, digest: &str) -> Option<Existing> {
        Some(Existing {
            event_digest: Some(digest.to_owned()),
            ..row(status, watermark)
        })
    }

    #[test]
    fn the_dedup_policy_decides_each_case_as_the_table_says() {
        use Decision::*;
        let due = |w| Candidate::Due {
            watermark: wm(w),
            digest: None,
        };
        let held = |w| Candidate::Held {
            watermark: wm(w),
            digest: None,
        };
        let due_as = |w, d| Candidate::Due {
            watermark: wm(w),
            digest: Some(d),
        };
        let mut touched_change = with_digest(Status::Sent, "w1", "d1").unwrap();
        touched_change.changed_watermark = Some(wm("w2").clone());
        touched_change.changed_digest = Some("d2".to_owned());
        let invalid = |w| Candidate::Invalid {
            watermark: wm(w),
            reason: InvalidReason::MissingCurrency,
            content: None,
        };
        let too_old = |w| Candidate::Invalid {
            watermark: wm(w),
            reason: InvalidReason::TooOld,
            content: None,
        };
        let walk_in = |w| Candidate::Invalid {
            watermark: wm(w),
            reason: InvalidReason::Anonymous,
            content: None,
        };
        let sent = || Some(row(Status::Sent, "w1"));
        let mut counted = row(Status::Sent, "w1");
        counted.changed_watermark = Some(wm("w2").clone());
        #[rustfmt::skip]
        let cases: Vec<(&str, Option<Existing>, bool, Candidate<'_>, Decision)> = vec![
            ("new and due", None, false, due("w1"), Send),
            ("new and dated ahead", None, false, held("w1"), Hold),
            ("new and invalid", None, false, invalid("w1"), RecordInvalid),
            ("seen earlier in the same run", None, true, due("w1"), Duplicate { changed: false }),
            ("seen earlier in the run, sent before", sent(), true, due("w2"), Duplicate { changed: false }),
            ("already sent, unchanged", sent(), false, due("w1"), Duplicate { changed: false }),
            ("a line added after send", sent(), false, due("w2"), Duplicate { changed: true }),
            ("sent, then made invalid by a change", sent(), false, invalid("w2"), Duplicate { changed: true }),
            ("a change after send already counted", Some(counted), false, due("w2"), Duplicate { changed: false }),
            ("sent, the same instant in the old text form",
                Some(row(Status::Sent, "2026-11-01 10:00:00.5+00")), false,
                due("2026-11-01T10:00:00.500000Z"), Duplicate { changed: false }),
            ("rejected and unchanged", Some(row(Status::Rejected, "w1")), false, due("w1"), StillRejected),
            ("rejected then changed", Some(row(Status::Rejected, "w1")), false, due("w2"), Send),
            ("sent, rows re-stamped, same event", with_digest(Status::Sent, "w1", "d1"), false, due_as("w2", "d1"), Duplicate { changed: false }),
            ("sent, the event changed", with_digest(Status::Sent, "w1", "d1"), false, due_as("w1", "d2"), Duplicate { changed: true }),
            ("sent, the event changed and re-stamped", with_digest(Status::Sent, "w1", "d1"), false, due_as("w2", "d2"), Duplicate { changed: true }),
            ("sent before digests, re-stamped", sent(), false, due_as("w2", "d1"), Duplicate { changed: true }),
            ("sent under older normalization rules, read again", with_digest(Status::Sent, "w1", "d1"), false, due_as("w1", "d9/r2"), Duplicate { changed: false }),
            ("sent under older rules, the same event re-stamped", with_digest(Status::Sent, "w1", "d1/r1"), false, due_as("w2", "d1/r2"), Duplicate { changed: false }),
            ("sent under older rules, changed and re-stamped", with_digest(Status::Sent, "w1", "d1"), false, due_as("w2", "d9/r2"), Duplicate { changed: true }),
            ("a counted change re-stamped", Some(touched_change.clone()), false, due_as("w3", "d2"), Duplicate { changed: false }),
            ("a counted change changed again", Some(touched_change), false, due_as("w3", "d3"), Duplicate { changed: true }),
            ("sent, re-stamped and now too old", sent(), false, too_old("w2"), Duplicate { changed: false }),
            ("sent, now invalid, digest kept", with_digest(Status::Sent, "w1", "d1"), false, invalid("w2"), Duplicate { changed: true }),
            ("rejected, touched to retry it", with_digest(Status::Rejected, "w1", "d1"), false, due_as("w2", "d1"), Send),
            ("invalid unchanged", Some(row(Status::Invalid, "w1")), false, invalid("w1"), StillInvalid),
            ("invalid for another reason now", Some(row(Status::Invalid, "w1")), false, too_old("w1"), RecordInvalid),
            ("invalid then fixed", Some(row(Status::Invalid, "w1")), false, due("w2"), Send),
            ("invalid then fixed but dated ahead", Some(row(Status::Invalid, "w1")), false, held("w2"), Hold),
            ("held still ahead", Some(row(Status::Held, "w1")), false, held("w1"), StillHeld),
            ("held, changed, still ahead", Some(row(Status::Held, "w1")), false, held("w2"), Hold),
            ("held and now due", Some(row(Status::Held, "w1")), false, due("w1"), Send),
            ("held, then made invalid", Some(row(Status::Held, "w1")), false, invalid("w2"), RecordInvalid),
            ("new walk-in", None, false, walk_in("w1"), RecordInvalid),
            ("walk-in unchanged", Some(row(Status::Anonymous, "w1")), false, walk_in("w1"), StillAnonymous),
            ("walk-in, then a loyalty card linked", Some(row(Status::Anonymous, "w1")), false, due("w2"), Send),
            ("walk-in, the card linked but dated ahead", Some(row(Status::Anonymous, "w1")), false, held("w2"), Hold),
            ("walk-in, a changed row still anonymous", Some(row(Status::Anonymous, "w1")), false, walk_in("w2"), RecordInvalid),
            ("walk-in, then made invalid", Some(row(Status::Anonymous, "w1")), false, invalid("w2"), RecordInvalid),
            ("walk-in recorded invalid by an older build",
                Some(Existing { reason: Some("no customer information".to_owned()), ..row(Status::Invalid, "w1") }),
                false, walk_in("w1"), RecordInvalid),
            ("sent, then the card unlinked", sent(), false, walk_in("w2"), Duplicate { changed: true }),
        ];
        for (case, existing, seen, candidate, expected) in cases {
            assert_eq!(
                decide(existing.as_ref(), seen, &candidate),
                expected,
                "{case}"
            );
        }
    }

    /// A built event of order `id` at `watermark`, held when `held`.
    fn built(id: &str, watermark: &str, held: bool) -> Built {
        let event = crate::event::Event::purchase(id, 1, rust_decimal::Decimal::ONE, "EUR");
        Built {
            event,
            dropped: Vec::new(),
            watermark: wm(watermark).clone(),
            store_id: None,
            held_until: held.then_some(10),
            ahead: false,
        }
    }

    /// An order of id `id` that cannot become an event for a missing currency.
    fn invalid_order(id: Option<&str>, watermark: &str) -> Invalid {
        Invalid {
            order_id: id.map(str::to_owned),
            reason: InvalidReason::MissingCurrency,
            event_time: None,
            value: None,
            currency: None,
            watermark: wm(watermark).clone(),
            store_id: None,
            reread: false,
            digest: None,
        }
    }

    #[test]
    fn a_row_without_an_order_id_read_again_is_not_counted_again() {
        // GIVEN two rows without an order id: one new, one read again in the lookback
        let mut again = invalid_order(None, "w1");
        again.reread = true;
        let mut stats = RunStats::new("c");

        // WHEN a page sorts them
        let sorted = sort_page(
            Vec::new(),
            vec![invalid_order(None, "w2"), again],
            &HashMap::new(),
            |_| false,
            &mut stats,
        );

        // THEN only the new one counts as invalid; the other is skipped as an earlier run's
        assert_eq!(sorted.invalid_count.orders, 1);
        assert_eq!(stats.skipped_invalid, 1);
        assert!(sorted.invalid.is_empty());
    }

    #[test]
    fn a_page_is_sorted_into_lists_and_each_decision_is_counted_once() {
        // GIVEN a ledger holding a sent, a rejected, an invalid and a held order
        let existing: HashMap<String, Existing> = [
            ("SENT", row(Status::Sent, "w1")),
            ("REJ", row(Status::Rejected, "w1")),
            ("INV", row(Status::Invalid, "w1")),
            ("HELD", row(Status::Held, "w1")),
        ]
        .into_iter()
        .map(|(id, row)| (id.to_owned(), row))
        .collect();
        let mut stats = RunStats::new("c");

        // WHEN a page reads them again (a line added to SENT, HELD now due), a new order twice,
        // an order an earlier page of this run is sending, and an invalid row without an id
        let sorted = sort_page(
            vec![
                built("SENT", "w2", false),
                built("REJ", "w1", false),
                built("HELD", "w1", false),
                built("NEW", "w1", false),
                built("NEW", "w1", false),
                built("EARLIER", "w1", false),
                built("AHEAD", "w1", true),
            ],
            vec![invalid_order(Some("INV"), "w1"), invalid_order(None, "w1")],
            &existing,
            |id| id == "EARLIER",
            &mut stats,
        );

        // THEN the held-now-due and the new order are sent once, the one ahead is held, the
        // change after send is recorded, and each skip is counted under its own name
        let ids = |list: &[Built]| -> Vec<String> {
            list.iter()
                .map(|b| b.event.custom_data.order_id.to_string())
                .collect()
        };
        assert_eq!(ids(&sorted.to_send), ["HELD", "NEW"]);
        let mut sending: Vec<&str> = sorted.sending.iter().map(crate::Text::as_str).collect();
        sending.sort();
        assert_eq!(sending, ["HELD", "NEW"]);
        assert_eq!(ids(&sorted.held), ["AHEAD"]);
        assert!(sorted.invalid.is_empty());
        let changed = Changed {
            order_id: "SENT".to_owned(),
            watermark: wm("w2").clone(),
            digest: Some(built("SENT", "w2", false).event.digest()),
        };
        assert_eq!(sorted.changed, [changed]);
        let counts = (
            stats.events,
            stats.skipped_duplicate,
            stats.changed_after_send,
            stats.skipped_rejected,
            stats.skipped_invalid,
            stats.held,
            stats.invalid,
        );
        assert_eq!(counts, (2, 3, 1, 1, 1, 1, 0));
        // AND the row without an order id waits for the page's commit to be counted invalid
        sorted.invalid_count.count_in(&mut stats);
        assert_eq!(stats.invalid, 1);
    }
}
