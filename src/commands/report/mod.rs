//! `ocapi report --html FILE`: one self-contained HTML page (no script, font, stylesheet or
//! request outside it; its Content-Security-Policy forbids them) with charts drawn as inline
//! SVG, for people who want to look rather than query:
//! - per day, source orders against orders sent, invalid and rejected (`reconcile --by day`);
//! - per store, the share of source orders sent (`reconcile --by store`);
//! - match-key coverage over the runs in the window (`runs`);
//! - upload lag per run (`runs`);
//! - the top invalid and rejected reasons with their counts;
//! - per currency and day, the value sent against the source's value (`reconcile --by day`);
//! - Meta's side: the token's and the API version's time left, Meta's counts beside the
//!   ledger's (`reconcile --meta`).
//!
//! Run charts are drawn from three runs on; fewer show as tables only. Axis ticks are round
//! numbers. Match keys are named as the `[mapping]` keys (email, phone, …), not Meta's codes.
//!
//! Every figure shown also stands in a table cell tagged `data-figure="..."`, with the same
//! value as `reconcile --json` and `runs --json` give for the window.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::cli::ReportArgs;
use crate::commands::reconcile::{self, GroupBy, Line};
use crate::commands::runs::{self, RunRecord};
use crate::config::Config;
use crate::error::{Error, ExitStatus};

mod meta;
mod money;
mod run_charts;

use run_charts::{coverage, lag};

/// Runs read for the run charts (those started in the window are shown).
pub(crate) const RUNS: i64 = 60;
/// Reasons listed per kind.
pub(crate) const TOP_REASONS: usize = 10;

/// Colours: source, sent, invalid, rejected (ColorBrewer Set2, readable in print and for most
/// colour-blind readers).
const SOURCE: &str = "#8da0cb";
/// Sent.
const SENT: &str = "#66c2a5";
/// Invalid.
const INVALID: &str = "#fc8d62";
/// Rejected.
const REJECTED: &str = "#e78ac3";
/// Line colours for match keys and lag.
const PALETTE: [&str; 8] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
];

/// What the report shows.
#[derive(Debug, Clone)]
pub(crate) struct ReportData {
    /// `connector.name`.
    pub connector: String,
    /// First event-time day, inclusive (UTC).
    pub from: NaiveDate,
    /// The day after the last one, exclusive (UTC): the window is `[from, to)`, as `--from`
    /// and `--to` take it.
    pub to: NaiveDate,
    /// When it was made (RFC 3339, UTC).
    pub generated_at: String,
    /// `reconcile --by day`.
    pub by_day: reconcile::Report,
    /// `reconcile --by store`.
    pub by_store: reconcile::Report,
    /// `reconcile --by day`'s lines before merging: one per day and currency, with values.
    pub values: Vec<Line>,
    /// The window's totals per currency.
    pub value_totals: Vec<Line>,
    /// Runs started in the window, oldest first.
    pub runs: Vec<RunRecord>,
    /// Meta's side, for a Meta destination.
    pub meta: Option<meta::MetaSection>,
}

/// Reads what the report shows for the event days `[from, to)` (`to` exclusive).
pub(crate) async fn gather(
    config: &Config,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<ReportData, Error> {
    // The charts count orders per day and store, whatever their currency.
    let mut by_day = reconcile::reconcile(config, from, to, GroupBy::Day).await?;
    let values = std::mem::take(&mut by_day.lines);
    by_day.lines = reconcile::Report {
        lines: values.clone(),
        ..by_day.clone()
    }
    .merged_lines();
    let value_totals = by_day.totals.clone();
    let meta = meta::gather(config, &by_day).await;
    let mut by_store = reconcile::reconcile(config, from, to, GroupBy::Store).await?;
    by_store.lines = by_store.merged_lines();
    let mut runs = in_window(runs::recent(config, RUNS).await?, from, to);
    runs.reverse();
    Ok(ReportData {
        connector: config.connector.name.clone(),
        from,
        to,
        generated_at: crate::human::instant(chrono::Utc::now()),
        by_day,
        by_store,
        values,
        value_totals,
        runs,
        meta,
    })
}

/// The runs started on days `[from, to)` (UTC; `to` exclusive).
pub(crate) fn in_window(runs: Vec<RunRecord>, from: NaiveDate, to: NaiveDate) -> Vec<RunRecord> {
    runs.into_iter()
        .filter(|r| {
            r.started_at
                .get(..10)
                .and_then(|day| day.parse::<NaiveDate>().ok())
                .is_some_and(|day| from <= day && day < to)
        })
        .collect()
}

/// A percentage with one decimal, as the report shows it.
pub(crate) fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "-".to_owned();
    }
    format!("{:.1}", 100.0 * part / whole)
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table cell holding a figure, tagged with its key.
fn cell(key: &str, value: impl std::fmt::Display) -> String {
    format!(
        "<td data-figure=\"{}\">{}</td>",
        esc(key),
        esc(&value.to_string())
    )
}

