//! The report's money: per currency and UTC day, the value of the source's orders against the
//! value sent, as `reconcile --json --by day` gives them (one line per day and currency;
//! values in different currencies are never added).

use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::{cell, esc, legend, percent, SENT, SOURCE};
use crate::commands::reconcile::Line;

/// Width of the widest bar, in pixels.
const BAR: f64 = 260.0;

/// A value as the report shows it: two decimals.
fn money(value: Decimal) -> String {
    value.round_dp(2).to_string()
}

/// Sent value against source value, per currency and day (`lines`: `reconcile --by day`'s,
/// unmerged), then the window's totals per currency (`totals`).
pub(super) fn values(out: &mut String, lines: &[Line], totals: &[Line]) {
    out.push_str("<h2>Value: sent against source, per currency and day</h2>\n");
    let priced: Vec<&Line> = lines.iter().filter(|l| l.currency.is_some()).collect();
    if priced.is_empty() {
        out.push_str("<p>No order with a currency in the window.</p>\n");
        return;
    }
    legend(out, &[(SOURCE, "source value"), (SENT, "sent value")]);
    out.push_str(
        "<table><tr><th>day</th><th>currency</th><th>source value</th><th>sent value</th>\
         <th>share sent (%)</th><th></th></tr>",
    );
    for (per_day, list) in [(true, priced), (false, totals.iter().collect())] {
        for line in list {
            let currency = line.currency.as_deref().unwrap_or("-");
            // Bars compare within one currency: a day's scale is its currency's largest day.
            let top = if per_day {
                lines
                    .iter()
                    .filter(|l| l.currency.as_deref() == Some(currency))
                    .map(|l| l.source_value.max(l.sent_value))
                    .max()
                    .unwrap_or(Decimal::ONE)
            } else {
                line.source_value.max(line.sent_value)
            }
            .max(Decimal::ONE);
            let width = |v: Decimal| {
                let share = (v / top).to_string().parse::<f64>().unwrap_or(0.0);
                BAR * share.clamp(0.0, 1.0)
            };
            let g = &line.group;
            let key = format!("value/{g}/{currency}");
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td>{}{}{}<td><svg width=\"{BAR:.0}\" height=\"14\" \
                 viewBox=\"0 0 {BAR:.0} 14\"><rect width=\"{:.1}\" height=\"6\" fill=\"{SOURCE}\"/>\
                 <rect y=\"7\" width=\"{:.1}\" height=\"6\" fill=\"{SENT}\"/></svg></td></tr>",
                esc(g),
                esc(currency),
                cell(&format!("{key}/source_value"), money(line.source_value)),
                cell(&format!("{key}/sent_value"), money(line.sent_value)),
                cell(
                    &format!("{key}/share_sent"),
                    percent(
                        line.sent_value.to_string().parse().unwrap_or(0.0),
                        line.source_value.to_string().parse().unwrap_or(0.0)
                    )
                ),
                width(line.source_value),
                width(line.sent_value),
            );
        }
    }
    out.push_str("</table>\n");
}
