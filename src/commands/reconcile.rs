//! `ocapi reconcile`: the source beside the ledger, per day or per store. Reads the source's
//! orders in an event-time window (the same pages and transform as a run, so an order's value
//! and time are exactly what a run would send), reads the ledger rows of that window and of
//! those orders, and joins them here, because source and ledger may live in different
//! databases. The ledger-only parts are also SQL views (sql/0002 and sql/0003).
//!
//! For every group: `sent + invalid + returns + rejected + held + anonymous + never_seen =
//! source_orders + ledger_only`.
//!
//! Each line also gives the store-sales figures Google's store-sales upload asks for (the
//! ledger's view `ledger_store_sales`, sql/0012, computes the same per day and store):
//! `loyalty_fraction`, the share of the line's sales (`sent + invalid + rejected + anonymous`:
//! held orders and returns apart) that carried customer information (all but the anonymous
//! ones), and `transaction_upload_fraction`, the share of those that were sent.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::cli::ReconcileArgs;
use crate::commands::explain::decide;
use crate::config::Config;
use crate::db;
use crate::error::{Error, ExitStatus};
use crate::ledger::{LedgerReader, Status, WindowOrder};
use crate::source::{self, EventTimeWindow, Filter, ReadQuery};
use crate::transform::{self, InvalidReason, Rules};

pub use crate::cli::GroupBy;

/// One order as the source holds it.
#[derive(Debug, Clone)]
struct SourceOrder {
    /// Unix seconds, when valid.
    event_time: Option<i64>,
    /// The value, when valid.
    value: Option<Decimal>,
    /// The store.
    store_id: Option<String>,
    /// The currency, when known.
    currency: Option<String>,
    /// Every row of the order has a NULL watermark: incremental runs never read it.
    unwatermarked: bool,
    /// Why the order cannot become an event as the source holds it, if it cannot.
    invalid: Option<InvalidReason>,
}

/// The ledger reason of a return or void.
const NEGATIVE: &str = "negative value (a return or void is not a purchase)";

/// The counts of one group (or the total).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Line {
    /// The day (`YYYY-MM-DD`, `undated` for orders without an event time) or store; `total`
    /// for the totals.
    pub group: String,
    /// The currency of the line's values (ISO 4217, `-` when unknown). Values in different
    /// currencies are never added: each line holds one currency; `total` holds values only
    /// when the whole report has one currency (`null` otherwise, see `totals`).
    pub currency: Option<String>,
    /// Distinct orders in the source.
    pub source_orders: u64,
    /// Their value (orders whose value cannot be read count as 0).
    #[serde(with = "rust_decimal::serde::float")]
    pub source_value: Decimal,
    /// Orders the ledger has as sent.
    pub sent: u64,
    /// Their value, as sent.
    #[serde(with = "rust_decimal::serde::float")]
    pub sent_value: Decimal,
    /// Orders that could not become an event (returns and voids apart: `returns`).
    pub invalid: u64,
    /// Orders with a negative total (a return or void booked in the sales table): not sent,
    /// counted apart so that source totals that include returns still reconcile.
    pub returns: u64,
    /// Their value (negative).
    #[serde(with = "rust_decimal::serde::float")]
    pub returns_value: Decimal,
    /// Sent orders that carried Limited Data Use.
    pub sent_ldu: u64,
    /// Invalid orders by reason.
    pub invalid_reasons: BTreeMap<String, u64>,
    /// Orders Meta rejected.
    pub rejected: u64,
    /// Orders held until their event time comes (dated ahead by a fast till clock).
    pub held: u64,
    /// Walk-in sales: no customer information, recorded `anonymous`, not sent (not invalid).
    pub anonymous: u64,
    /// Of the line's sales (`sent + invalid + rejected + anonymous`), the share that carried
    /// customer information (0 to 1; `null` without sales).
    pub loyalty_fraction: Option<f64>,
    /// Of the sales that carried customer information, the share that was sent (0 to 1;
    /// `null` without such sales).
    pub transaction_upload_fraction: Option<f64>,
    /// Orders in the source with no ledger row that a run can still handle: not read yet, in
    /// flight, written late or unwatermarked. An order no run recorded that is a return counts
    /// under `returns`, and one too old to send under `invalid` (reason `event time more than
    /// 62 days old`), as a run would record them.
    pub never_seen: u64,
    /// Of those, orders that build into an event and whose every row has a NULL watermark:
    /// incremental runs never read them, `ocapi backfill` sends them.
    pub never_seen_null_watermark: u64,
    /// Of those, orders that cannot become an event as the source holds them (a run would
    /// record them invalid): fixing their rows sends them.
    pub never_seen_invalid: u64,
    /// Sent orders whose source value or event time now differs from what was sent.
    pub changed_after_send: u64,
    /// Ledger rows in the window whose order is not in the source window (deleted, or moved).
    pub ledger_only: u64,
    /// Rejected orders by the destination's message.
    pub rejected_reasons: BTreeMap<String, u64>,
}