/// A share (0 to 1) as a percentage with one decimal, `-` when there is none.
fn fraction(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |f| format!("{:.1}%", 100.0 * f))
}

/// The page.
pub(crate) fn render_html(data: &ReportData) -> String {
    let mut out = String::new();
    let title = format!(
        "ocapi report: {} ({} to {}, the last day excluded)",
        data.connector, data.from, data.to
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n\
         <p class=\"meta\">Event times from <time data-figure=\"window/from\">{}</time> to \
         <time data-figure=\"window/to\">{}</time> (UTC, <code>--to</code> exclusive). Made {}. Figures as \
         <code>ocapi reconcile --json</code> and <code>ocapi runs --json</code> give them.</p>\n",
        esc(&title),
        esc(&title),
        data.from,
        data.to,
        esc(&data.generated_at)
    );
    totals(&mut out, &data.by_day.total);
    days(&mut out, &data.by_day);
    stores(&mut out, &data.by_store);
    coverage(&mut out, &data.runs);
    lag(&mut out, &data.runs);
    money::values(&mut out, &data.values, &data.value_totals);
    reasons(&mut out, &data.by_day.total);
    if let Some(section) = &data.meta {
        meta::render(&mut out, section);
    }
    out.push_str("</body></html>\n");
    out
}

/// Inline styles.
const STYLE: &str =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;\
max-width:1000px;color:#222;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;\
border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0;font-size:.85em}\
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}td:first-child,\
th:first-child{text-align:left}.meta{color:#666}.legend span{display:inline-block;width:.8em;\
height:.8em;margin:0 .3em 0 1em}svg{display:block;margin:.5em 0;max-width:100%}\
svg text{font-size:11px;fill:#444}.kpi{display:flex;gap:1em;flex-wrap:wrap}.kpi div{border:1px \
solid #ddd;border-radius:4px;padding:.5em 1em}.kpi b{display:block;font-size:1.4em}";

/// The window's totals.
fn totals(out: &mut String, total: &Line) {
    out.push_str("<h2>Totals</h2><div class=\"kpi\">");
    for (label, key, value) in [
        ("source orders", "source_orders", total.source_orders),
        ("sent", "sent", total.sent),
        ("invalid", "invalid", total.invalid),
        ("returns", "returns", total.returns),
        ("rejected", "rejected", total.rejected),
        ("held", "held", total.held),
        ("anonymous (walk-in)", "anonymous", total.anonymous),
        ("never seen", "never_seen", total.never_seen),
    ] {
        let _ = write!(
            out,
            "<div>{label}<b data-figure=\"total/{key}\">{value}</b></div>"
        );
    }
    let _ = writeln!(
        out,
        "<div>share sent<b data-figure=\"total/share_sent\">{}%</b></div></div>",
        percent(total.sent as f64, total.source_orders as f64)
    );
}

/// A legend line.
fn legend(out: &mut String, entries: &[(&str, &str)]) {
    out.push_str("<p class=\"legend\">");
    for (colour, label) in entries {
        let _ = write!(
            out,
            "<span style=\"background:{colour}\"></span>{}",
            esc(label)
        );
    }
    out.push_str("</p>\n");
}

/// Reads one figure of a line.
type Figure = fn(&Line) -> u64;

/// Per day: grouped bars of source orders, sent, invalid and rejected, then the table.
fn days(out: &mut String, report: &reconcile::Report) {
    out.push_str("<h2>Per day: source orders, sent, invalid, rejected</h2>\n");
    let series: [(&str, &str, Figure); 4] = [
        ("source orders", SOURCE, |l| l.source_orders),
        ("sent", SENT, |l| l.sent),
        ("invalid", INVALID, |l| l.invalid),
        ("rejected", REJECTED, |l| l.rejected),
    ];
    legend(
        out,
        &series.iter().map(|(l, c, _)| (*c, *l)).collect::<Vec<_>>(),
    );
    let lines = &report.lines;
    let max = lines
        .iter()
        .flat_map(|l| series.iter().map(move |(_, _, f)| f(l)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (left, top, height) = (40.0, 10.0, 200.0);
    let group_width = 36.0_f64.max(600.0 / lines.len().max(1) as f64).min(80.0);
    let bar = (group_width - 6.0) / 4.0;
    let width = left + group_width * lines.len() as f64 + 10.0;
    let _ = write!(
        out,
        "<svg role=\"img\" aria-label=\"orders per day\" width=\"{width:.0}\" height=\"{:.0}\" \
         viewBox=\"0 0 {width:.0} {:.0}\">",
        height + 50.0,
        height + 50.0
    );
    let max = axis(out, left, top, height, width, max, Unit::Count);
    let label_every = (lines.len() / 12).max(1);
    for (i, line) in lines.iter().enumerate() {
        let x0 = left + group_width * i as f64 + 3.0;
        for (j, (label, colour, value)) in series.iter().enumerate() {
            let v = value(line) as f64;
            let h = height * v / max;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{colour}\">\
                 <title>{} {label}: {v}</title></rect>",
                x0 + bar * j as f64,
                top + height - h,
                esc(&line.group)
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                out,
                "<text x=\"{x0:.1}\" y=\"{:.1}\">{}</text>",
                top + height + 15.0,
                esc(line.group.get(5..).unwrap_or(&line.group))
            );
        }
    }
    out.push_str(
        "</svg>\n<table><tr><th>day</th><th>source orders</th><th>sent</th>\
                  <th>invalid</th><th>returns</th><th>rejected</th><th>held</th>\
                  <th>anonymous</th><th>never seen</th><th>loyalty</th><th>upload</th></tr>",
    );
    for line in lines.iter().chain([&report.total]) {
        let g = &line.group;
        let _ = write!(
            out,
            "<tr><td>{}</td>{}{}{}{}{}{}{}{}{}{}</tr>",
            esc(g),
            cell(&format!("day/{g}/source_orders"), line.source_orders),
            cell(&format!("day/{g}/sent"), line.sent),
            cell(&format!("day/{g}/invalid"), line.invalid),
            cell(&format!("day/{g}/returns"), line.returns),
            cell(&format!("day/{g}/rejected"), line.rejected),
            cell(&format!("day/{g}/held"), line.held),
            cell(&format!("day/{g}/anonymous"), line.anonymous),
            cell(&format!("day/{g}/never_seen"), line.never_seen),
            cell(
                &format!("day/{g}/loyalty_fraction"),
                fraction(line.loyalty_fraction)
            ),
            cell(
                &format!("day/{g}/transaction_upload_fraction"),
                fraction(line.transaction_upload_fraction)
            ),
        );
    }
    out.push_str("</table>\n");
}

/// A round step of about `raw` for ticks in `unit`: 1, 2, 2.5 or 5 times a power of ten (2.5
/// only where it stays whole for counts), or a round span of time for seconds.
fn nice_step(raw: f64, unit: Unit) -> f64 {
    let raw = raw.max(f64::MIN_POSITIVE);
    if let Unit::Seconds = unit {
        const SPANS: [f64; 20] = [
            1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1_800.0, 3_600.0,
            7_200.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 432_000.0,
        ];
        if let Some(span) = SPANS.into_iter().find(|span| *span >= raw) {
            return span;
        }
        return 864_000.0 * (raw / 864_000.0).ceil();
    }
    let magnitude = 10_f64.powf(raw.log10().floor());
    let whole = matches!(unit, Unit::Count);
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .filter(|m| !(whole && *m == 2.5 && magnitude < 10.0))
        .map(|m| m * magnitude)
        .find(|step| *step >= raw && (!whole || *step >= 1.0))
        .unwrap_or(10.0 * magnitude)
        .max(if whole { 1.0 } else { 0.0 })
}

/// A y axis from 0 with grid lines at round values, up to `max` or just above: returns the top
/// value, which the chart then scales to.
fn axis(
    out: &mut String,
    left: f64,
    top: f64,
    height: f64,
    width: f64,
    max: f64,
    unit: Unit,
) -> f64 {
    let step = nice_step(max / 4.0, unit);
    let ticks = (max / step - 1e-9).ceil().max(1.0) as u32;
    let max = step * f64::from(ticks);
    for k in 0..=ticks {
        let v = step * f64::from(k);
        let y = top + height - height * v / max;
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{width:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 4.0,
            y + 4.0,
            unit.show(v)
        );
    }
    max
}

/// How a chart's values read.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// A count.
    Count,
    /// A percentage.
    Percent,
    /// Seconds, shown in the shortest fitting unit.
    Seconds,
}

impl Unit {
    /// A value with its unit.
    fn show(self, v: f64) -> String {
        match self {
            Self::Count => trim(v),
            Self::Percent => format!("{}%", trim(v)),
            Self::Seconds => runs::short(v),
        }
    }
}

/// A number without needless decimals.
fn trim(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Per store: a horizontal bar of the share sent, then the table.
fn stores(out: &mut String, report: &reconcile::Report) {
    out.push_str("<h2>Per store: share of source orders sent</h2>\n");
    let (label_width, bar_width, row) = (140.0, 520.0, 20.0);
    let height = row * report.lines.len() as f64 + 10.0;
    let _ = write!(
        out,
        "<svg role=\"img\" aria-label=\"share sent per store\" width=\"{:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {:.0} {height:.0}\">",
        label_width + bar_width + 80.0,
        label_width + bar_width + 80.0
    );
    for (i, line) in report.lines.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let share = if line.source_orders == 0 {
            0.0
        } else {
            line.sent as f64 / line.source_orders as f64
        };
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{}</text>\
             <rect x=\"{label_width}\" y=\"{y:.1}\" width=\"{bar_width}\" height=\"{:.1}\" fill=\"#eee\"/>\
             <rect x=\"{label_width}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{SENT}\">\
             <title>{}: {}% sent</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}%</text>",
            y + 13.0,
            esc(&line.group),
            row - 4.0,
            bar_width * share.min(1.0),
            row - 4.0,
            esc(&line.group),
            percent(line.sent as f64, line.source_orders as f64),
            label_width + bar_width + 6.0,
            y + 13.0,
            percent(line.sent as f64, line.source_orders as f64)
        );
    }
    out.push_str(
        "</svg>\n<table><tr><th>store</th><th>source orders</th><th>sent</th>\
                  <th>share sent (%)</th></tr>",
    );
    for line in &report.lines {
        let g = &line.group;
        let _ = write!(
            out,
            "<tr><td>{}</td>{}{}{}</tr>",
            esc(g),
            cell(&format!("store/{g}/source_orders"), line.source_orders),
            cell(&format!("store/{g}/sent"), line.sent),
            cell(
                &format!("store/{g}/share_sent"),
                percent(line.sent as f64, line.source_orders as f64)
            ),
        );
    }
    out.push_str("</table>\n");
}

