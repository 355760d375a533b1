//! `ocapi explain ORDER_ID`: one order end to end. What the source holds (customer fields
//! masked, e.g. `j***@e***.com`, `***1212`), the event it becomes (hashed), its ledger row and
//! the runs that touched it, and, when it was not sent, why. The output never holds an
//! unhashed customer value.

use std::fmt::Write as _;

use crate::cli::ExplainArgs;
use crate::config::{Config, CustomerField};
use crate::db;
use crate::error::{Error, ExitStatus};
use crate::escape::terminal;
use crate::human::instant_text;
use crate::ledger::{LedgerReader, Status};
use crate::source::{self, ReadQuery, SourceRow};
use crate::transform::{self, Rules};
use chrono::Utc;

mod advice;
pub(crate) mod decide;

use advice::Advice;
use decide::{advise, InLedger, InSource, OrderState, Reach, Recorded};

/// Masks an email: first letter of the local part and of the domain, and the top-level
/// domain, lowercased as the hash input is (`Jane@Example.com` → `j***@e***.com`).
pub(crate) fn mask_email(email: &str) -> String {
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
pub(crate) fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 {
        return "***".to_owned();
    }
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("***{tail}")
}

/// Masks any other customer value: its first character (`Smith` → `S***`).
pub(crate) fn mask_text(text: &str) -> String {
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
            row.row_watermark.to_string()
        };
        let _ = writeln!(out, "  row {} (watermark {}):", i + 1, terminal(&watermark));
        let utc = transform::event_time(row, zone)
            .ok()
            .and_then(|t| chrono::DateTime::<Utc>::from_timestamp(t, 0))
            .map_or_else(|| "-".to_owned(), crate::human::instant);
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
            ("timezone", row.timezone.as_deref().map(str::to_owned)),
            ("value", row.value.as_deref().map(str::to_owned)),
            ("currency", row.currency.as_deref().map(str::to_owned)),
            ("store_id", row.store_id.as_deref().map(str::to_owned)),
            ("item_id", row.item_id.as_deref().map(str::to_owned)),
            (
                "item_quantity",
                row.item_quantity.as_deref().map(str::to_owned),
            ),
            ("item_price", row.item_price.as_deref().map(str::to_owned)),
        ];
        // Several values of one field are joined by the unit separator: mask each. Gender and
        // birth date are hidden whole (one character or a date would tell too much).
        let masked = CustomerField::ALL.map(|field| {
            let mask: fn(&str) -> String = match field {
                CustomerField::Em => mask_email,
                CustomerField::Ph => mask_phone,
                CustomerField::Ge | CustomerField::Db => |_| "***".to_owned(),
                _ => mask_text,
            };
            let value = row.customer(field).map(|t| {
                t.split(crate::source::VALUE_SEPARATOR)
                    .map(mask)
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            (field.mapping_key(), value)
        });
        for (key, value) in plain.into_iter().chain(masked) {
            if let Some(value) = value {
                let _ = writeln!(out, "    {key:<14} {}", terminal(&value));
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
    // One identity per order: the id as its column's type compares it, trimmed (`W-2` and
    // `W-2 ` are one order, and so are `1001.0` and `1001` in a numeric column).
    let order_id = table.id_kind.canonical(order_id);
    let order_id = order_id.as_str();
    let rows = source::read_orders(&source_client, &query, &[order_id.to_owned()]).await?;
    let rules = Rules::from_config(config);
    let zone = config.source.timezone.tz();

    let _ = writeln!(out, "\nsource ({}):", table.quoted_name);
    // Judged by the source database's clock, as a run judges it.
    let now = source::clock(&source_client).await?.now();
    // `transform::build` needs at least one row.
    let built = if rows.is_empty() {
        None
    } else {
        Some(transform::build(&rows, &rules, now))
    };
    if let Some(built) = &built {
        describe_rows(&rows, zone, &mut out);
        let _ = writeln!(
            out,
            "\nevent (as a run would send it now, from all its rows):"
        );
        match built {
            Ok(built) => {
                if let Some(until) = built.held_until {
                    let until = chrono::DateTime::<Utc>::from_timestamp(until, 0)
                        .map_or_else(|| "-".to_owned(), crate::human::instant);
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
            }
            // A walk-in is `anonymous` in the ledger, the run's stats and the advice alike.
            Err(invalid) if invalid.reason.is_anonymous() => {
                let _ = writeln!(
                    out,
                    "  none: anonymous (a walk-in sale: {}, so Meta cannot match it; not invalid)",
                    invalid.reason
                );
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
                if let Some(column) = line_column(config, invalid.reason) {
                    let _ = writeln!(
                        out,
                        "  rows above with the same {:?} (`mapping.item_line`) are one line and \
                         must agree on its {column:?}: fix the source or the line numbers",
                        config.mapping.item_line.as_deref().unwrap_or_default()
                    );
                }
            }
        }
    } else {
        let _ = writeln!(out, "  no row with this order id");
    }

    let source = match &built {
        None => InSource::Nothing,
        Some(Ok(built)) => InSource::Event {
            event_time: built.event.event_time,
            value: built.event.custom_data.value,
            held_until: built.held_until,
        },
        Some(Err(invalid)) => InSource::Invalid {
            reason: invalid.reason,
            event_time: invalid.event_time,
        },
    };
    let ledger = LedgerReader::open(config).await?;
    let _ = writeln!(out, "\nledger:");
    let Some(record) = ledger.order(order_id).await? else {
        let Some(last) = rows.last() else {
            return Err(Error::NotFound(format!(
                "no such order in the source or the ledger: {order_id:?} (order ids are \
                 compared trimmed, as the id column's type compares them)"
            )));
        };
        let _ = writeln!(out, "  no ledger row: no run has handled this order");
        let reach = if rows.iter().all(|r| r.row_watermark.is_empty()) {
            Reach::Unwatermarked
        } else {
            Reach::At {
                watermark: last.watermark.to_string(),
                position: ledger.position(&last.watermark).await?,
            }
        };
        let advice = advise(&OrderState {
            ledger: InLedger::Nothing(reach),
            source,
            watermark_column: config.source.watermark_column(),
            now,
        });
        write_advice(&mut out, "why not sent", &advice);
        return Ok(out);
    };
    let fields: [(&str, Option<String>); 14] = [
        ("status", Some(record.status.as_str().to_owned())),
        ("reason", record.reason.clone()),
        ("event_time", record.event_time_text.clone()),
        ("value", record.value_text.clone()),
        ("currency", record.currency.clone()),
        ("run_id", record.run_id.map(|r| r.to_string())),
        (
            "first_seen_at",
            record.first_seen_at.as_deref().map(instant_text),
        ),
        ("updated_at", record.updated_at.as_deref().map(instant_text)),
        ("sent_at", record.sent_at.as_deref().map(instant_text)),
        ("fbtrace_id", record.fbtrace_id.clone()),
        ("attempts", Some(record.attempts.to_string())),
        ("match_keys", record.match_keys.clone()),
        ("watermark", record.source_watermark.clone()),
        ("store_id", record.store_id.clone()),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            let _ = writeln!(out, "  {key:<14} {}", terminal(&value));
        }
    }

    let _ = writeln!(out, "\nruns that touched it:");
    let runs = ledger.order_runs(order_id).await?;
    if runs.is_empty() {
        let _ = writeln!(out, "  none recorded");
    }
    for run in &runs {
        let roles: Vec<&str> = [
            (run.first_seen, "first seen"),
            (run.sent, "sent"),
            (run.last_wrote, "last wrote the row"),
        ]
        .into_iter()
        .filter_map(|(yes, role)| yes.then_some(role))
        .collect();
        let _ = writeln!(
            out,
            "  run {} ({}, {}, started {}): {}",
            run.run_id,
            run.mode,
            run.status,
            instant_text(&run.started_at),
            roles.join(", ")
        );
    }

    let advice = advise(&OrderState {
        ledger: InLedger::Row(Recorded {
            status: record.status,
            reason: record.reason.as_deref(),
            event_time: record.event_time,
            value: record.value,
            changed_noticed: record.changed_after_send_at.as_deref(),
        }),
        source,
        watermark_column: config.source.watermark_column(),
        now,
    });
    let why = if record.status == Status::Sent {
        "why status"
    } else {
        "why not sent"
    };
    write_advice(&mut out, why, &advice);
    Ok(out)
}

/// The column on which rows of one line disagree, for the reasons that say so.
fn line_column(config: &Config, reason: transform::InvalidReason) -> Option<&str> {
    use transform::InvalidReason::{
        LineItemIdDisagrees, LinePriceDisagrees, LineQuantityDisagrees,
    };
    let m = &config.mapping;
    match reason {
        LineItemIdDisagrees => m.item_id.as_deref(),
        LineQuantityDisagrees => m.item_quantity.as_deref(),
        LinePriceDisagrees => m.item_price.as_deref(),
        _ => None,
    }
}

/// Writes the advice under `heading`, with its code in brackets for scripts.
fn write_advice(out: &mut String, heading: &str, advice: &Advice) {
    let advice_text = advice.to_string();
    let _ = writeln!(
        out,
        "\n{heading} [{}]:\n  {}",
        advice.code(),
        terminal(&advice_text)
    );
}

/// `ocapi explain ORDER_ID`: exits 1 (`Error::NotFound`) for an order that is nowhere.
pub(crate) async fn command(config: &Config, args: &ExplainArgs) -> Result<ExitStatus, Error> {
    print!("{}", explain(config, &args.order_id).await?);
    Ok(ExitStatus::Success)
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