impl Line {
    /// Adds another line's counts.
    fn add(&mut self, other: &Line) {
        self.source_orders += other.source_orders;
        self.source_value += other.source_value;
        self.sent += other.sent;
        self.sent_value += other.sent_value;
        self.invalid += other.invalid;
        self.returns += other.returns;
        self.returns_value += other.returns_value;
        self.sent_ldu += other.sent_ldu;
        for (reason, n) in &other.invalid_reasons {
            *self.invalid_reasons.entry(reason.clone()).or_default() += n;
        }
        self.rejected += other.rejected;
        self.held += other.held;
        self.anonymous += other.anonymous;
        self.never_seen += other.never_seen;
        self.never_seen_null_watermark += other.never_seen_null_watermark;
        self.never_seen_invalid += other.never_seen_invalid;
        self.changed_after_send += other.changed_after_send;
        self.ledger_only += other.ledger_only;
        for (reason, n) in &other.rejected_reasons {
            *self.rejected_reasons.entry(reason.clone()).or_default() += n;
        }
    }

    /// Sets `loyalty_fraction` and `transaction_upload_fraction` from the line's counts.
    fn fractions(mut self) -> Self {
        let sales = self.sent + self.invalid + self.rejected + self.anonymous;
        let with_customer = sales - self.anonymous;
        let share = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
        self.loyalty_fraction = share(with_customer, sales);
        self.transaction_upload_fraction = share(self.sent, with_customer);
        self
    }

    /// Counts a source order that has no ledger row as a run would record it now (the
    /// classification `explain` gives, `decide::advise`): a return under `returns`, an order
    /// too old to send under `invalid` (no run or backfill can send it), a walk-in sale under
    /// `anonymous`, anything else under `never_seen`.
    fn count_unrecorded(&mut self, order: &SourceOrder, now: i64) {
        if order.invalid == Some(InvalidReason::NegativeValue) {
            self.returns += 1;
            self.returns_value += order.value.unwrap_or_default();
        } else if decide::too_old(order.invalid, order.event_time, now) {
            self.invalid += 1;
            let reason = InvalidReason::TooOld.as_str().to_owned();
            *self.invalid_reasons.entry(reason).or_default() += 1;
        } else if order.invalid.is_some_and(InvalidReason::is_anonymous) {
            self.anonymous += 1;
        } else {
            self.never_seen += 1;
            if order.invalid.is_some() {
                self.never_seen_invalid += 1;
            } else {
                self.never_seen_null_watermark += u64::from(order.unwatermarked);
            }
        }
    }