/// The top reasons of a kind, most frequent first (ties by name).
pub fn top(reasons: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut list: Vec<(&str, u64)> = reasons.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    list.truncate(TOP_REASONS);
    list
}

/// The top invalid and rejected reasons with their counts, as bars.
fn reasons(out: &mut String, total: &Line) {
    for (kind, colour, map) in [
        ("invalid", INVALID, &total.invalid_reasons),
        ("rejected", REJECTED, &total.rejected_reasons),
    ] {
        let _ = writeln!(out, "<h2>Top {kind} reasons</h2>");
        let list = top(map);
        if list.is_empty() {
            let _ = writeln!(out, "<p>No {kind} orders in the window.</p>");
            continue;
        }
        let max = list.first().map_or(1, |(_, n)| *n).max(1) as f64;
        out.push_str("<table>");
        for (reason, n) in list {
            let _ = write!(
                out,
                "<tr><td>{}</td>{}<td><svg width=\"300\" height=\"12\" viewBox=\"0 0 300 12\">\
                 <rect width=\"{:.1}\" height=\"12\" fill=\"{colour}\"/></svg></td></tr>",
                esc(reason),
                cell(&format!("{kind}_reason/{reason}"), n),
                300.0 * n as f64 / max
            );
        }
        out.push_str("</table>\n");
    }
}

