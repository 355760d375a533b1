//! `ocapi explain ORDER_ID`: one order end to end. What the source holds (customer fields
//! masked, e.g. `j***@e***.com`, `***1212`), the event it becomes (hashed), its ledger row and
//! the runs that touched it, and, when it was not sent, why. The output never holds an
//! unhashed customer value.

use std::fmt::Write as _;

use chrono::Utc;
use tokio_postgres::Client;

use crate::config::Config;
use crate::db::{self, quote_ident, DbError};
use crate::error::Error;
use crate::event::PURCHASE;
use crate::source::{self, ReadQuery, SourceRow};
use crate::transform::{self, Rules};

/// Masks an email: first letter of the local part and of the domain, and the top-level
/// domain, lowercased as the hash input is (`Jane@Example.com` → `j***@e***.com`).
pub fn mask_email(email: &str) -> String {
    let email = email.trim().to_lowercase();
    let email = email.as_str();
    let Some((local, domain)) = email.split_once('@') else {
        return mask_text(email);
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let (host, tld) = match domain.rsplit_once('.') {
        Some((host, tld)) => (host, format!(".{tld}")),
        None => (domain, String::new()),
    };
    format!("{}***@{}***{tld}", first(local), first(host))
}

/// Masks a phone number: only its last four digits (`+1 650 555 1212` → `***1212`).
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 {
        return "***".to_owned();
    }
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("***{tail}")
}

/// Masks any other customer value: its first character (`Smith` → `S***`).
pub fn mask_text(text: &str) -> String {
    match text.trim().chars().next() {
        Some(c) => format!("{c}***"),
        None => String::new(),
    }
}

