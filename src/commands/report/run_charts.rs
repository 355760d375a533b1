//! The report's charts over runs: match-key coverage and upload lag, one line per series with
//! a point per run, each figure also in a table cell tagged `data-figure`. With fewer than
//! [`MIN_CHART_RUNS`] runs a chart would be a dot or two: the table stands alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{axis, cell, esc, legend, percent, Unit, PALETTE};
use crate::commands::runs::RunRecord;
use crate::config::CustomerField;

/// Runs from which a chart over runs is drawn.
pub(super) const MIN_CHART_RUNS: usize = 3;

/// A match key as people know it: the `[mapping]` key (`email`, `phone`, `date_of_birth`),
/// not Meta's code (`em`, `ph`, `db`).
pub(super) fn key_name(code: &str) -> &str {
    CustomerField::from_key(code).map_or(code, |field| field.mapping_key())
}
/// A line chart over runs: one polyline per series, values per run (None = gap).
fn run_chart(
    out: &mut String,
    label: &str,
    runs: &[RunRecord],
    series: &[(String, Vec<Option<f64>>)],
    max: f64,
    unit: Unit,
) {
    let (left, top, height) = (50.0, 10.0, 180.0);
    let step = (640.0 / runs.len().max(2) as f64).clamp(8.0, 60.0);
    let width = left + step * runs.len().saturating_sub(1) as f64 + 20.0;
    let entries: Vec<(&str, &str)> = series
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (PALETTE[i % PALETTE.len()], name.as_str()))
        .collect();
    legend(out, &entries);
    let _ = write!(
        out,
        "<svg role=\"img\" aria-label=\"{}\" width=\"{width:.0}\" height=\"{:.0}\" \
         viewBox=\"0 0 {width:.0} {:.0}\">",
        esc(label),
        height + 40.0,
        height + 40.0
    );
    let max = axis(out, left, top, height, width, max, unit);
    let x = |i: usize| left + step * i as f64;
    let y = |v: f64| top + height - height * (v / max).min(1.0);
    for (n, (name, values)) in series.iter().enumerate() {
        let colour = PALETTE[n % PALETTE.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\">\
                     <title>run {} {}: {}</title></circle>",
                    x(i),
                    y(*v),
                    runs[i].run_id,
                    esc(name),
                    unit.show(*v)
                );
            }
        }
    }
    let label_every = (runs.len() / 12).max(1);
    for (i, run) in runs.iter().enumerate().step_by(label_every) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(i),
            top + height + 15.0,
            run.run_id
        );
    }
    out.push_str("</svg>\n");
}

/// Match-key coverage per run: the share of a run's sent events carrying each key.
pub(super) fn coverage(out: &mut String, runs: &[RunRecord]) {
    out.push_str("<h2>Match-key coverage per run (% of sent events)</h2>\n");
    let runs: Vec<RunRecord> = runs.iter().filter(|r| r.sent > 0).cloned().collect();
    if runs.is_empty() {
        out.push_str("<p>No run in the window sent anything.</p>\n");
        return;
    }
    let mut keys: BTreeMap<&str, ()> = BTreeMap::new();
    for run in &runs {
        for key in run.match_keys.keys() {
            keys.insert(key, ());
        }
    }
    let share = |run: &RunRecord, key: &str| {
        run.match_keys
            .get(key)
            .map(|n| 100.0 * *n as f64 / run.sent as f64)
    };
    let series: Vec<(String, Vec<Option<f64>>)> = keys
        .keys()
        .map(|key| {
            (
                key_name(key).to_owned(),
                runs.iter().map(|r| share(r, key).or(Some(0.0))).collect(),
            )
        })
        .collect();
    if runs.len() >= MIN_CHART_RUNS {
        run_chart(
            out,
            "match-key coverage per run",
            &runs,
            &series,
            100.0,
            Unit::Percent,
        );
    }
    out.push_str("<table><tr><th>run</th><th>sent</th>");
    for key in keys.keys() {
        let _ = write!(out, "<th>{}</th>", esc(key_name(key)));
    }
    out.push_str("</tr>");
    for run in &runs {
        let id = run.run_id;
        let _ = write!(
            out,
            "<tr><td>{id}</td>{}",
            cell(&format!("run/{id}/sent"), run.sent)
        );
        for key in keys.keys() {
            let n = run.match_keys.get(*key).copied().unwrap_or(0);
            out.push_str(&cell(
                &format!("run/{id}/coverage/{key}"),
                percent(n as f64, run.sent as f64),
            ));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

/// Upload lag per run: median and 95th percentile, in seconds.
pub(super) fn lag(out: &mut String, runs: &[RunRecord]) {
    out.push_str("<h2>Upload lag per run (from the sale to the destination's acceptance)</h2>\n");
    let runs: Vec<RunRecord> = runs
        .iter()
        .filter(|r| r.upload_lag_median_seconds.is_some())
        .cloned()
        .collect();
    if runs.is_empty() {
        out.push_str("<p>No run in the window recorded an upload lag.</p>\n");
        return;
    }
    let max = runs
        .iter()
        .filter_map(|r| r.upload_lag_p95_seconds)
        .fold(1.0_f64, f64::max);
    let series = vec![
        (
            "median".to_owned(),
            runs.iter().map(|r| r.upload_lag_median_seconds).collect(),
        ),
        (
            "p95".to_owned(),
            runs.iter().map(|r| r.upload_lag_p95_seconds).collect(),
        ),
    ];
    if runs.len() >= MIN_CHART_RUNS {
        run_chart(
            out,
            "upload lag per run",
            &runs,
            &series,
            max,
            Unit::Seconds,
        );
    }
    out.push_str("<table><tr><th>run</th><th>median</th><th>p95</th><th>max</th></tr>");
    for run in &runs {
        let id = run.run_id;
        // As every text for people gives durations (`runs --json` keeps the seconds).
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), crate::human::duration);
        let _ = write!(
            out,
            "<tr><td>{id}</td>{}{}{}</tr>",
            cell(
                &format!("run/{id}/lag_median"),
                show(run.upload_lag_median_seconds)
            ),
            cell(
                &format!("run/{id}/lag_p95"),
                show(run.upload_lag_p95_seconds)
            ),
            cell(
                &format!("run/{id}/lag_max"),
                show(run.upload_lag_max_seconds)
            ),
        );
    }
    out.push_str("</table>\n");
}
