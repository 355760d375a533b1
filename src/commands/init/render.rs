//! The `connector.toml` that `ocapi init` writes: every key it sets with a comment saying where
//! the choice came from, and the columns it could not place. Never a URL or a password: the
//! source is `url_env = "OCAPI_SOURCE_URL"`. The keys are those of docs/configuration.md.

use std::fmt::Write as _;

use super::propose::{Change, Proposal};
use crate::source::catalog::Relation;
use crate::source::WatermarkKind;

/// The variable the written file names for the source URL.
pub const URL_ENV: &str = "OCAPI_SOURCE_URL";

/// The variable the written file names for Meta's access token.
pub const TOKEN_ENV: &str = "META_ACCESS_TOKEN";

/// What goes into the file besides the proposal.
#[derive(Debug, Clone)]
pub struct Choices {
    /// `connector.name`.
    pub connector: String,
    /// `source.start`, as TOML (a quoted time or an integer).
    pub start: String,
    /// Why that start, for its comment.
    pub start_why: String,
    /// `defaults.currency` and where it came from.
    pub currency: Option<(String, String)>,
    /// `defaults.country` and where it came from.
    pub country: Option<(String, String)>,
    /// `destination.dataset_id`, if given.
    pub dataset_id: Option<String>,
    /// The day the file is written (UTC), for its header.
    pub today: String,
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `key = value` padded to a comment column, then `# comment`.
fn line(out: &mut String, assignment: &str, comment: &str) {
    if comment.is_empty() {
        let _ = writeln!(out, "{assignment}");
    } else {
        let _ = writeln!(out, "{assignment:<38} # {comment}");
    }
}

/// What each `[mapping]` key is, for its comment.
fn meaning(key: &str) -> &'static str {
    match key {
        "order_id" => "the receipt id: event_id and custom_data.order_id",
        "event_time" => "when the purchase happened",
        "store_id" => "the store, for `ocapi reconcile --by store` (not sent)",
        "timezone" => "each row's IANA zone: the event time is read in it",
        "value" => "the order total",
        "currency" => "ISO 4217",
        "item_id" => "line items: every row of an order is a line of ONE event",
        "item_quantity" => "the line's quantity",
        "item_price" => "the line's unit price",
        "item_line" => "the line number: repeated rows of a line are one line",
        "data_processing_options" => "Limited Data Use per order",
        "opt_out" => "true sends the event for attribution only",
        "delivery_category" => "in_store, curbside or home_delivery",
        _ => "a customer field, normalized and hashed",
    }
}

