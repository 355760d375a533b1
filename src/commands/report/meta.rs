//! Meta's side in the report (issue 25, docs/meta-side.md): the token's and the API version's
//! remaining life, and Meta's own `Purchase` counts beside the ledger's sent orders per UTC day
//! where Meta answers them (`reconcile --meta`'s figures). A Meta that cannot be read leaves
//! a note, never a failed report.

use std::fmt::Write as _;

use chrono::Utc;

use super::{cell, esc};
use crate::commands::reconcile::Report;
use crate::commands::reconcile_meta::{self, MetaReconcile};
use crate::config::{Config, DestinationKind};
use crate::destination::meta::life::MetaLife;
use crate::destination::meta::token::{Finding, Severity};
use crate::destination::MetaDestination;

/// What the report shows of Meta's side.
#[derive(Debug, Clone, Default)]
pub(crate) struct MetaSection {
    /// The token's and the version's remaining life.
    pub life: MetaLife,
    /// What `check` would say about them (warnings and failures only).
    pub findings: Vec<Finding>,
    /// Meta's counts beside the ledger's, when Meta answered.
    pub counts: Option<MetaReconcile>,
    /// Why Meta's counts are missing, when they are.
    pub note: Option<String>,
}

/// Reads Meta's side for the report's days; `None` for a destination that is not Meta.
pub(crate) async fn gather(config: &Config, by_day: &Report) -> Option<MetaSection> {
    if config.destination.kind != DestinationKind::Meta {
        return None;
    }
    let meta = match MetaDestination::from_config(config) {
        Ok(meta) => meta,
        Err(error) => {
            return Some(MetaSection {
                note: Some(format!("cannot reach Meta: {error}")),
                ..MetaSection::default()
            })
        }
    };
    let life = meta
        .life(config.alerts.token_expiry_warning, Utc::now())
        .await;
    let mut section = MetaSection {
        life: life.life,
        findings: life
            .findings
            .into_iter()
            .filter(|f| f.severity != Severity::Ok)
            .collect(),
        ..MetaSection::default()
    };
    match reconcile_meta::read(config, by_day).await {
        Ok(stats) => {
            section.counts = Some(reconcile_meta::compare(
                config,
                by_day,
                Some(&stats),
                Utc::now(),
            ));
        }
        Err(warning) => section.note = Some(warning),
    }
    Some(section)
}

/// Seconds left for people (`15.1d`, `never`, `unknown`).
fn left(seconds: Option<i64>, none: &str) -> String {
    seconds.map_or_else(|| none.to_owned(), |s| crate::human::duration(s as f64))
}

/// The section.
pub(super) fn render(out: &mut String, section: &MetaSection) {
    out.push_str("<h2>Meta's side (Meta's figures, not ocapi's)</h2>\n<table>");
    let life = &section.life;
    let _ = writeln!(
        out,
        "<tr><td>API version {}: time left</td>{}</tr>\
         <tr><td>access token: time left</td>{}</tr></table>",
        esc(&life.api_version),
        cell(
            "meta/api_version_left",
            left(life.api_version_sunset_seconds, "unknown")
        ),
        cell(
            "meta/token_left",
            left(life.token_expires_in_seconds, "never, or unknown")
        ),
    );
    if !section.findings.is_empty() {
        out.push_str("<ul>");
        for finding in &section.findings {
            let _ = write!(out, "<li>{}</li>", esc(&finding.text));
        }
        out.push_str("</ul>\n");
    }
    if let Some(note) = &section.note {
        let _ = writeln!(out, "<p>Meta's counts could not be read: {}</p>", esc(note));
    }
    let Some(counts) = &section.counts else {
        return;
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">Purchase events Meta counts per UTC day ({}), beside the orders the \
         ledger sent for that day. Days younger than {} are left out of the difference: Meta \
         says nothing of how soon its counts settle.</p>",
        esc(counts.source),
        crate::human::duration(counts.settle_seconds as f64)
    );
    out.push_str(
        "<table><tr><th>day</th><th>Meta received</th><th>ledger sent</th>\
         <th>difference</th></tr>",
    );
    for day in &counts.days {
        let d = day.day;
        let show = |v: Option<i64>, settled: bool| match v {
            Some(v) => v.to_string(),
            None if !settled => "not settled".to_owned(),
            None => "-".to_owned(),
        };
        let _ = write!(
            out,
            "<tr><td>{d}</td>{}{}{}</tr>",
            cell(
                &format!("meta/{d}/meta_received"),
                day.meta_received
                    .map_or_else(|| "-".to_owned(), |m| m.to_string())
            ),
            cell(&format!("meta/{d}/ledger_sent"), day.ledger_sent),
            cell(
                &format!("meta/{d}/difference"),
                show(day.difference, day.settled)
            ),
        );
    }
    out.push_str("</table>\n");
}