/// `ocapi report --html FILE`: writes the report for the event days `[--from, --to)`.
pub(crate) async fn command(config: &Config, args: &ReportArgs) -> Result<ExitStatus, Error> {
    let (from, to) = crate::commands::day_window(args.from, args.to)?;
    let html = render_html(&gather(config, from, to).await?);
    std::fs::write(&args.html, html).map_err(|source| Error::Write {
        path: args.html.clone(),
        source,
    })?;
    eprintln!("wrote {}", args.html.display());
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_reasons_are_ranked() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut reasons = BTreeMap::new();
        reasons.insert("b".to_owned(), 2);
        reasons.insert("a".to_owned(), 2);
        reasons.insert("c".to_owned(), 5);
        assert_eq!(top(&reasons), vec![("c", 5), ("a", 2), ("b", 2)]);
        assert_eq!(percent(1.0, 3.0), "33.3");
        assert_eq!(percent(1.0, 0.0), "-");
    }

    #[test]
    fn axis_steps_are_round_numbers_or_round_spans_of_time() {
        assert_eq!(nice_step(13.0 / 4.0, Unit::Count), 5.0);
        assert_eq!(nice_step(25.0, Unit::Percent), 25.0);
        assert_eq!(nice_step(0.3, Unit::Count), 1.0);
        assert_eq!(nice_step(1_000.0, Unit::Seconds), 1_800.0);
        assert_eq!(nice_step(1_307_720.0 / 4.0, Unit::Seconds), 432_000.0);
        let mut out = String::new();
        assert_eq!(
            axis(&mut out, 0.0, 0.0, 100.0, 100.0, 13.0, Unit::Count),
            15.0
        );
        assert!(out.contains(">10<") && !out.contains(">3.3<"), "{out}");
    }
}