/// The file for `relation` as `proposal` and `choices` say.
pub fn render(relation: &Relation, proposal: &Proposal, choices: &Choices) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# ocapi connector config for the {} {}, written by `ocapi init` on {}.",
        relation.kind.noun(),
        relation.qualified(),
        choices.today
    );
    out.push_str(
        "# Each choice says where it came from: read them, then `ocapi migrate` and `ocapi check`.\n\
         # Every key: docs/configuration.md; all of them with comments: `ocapi init --example`.\n\
         # Durations are humantime strings: \"30s\", \"15m\", \"1h 30m\".\n\n",
    );
    out.push_str("[connector]\n");
    line(
        &mut out,
        &format!("name = {}", quoted(&choices.connector)),
        "names this sync's state, runs and lock",
    );

    out.push_str("\n[source]\n");
    line(
        &mut out,
        &format!("url_env = {}", quoted(URL_ENV)),
        "the variable holding the source's URL (no password in this file)",
    );
    line(
        &mut out,
        &format!("table = {}", quoted(&relation.qualified())),
        "",
    );
    let event_time = proposal.column("event_time").unwrap_or_default();
    match &proposal.watermark {
        Some((column, declared, kind)) => {
            line(
                &mut out,
                &format!("watermark_column = {}", quoted(column)),
                &format!("{declared}: grows whenever a row is written"),
            );
            if *kind == WatermarkKind::Integer {
                line(
                    &mut out,
                    "# lookback = 0",
                    "an integer watermark's lookback is in its own units",
                );
            } else {
                line(
                    &mut out,
                    "lookback = \"15m\"",
                    "re-read this window behind the watermark (rows committed late)",
                );
            }
        }
        None if !proposal.changes.is_empty() => {
            out.push_str(
                "# watermark_column: none (the [[source.changes]] below find the changes)\n",
            );
        }
        None => {
            line(
                &mut out,
                &format!("watermark_column = {}", quoted(event_time)),
                "CHECK: no updated_at-like column was found; the event time only finds new rows, never changed ones",
            );
            line(
                &mut out,
                "lookback = \"15m\"",
                "re-read this window behind the watermark (rows committed late)",
            );
        }
    }
    line(
        &mut out,
        &format!("start = {}", choices.start),
        &choices.start_why,
    );
    if proposal.column("timezone").is_none() {
        out.push_str(
            "# timezone = \"UTC\"                   # how a timestamp without time zone is read \
             (IANA name), when no column gives each row's zone\n",
        );
    }
    for change in &proposal.changes {
        match change {
            Change::Entry {
                table,
                watermark_column,
                key,
                matches,
            } => {
                out.push_str("\n[[source.changes]]                     # a base table of the view: its changes move an order\n");
                line(&mut out, &format!("table = {}", quoted(table)), "");
                line(
                    &mut out,
                    &format!("watermark_column = {}", quoted(watermark_column)),
                    "the table's own, indexed there",
                );
                line(
                    &mut out,
                    &format!("key = {}", quoted(key)),
                    "a column of that table ...",
                );
                match matches {
                    Some(column) => line(
                        &mut out,
                        &format!("matches = {}", quoted(column)),
                        "... equal to this column of source.table",
                    ),
                    None => line(
                        &mut out,
                        "# matches = (mapping.order_id)",
                        "... equal to the order id of source.table",
                    ),
                }
            }
            Change::Skipped { table, why } => {
                out.push('\n');
                let mut comment = format!("# {table}: no [[source.changes]] entry:");
                for word in why.split_whitespace() {
                    if comment.len() + word.len() >= 99 {
                        let _ = writeln!(out, "{comment}");
                        comment = "#".to_owned();
                    }
                    comment.push(' ');
                    comment.push_str(word);
                }
                let _ = writeln!(out, "{comment}");
            }
        }
    }

    out.push_str("\n[mapping]                              # event field = source column (names are case-sensitive)\n");
    for placed in &proposal.placed {
        line(
            &mut out,
            &format!("{} = {}", placed.key, quoted(&placed.column)),
            &format!("{}; {}", placed.declared, meaning(placed.key)),
        );
    }
    if !proposal.unplaced.is_empty() {
        out.push_str(
            "# Not placed (map any that holds one of the keys of docs/configuration.md):\n",
        );
        for (column, declared) in &proposal.unplaced {
            let _ = writeln!(out, "#   {column} ({declared})");
        }
    }

    out.push_str(
        "\n[defaults]                             # used where a row's column is NULL or empty\n",
    );
    match &choices.currency {
        Some((code, why)) => line(&mut out, &format!("currency = {}", quoted(code)), why),
        None => out.push_str(
            "# currency = \"USD\"                   # the currency column gives each row's\n",
        ),
    }
    match &choices.country {
        Some((code, why)) => line(&mut out, &format!("country = {}", quoted(code)), why),
        None => out.push_str(
            "# country = \"US\"                     # also the region of national phone numbers: set it\n",
        ),
    }

    out.push_str("\n[destination]\n");
    line(
        &mut out,
        "kind = \"meta\"",
        "the Conversions API (or \"file\" with path = \"...\": NDJSON)",
    );
    match &choices.dataset_id {
        Some(id) => line(
            &mut out,
            &format!("dataset_id = {}", quoted(id)),
            "the dataset (pixel) id; also the ledger's dedup scope",
        ),
        None => line(
            &mut out,
            "dataset_id = \"0\"",
            "SET IT: your dataset (pixel) id (Events Manager)",
        ),
    }
    line(
        &mut out,
        &format!("access_token_env = {}", quoted(TOKEN_ENV)),
        "or access_token_file = \"/run/secrets/meta_token\"",
    );
    out.push_str(
        "# base_url = \"http://127.0.0.1:4599\"  # to try this file against `ocapi sandbox` \
         (default https://graph.facebook.com)\n",
    );
    out.push_str(
        "\n# [ledger]                             # the ledger's schema (default \"ocapi\"); \
         url_env for another database\n\
         # schema = \"ocapi\"\n",
    );
    out
}