/// The source rows of an order, as printable lines with customer values masked.
fn describe_rows(rows: &[SourceRow], zone: chrono_tz::Tz, out: &mut String) {
    for (i, row) in rows.iter().enumerate() {
        let watermark = if row.row_watermark.is_empty() {
            "NULL: incremental runs do not read this row".to_owned()
        } else {
            row.row_watermark.clone()
        };
        let _ = writeln!(out, "  row {} (watermark {watermark}):", i + 1);
        let utc = transform::event_time(row, zone)
            .ok()
            .and_then(|t| chrono::DateTime::<Utc>::from_timestamp(t, 0))
            .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
        let time = match &row.local_time {
            Some(local) => {
                let zone = transform::row_zone(row, zone)
                    .map_or_else(|_| "an unknown zone".to_owned(), |z| z.name().to_owned());
                format!("{local} local in {zone} = {utc} sent")
            }
            None => utc,
        };
        let plain: [(&str, Option<String>); 8] = [
            ("event_time", Some(time)),
            ("timezone", row.timezone.clone()),
            ("value", row.value.clone()),
            ("currency", row.currency.clone()),
            ("store_id", row.store_id.clone()),
            ("item_id", row.item_id.clone()),
            ("item_quantity", row.item_quantity.clone()),
            ("item_price", row.item_price.clone()),
        ];
        // Several values of one field are joined by the unit separator: mask each.
        let each = |text: &Option<String>, mask: fn(&str) -> String| {
            text.as_deref().map(|t| {
                t.split(crate::source::VALUE_SEPARATOR)
                    .map(mask)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        let masked: [(&str, Option<String>); 11] = [
            ("email", each(&row.email, mask_email)),
            ("phone", each(&row.phone, mask_phone)),
            ("first_name", each(&row.first_name, mask_text)),
            ("last_name", each(&row.last_name, mask_text)),
            ("city", each(&row.city, mask_text)),
            ("state", each(&row.state, mask_text)),
            ("zip", each(&row.zip, mask_text)),
            ("country", each(&row.country, mask_text)),
            ("gender", row.gender.as_deref().map(|_| "***".to_owned())),
            (
                "date_of_birth",
                row.date_of_birth.as_deref().map(|_| "***".to_owned()),
            ),
            ("external_id", each(&row.external_id, mask_text)),
        ];
        for (key, value) in plain.into_iter().chain(masked) {
            if let Some(value) = value {
                let _ = writeln!(out, "    {key:<14} {value}");
            }
        }
    }
}

/// Explains one order; the text is safe to paste into a ticket.
pub async fn explain(config: &Config, order_id: &str) -> Result<String, Error> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "order {order_id:?} (connector {:?}, dataset {})",
        config.connector.name, config.destination.dataset_id
    );

    let source_pool = db::pool(&config.source_url()?, "source", 1)?;
    let source_client = db::connect(&source_pool, "source").await?;
    let table = source::describe(&source_client, config).await?;
    let query = ReadQuery::new(config, &table);
    // One identity per order: the id, trimmed (`W-2` and `W-2 ` are one order).
    let order_id = order_id.trim_matches(transform::ID_BLANKS);
    let rows = source::read_orders(&source_client, &query, &[order_id.to_owned()]).await?;
    let rules = Rules::from_config(config);
    let zone = config.source.timezone.parse().unwrap_or(chrono_tz::UTC);

    let _ = writeln!(out, "\nsource ({}):", table.quoted_name);
    let mut built_ok = None;
    if rows.is_empty() {
        let _ = writeln!(out, "  no row with this order id");
    } else {
        describe_rows(&rows, zone, &mut out);
        let _ = writeln!(
            out,
            "\nevent (as a run would send it now, from all its rows):"
        );
        match transform::build(&rows, &rules, Utc::now().timestamp()) {
            Ok(built) => {
                if let Some(until) = built.held_until {
                    let until = chrono::DateTime::<Utc>::from_timestamp(until, 0)
                        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
                    let _ = writeln!(
                        out,
                        "  held until {until}: its event time is ahead of now (a till clock \
                         running fast?); the first run after that sends it"
                    );
                }
                let json =
                    serde_json::to_string_pretty(&built.event).unwrap_or_else(|_| "{}".to_owned());
                for line in json.lines() {
                    let _ = writeln!(out, "  {line}");
                }
                if !built.dropped.is_empty() {
                    let keys: Vec<&str> = built.dropped.iter().map(|f| f.key()).collect();
                    let _ = writeln!(
                        out,
                        "  dropped as unusable: {} (not valid after normalization)",
                        keys.join(", ")
                    );
                }
                built_ok = Some(built);
            }
            Err(invalid) => {
                let _ = writeln!(out, "  none: invalid ({})", invalid.reason);
                if invalid.reason == transform::InvalidReason::ConflictingRows {
                    let _ = writeln!(
                        out,
                        "  the rows above share this order id but disagree (on the time, value, \
                         currency, store or, without line items, anything): fix the source so \
                         that one order id means one order"
                    );
                }
            }
        }
    }

    let ledger_pool = db::pool(&config.ledger_url()?, "ledger", 1)?;
    let ledger_client = db::connect(&ledger_pool, "ledger").await?;
    crate::ledger::ensure_schema(&ledger_client, &config.ledger.schema).await?;
    let schema = quote_ident(&config.ledger.schema);
    let _ = writeln!(out, "\nledger:");
    let ledger_row = ledger_client
        .query_opt(
            &format!(
                "select status, reason, event_time::text, value::text, currency, run_id,
                        first_seen_at::text, updated_at::text, sent_at::text, fbtrace_id,
                        attempts, array_to_string(match_keys, ','), source_watermark,
                        store_id, extract(epoch from event_time)::int8, value,
                        changed_after_send_at::text
                 from {schema}.ledger
                 where dataset_id = $1 and event_name = $2 and order_id = $3"
            ),
            &[&config.destination.dataset_id, &PURCHASE, &order_id],
        )
        .await
        .map_err(DbError::query("cannot read the order's ledger row"))?;
    let Some(row) = ledger_row else {
        if rows.is_empty() {
            return Err(Error::NotFound(format!(
                "no such order in the source or the ledger: {order_id:?} (order ids are \
                 compared trimmed and case-sensitively)"
            )));
        }
        let _ = writeln!(out, "  no ledger row: no run has handled this order");
        let why = never_seen_reason(config, &ledger_client, &schema, &rows).await?;
        let _ = writeln!(out, "\nwhy not sent:\n  {why}");
        return Ok(out);
    };
    let status: String = row.get(0);
    let reason: Option<String> = row.get(1);
    let fields: [(&str, Option<String>); 14] = [
        ("status", Some(status.clone())),
        ("reason", reason.clone()),
        ("event_time", row.get(2)),
        ("value", row.get(3)),
        ("currency", row.get(4)),
        (
            "run_id",
            row.get::<_, Option<i64>>(5).map(|r| r.to_string()),
        ),
        ("first_seen_at", row.get(6)),
        ("updated_at", row.get(7)),
        ("sent_at", row.get(8)),
        ("fbtrace_id", row.get(9)),
        ("attempts", Some(row.get::<_, i32>(10).to_string())),
        ("match_keys", row.get(11)),
        ("watermark", row.get(12)),
        ("store_id", row.get(13)),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            let _ = writeln!(out, "  {key:<14} {value}");
        }
    }

    let _ = writeln!(out, "\nruns that touched it:");
    let runs = ledger_client
        .query(
            &format!(
                "select r.run_id, r.mode, r.status, r.started_at::text,
                        r.run_id = l.run_id, r.started_at <= l.first_seen_at
                          and coalesce(r.finished_at, now()) >= l.first_seen_at,
                        l.sent_at is not null and r.started_at <= l.sent_at
                          and coalesce(r.finished_at, now()) >= l.sent_at
                 from {schema}.runs r
                 join {schema}.ledger l
                   on l.dataset_id = $1 and l.event_name = $2 and l.order_id = $3
                 where r.connector = l.connector
                   and (r.run_id = l.run_id
                        or (r.started_at <= l.first_seen_at
                            and coalesce(r.finished_at, now()) >= l.first_seen_at)
                        or (l.sent_at is not null and r.started_at <= l.sent_at
                            and coalesce(r.finished_at, now()) >= l.sent_at))
                 order by r.run_id"
            ),
            &[&config.destination.dataset_id, &PURCHASE, &order_id],
        )
        .await
        .map_err(DbError::query("cannot read the order's runs"))?;
    if runs.is_empty() {
        let _ = writeln!(out, "  none recorded");
    }
    for run in &runs {
        let mut roles = Vec::new();
        if run.get::<_, Option<bool>>(5) == Some(true) {
            roles.push("first seen");
        }
        if run.get::<_, Option<bool>>(6) == Some(true) {
            roles.push("sent");
        }
        if run.get::<_, Option<bool>>(4) == Some(true) {
            roles.push("last wrote the row");
        }
        let _ = writeln!(
            out,
            "  run {} ({}, {}, started {}): {}",
            run.get::<_, i64>(0),
            run.get::<_, String>(1),
            run.get::<_, String>(2),
            run.get::<_, String>(3),
            roles.join(", ")
        );
    }

    let ledger_time: Option<i64> = row.get(14);
    let ledger_value: Option<rust_decimal::Decimal> = row.get(15);
    let changed_at: Option<String> = row.get(16);
    let too_old = ledger_time.is_some_and(|t| t < Utc::now().timestamp() - transform::MAX_AGE_SECS);
    let why = match status.as_str() {
        "sent" => {
            let changed = changed_at.is_some()
                || built_ok.as_ref().is_some_and(|b| {
                    Some(b.event.event_time) != ledger_time
                        || Some(b.event.custom_data.value) != ledger_value
                });
            if changed {
                format!(
                    "sent; a row of the order was added or changed after it was sent{}, and \
                     ocapi never sends an order twice (Meta takes no correction and would count \
                     it twice): counted as changed_after_send",
                    changed_at
                        .map(|t| format!(" (noticed {t})"))
                        .unwrap_or_default()
                )
            } else {
                "sent".to_owned()
            }
        }
        "held" => {
            let until = ledger_time
                .map(|t| t - transform::MAX_FUTURE_SECS)
                .and_then(|t| chrono::DateTime::<Utc>::from_timestamp(t, 0))
                .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
            format!(
                "held until {until}: its event time is ahead of now (a till clock running \
                 fast?); nothing to fix, the first run after that sends it"
            )
        }
        "invalid"
            if reason.as_deref() == Some(transform::InvalidReason::NegativeValue.as_str()) =>
        {
            "a return or void (a negative total): not a purchase, so nothing is sent and \
             nothing needs fixing; `reconcile` counts it under returns"
                .to_owned()
        }
        "invalid" if too_old => format!(
            "invalid: {}; its event time is more than 62 days old now, so Meta no longer \
             accepts it whatever is fixed",
            reason.as_deref().unwrap_or("-")
        ),
        "invalid" => format!(
            "invalid: {}; fix the source row and touch its watermark column, and the next run \
             sends it",
            reason.as_deref().unwrap_or("-")
        ),
        _ => format!(
            "rejected by Meta: {}; fix the source row and touch its watermark column, and the \
             next run sends it again",
            reason.as_deref().unwrap_or("-")
        ),
    };
    let _ = writeln!(
        out,
        "\nwhy {}:\n  {why}",
        if status == "sent" {
            "status"
        } else {
            "not sent"
        }
    );
    Ok(out)
}