    /// Counts a ledger row's status.
    fn count_status(&mut self, row: &WindowOrder) {
        match row.status {
            Status::Sent => {
                self.sent += 1;
                self.sent_value += row.value.unwrap_or_default();
                self.sent_ldu += u64::from(row.ldu == Some(true));
            }
            Status::Invalid if row.reason.as_deref() == Some(NEGATIVE) => {
                self.returns += 1;
                self.returns_value += row.value.unwrap_or_default();
            }
            Status::Invalid => {
                self.invalid += 1;
                let reason = row.reason.clone().unwrap_or_else(|| "-".to_owned());
                *self.invalid_reasons.entry(reason).or_default() += 1;
            }
            Status::Held => self.held += 1,
            Status::Anonymous => self.anonymous += 1,
            Status::Rejected => {
                self.rejected += 1;
                let reason = row.reason.clone().unwrap_or_else(|| "-".to_owned());
                *self.rejected_reasons.entry(reason).or_default() += 1;
            }
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// First event-time day, inclusive (UTC).
    pub from: NaiveDate,
    /// The day after the last one, exclusive (UTC): the window is `[from, to)`, as `--from`
    /// and `--to` take it, so a script can pass both back.
    pub to: NaiveDate,
    /// The grouping.
    pub by: GroupBy,
    /// One line per group, sorted.
    pub lines: Vec<Line>,
    /// The sum of the lines (values only when there is one currency).
    pub total: Line,
    /// The sum of the lines per currency.
    pub totals: Vec<Line>,
}

impl Report {
    /// The lines with one line per group, its currencies' counts added (for views that show
    /// counts per day or store, such as `ocapi report`); a merged line's values are kept only
    /// when all its parts share one currency, and its `currency` is then that one.
    pub(crate) fn merged_lines(&self) -> Vec<Line> {
        let mut merged: Vec<Line> = Vec::new();
        for line in &self.lines {
            match merged.last_mut() {
                Some(last) if last.group == line.group => {
                    let same = last.currency == line.currency;
                    last.add(line);
                    if !same {
                        last.currency = None;
                        last.source_value = Decimal::ZERO;
                        last.sent_value = Decimal::ZERO;
                        last.returns_value = Decimal::ZERO;
                    }
                }
                _ => merged.push(line.clone()),
            }
        }
        merged.into_iter().map(Line::fractions).collect()
    }
}

/// Builds the report for event times on days `[from, to)` (UTC midnights; `to` exclusive, as
/// `--to` everywhere). Errors with [`Error::Usage`] when `to` is not after `from`.
pub async fn reconcile(
    config: &Config,
    from: NaiveDate,
    to: NaiveDate,
    by: GroupBy,
) -> Result<Report, Error> {
    if to <= from {
        return Err(Error::Usage(format!(
            "`--to` ({to}) must be after `--from` ({from}): `--from` is inclusive, `--to` exclusive"
        )));
    }
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = to.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let window = EventTimeWindow {
        from: start.timestamp() as f64,
        to: end.timestamp() as f64,
    };
    let now = Utc::now().timestamp();
    let source = read_source(config, &window, now).await?;
    let ledger = read_ledger(config, &window, &source).await?;

    let group_of = |event_time: Option<i64>, store: Option<&str>, currency: Option<&str>| {
        let group = match by {
            GroupBy::Day => event_time
                .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                .map_or_else(|| "undated".to_owned(), |t| t.date_naive().to_string()),
            GroupBy::Store => store.unwrap_or("-").to_owned(),
        };
        (group, currency.unwrap_or("-").to_owned())
    };
    let mut groups: BTreeMap<(String, String), Line> = BTreeMap::new();
    for (order_id, order) in &source {
        let row = ledger.get(order_id);
        let group = group_of(
            order.event_time,
            order
                .store_id
                .as_deref()
                .or_else(|| row.and_then(|l| l.store_id.as_deref())),
            order
                .currency
                .as_deref()
                .or_else(|| row.and_then(|l| l.currency.as_deref())),
        );
        let line = groups.entry(group).or_default();
        line.source_orders += 1;
        line.source_value += order.value.unwrap_or_default();
        match row {
            None => line.count_unrecorded(order, now),
            Some(row) => {
                line.count_status(row);
                let changed =
                    row.changed || row.event_time != order.event_time || row.value != order.value;
                if row.status == Status::Sent && changed {
                    line.changed_after_send += 1;
                }
            }
        }
    }
    for (order_id, row) in &ledger {
        if source.contains_key(order_id) {
            continue;
        }
        let line = groups
            .entry(group_of(
                row.event_time,
                row.store_id.as_deref(),
                row.currency.as_deref(),
            ))
            .or_default();
        line.ledger_only += 1;
        line.count_status(row);
    }
    let mut totals: BTreeMap<String, Line> = BTreeMap::new();
    let lines: Vec<Line> = groups
        .into_iter()
        .map(|((group, currency), mut line)| {
            line.group = group;
            line.currency = Some(currency.clone());
            line = line.fractions();
            totals
                .entry(currency.clone())
                .or_insert_with(|| Line {
                    group: "total".to_owned(),
                    currency: Some(currency),
                    ..Line::default()
                })
                .add(&line);
            line
        })
        .collect();
    let totals: Vec<Line> = totals.into_values().map(Line::fractions).collect();
    let mut total = Line {
        group: "total".to_owned(),
        ..Line::default()
    };
    for line in &totals {
        total.add(line);
    }
    let mut total = total.fractions();
    // Orders whose currency is unknown (invalid ones) carry no value, so they do not make the
    // report multi-currency.
    let known: Vec<&Line> = totals
        .iter()
        .filter(|l| l.currency.as_deref() != Some("-"))
        .collect();
    match known.as_slice() {
        [] => {}
        [only] => total.currency.clone_from(&only.currency),
        _ => {
            total.source_value = Decimal::ZERO;
            total.sent_value = Decimal::ZERO;
        }
    }
    Ok(Report {
        from,
        to,
        by,
        lines,
        total,
        totals,
    })
}

/// Reads the distinct orders of the source window: every row of each order whose event time
/// falls in it, whatever its watermark holds (the same read and transform as a backfill).
async fn read_source(
    config: &Config,
    window: &EventTimeWindow,
    now: i64,
) -> Result<HashMap<String, SourceOrder>, Error> {
    let pool = db::pool(&config.source_url()?, "source", 1)?;
    let client = db::connect(&pool, "source").await?;
    let table = source::describe(&client, config).await?;
    let query = ReadQuery::new(config, &table);
    let rules = Rules::from_config(config);
    // Orders without an event time are kept: they are the `undated` line.
    let inside =
        |t: Option<i64>| t.is_none_or(|t| (t as f64) >= window.from && (t as f64) < window.to);
    let mut orders = HashMap::new();
    let mut reader =
        source::Reader::start(&client, &query, &Filter::WindowOrUndated(*window)).await?;
    loop {
        let page = reader.next_page(config.source.batch_size.get()).await?;
        if page.rows.is_empty() {
            reader.finish(&client).await?;
            break;
        }
        for rows in transform::orders(&page.rows) {
            let unwatermarked = rows.iter().all(|r| r.row_watermark.is_empty());
            let order = match transform::build(rows, &rules, now) {
                Ok(built) => (
                    built.event.custom_data.order_id.into_string(),
                    SourceOrder {
                        event_time: Some(built.event.event_time),
                        value: Some(built.event.custom_data.value),
                        store_id: built.store_id,
                        currency: Some(built.event.custom_data.currency.into_string()),
                        unwatermarked,
                        invalid: None,
                    },
                ),
                Err(invalid) => {
                    let Some(order_id) = invalid.order_id else {
                        continue;
                    };
                    (
                        order_id,
                        SourceOrder {
                            event_time: invalid.event_time,
                            value: invalid.value,
                            store_id: invalid.store_id,
                            currency: invalid.currency,
                            unwatermarked,
                            invalid: Some(invalid.reason),
                        },
                    )
                }
            };
            if inside(order.1.event_time) {
                orders.insert(order.0, order.1);
            }
        }
    }
    Ok(orders)
}

/// Reads the ledger rows whose event time is in the window, and those of the source's orders
/// (whose ledger event time may lie outside it).
async fn read_ledger(
    config: &Config,
    window: &EventTimeWindow,
    source: &HashMap<String, SourceOrder>,
) -> Result<HashMap<String, WindowOrder>, Error> {
    let ids: Vec<&str> = source.keys().map(String::as_str).collect();
    let ledger = LedgerReader::open(config).await?;
    Ok(ledger.window_orders(window, &ids).await?)
}

/// The report as a table for people.
pub fn render(report: &Report) -> String {
    // Store ids and reasons come from the source and the endpoint: no raw control character.
    use crate::escape::terminal;
    let mut out = String::new();
    let by = match report.by {
        GroupBy::Day => "day",
        GroupBy::Store => "store",
    };
    let _ = writeln!(
        out,
        "source vs ledger, event times from {} to {} (UTC, `--to` exclusive), by {by}",
        report.from, report.to
    );
    let _ = writeln!(
        out,
        "{:<12} {:>4} {:>8} {:>12} {:>8} {:>12} {:>8} {:>8} {:>8} {:>6} {:>9} {:>10} {:>8} {:>11} {:>7} {:>7}",
        by,
        "cur",
        "orders",
        "value",
        "sent",
        "sent value",
        "invalid",
        "returns",
        "rejected",
        "held",
        "anonymous",
        "never seen",
        "changed",
        "ledger only",
        "loyalty",
        "upload"
    );
    for line in report.lines.iter().chain(&report.totals) {
        let _ = writeln!(
            out,
            "{:<12} {:>4} {:>8} {:>12} {:>8} {:>12} {:>8} {:>8} {:>8} {:>6} {:>9} {:>10} {:>8} {:>11} {:>7} {:>7}",
            terminal(&line.group),
            terminal(line.currency.as_deref().unwrap_or("-")),
            line.source_orders,
            format!("{:.2}", line.source_value),
            line.sent,
            format!("{:.2}", line.sent_value),
            line.invalid,
            line.returns,
            line.rejected,
            line.held,
            line.anonymous,
            line.never_seen,
            line.changed_after_send,
            line.ledger_only,
            percent(line.loyalty_fraction),
            percent(line.transaction_upload_fraction)
        );
    }
    let _ = writeln!(
        out,
        "loyalty: the share of sales (sent, invalid, rejected, anonymous) that carried customer \
         information; upload: the share of those that were sent (Google's loyalty_fraction and \
         transaction_upload_fraction)"
    );
    if report.total.never_seen_null_watermark > 0 {
        let _ = writeln!(
            out,
            "{} never-seen orders have a NULL watermark on every row: incremental runs never read \
             them; fill the watermark column or send them with `ocapi backfill`",
            report.total.never_seen_null_watermark
        );
    }
    if report.total.never_seen_invalid > 0 {
        let _ = writeln!(
            out,
            "{} never-seen orders cannot become an event as the source holds them: fix their \
             rows (`ocapi explain ORDER_ID` says why) and touch their watermark column",
            report.total.never_seen_invalid
        );
    }
    if !report.total.invalid_reasons.is_empty() {
        let _ = writeln!(out, "invalid by reason:");
        for (reason, n) in &report.total.invalid_reasons {
            let _ = writeln!(out, "  {:<48} {n:>8}", terminal(reason));
        }
    }
    out
}

/// A fraction as a percentage with one decimal, `-` when there is none.
fn percent(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "-".to_owned(), |f| format!("{:.1}%", 100.0 * f))
}

/// `ocapi reconcile`: the source beside the ledger for the event days `[--from, --to)`.
pub(crate) async fn command(config: &Config, args: &ReconcileArgs) -> Result<ExitStatus, Error> {
    let (from, to) = crate::commands::day_window(args.from, args.to)?;
    let report = reconcile(config, from, to, args.by).await?;
    if args.meta {
        return super::reconcile_meta::command(config, &report, args.json).await;
    }
    if args.json {
        crate::commands::print_json(&report)?;
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_and_reasons_from_elsewhere_reach_the_terminal_escaped() {
        let line = Line {
            group: "S1\u{1b}[2J\nfake".to_owned(),
            currency: Some("USD".to_owned()),
            ..Line::default()
        };
        let mut total = Line {
            group: "total".to_owned(),
            ..Line::default()
        };
        total
            .invalid_reasons
            .insert("bad\u{1b}[31m\rreason".to_owned(), 1);
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let report = Report {
            from: day,
            to: day,
            by: GroupBy::Store,
            lines: vec![line],
            total,
            totals: Vec::new(),
        };
        let text = render(&report);
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text}");
        assert!(text.contains("S1\\x1b[2J\\nfake"), "{text}");
        assert!(text.contains("bad\\x1b[31m\\rreason"), "{text}");
    }
}