/// Why an order with no ledger row was not sent: not in the source, invalid, or not read yet
/// (its watermark is ahead of the connector's, or behind it: written late).
async fn never_seen_reason(
    config: &Config,
    client: &Client,
    schema: &str,
    rows: &[SourceRow],
) -> Result<String, Error> {
    let Some(last) = rows.last() else {
        return Ok("the source has no row with this order id".to_owned());
    };
    if rows.iter().all(|r| r.row_watermark.is_empty()) {
        return Ok(format!(
            "every row of the order has a NULL {:?}: incremental runs read rows by their \
             watermark and never read these; fill the column, or send the order with \
             `ocapi backfill --from … --to …` around its event time",
            config.source.watermark_column
        ));
    }
    let state = client
        .query_opt(
            &format!("select watermark, watermark_type from {schema}.state where connector = $1"),
            &[&config.connector.name],
        )
        .await
        .map_err(DbError::query("cannot read the watermark"))?;
    let Some(state) = state else {
        return Ok("no run has completed a page yet: run `ocapi run`".to_owned());
    };
    let watermark: Option<String> = state.get(0);
    let kind: Option<String> = state.get(1);
    let (Some(watermark), Some(kind)) = (watermark, kind) else {
        return Ok("no watermark is stored yet: run `ocapi run`".to_owned());
    };
    let Some(kind) = source::WatermarkKind::from_sql_type(&kind) else {
        return Ok(format!("the stored watermark is {watermark}"));
    };
    let t = kind.sql_type();
    let behind: bool = client
        .query_one(
            &format!("select $1::text::{t} < $2::text::{t}"),
            &[&last.watermark, &watermark],
        )
        .await
        .is_ok_and(|r| r.get(0));
    Ok(if behind {
        format!(
            "its watermark {} is behind the connector's {watermark} (the row was written late, \
             beyond `source.lookback`); send it with `ocapi backfill --from … --to …` around \
             its event time",
            last.watermark
        )
    } else {
        format!(
            "its watermark {} is ahead of the connector's {watermark}: the next run sends it",
            last.watermark
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(mask_email("jane.doe@example.com"), "j***@e***.com");
        assert_eq!(mask_phone("+1 (650) 555-1212"), "***1212");
        assert_eq!(mask_phone("12"), "***");
        assert_eq!(mask_text("Smith"), "S***");
        assert_eq!(mask_email("nope"), "n***");
    }
}
