//! What `ocapi init` proposes from a table's columns: each `[mapping]` key from the column's
//! name and type (a type `ocapi check` would refuse for the key is never proposed), the
//! watermark, and for a view over several tables one `[[source.changes]]` entry per base table
//! (its own `updated_at`-like column and the column that ties its rows to the view's).

use super::names::{CUSTOMER_KEYS, CUSTOMER_PREFIXES, NAMES, WATERMARK_NAMES};
use crate::source::catalog::{CatalogColumn, Relation};
use crate::source::{check_role, Column, WatermarkKind};

/// One `[mapping]` key placed on a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The key (`email`).
    pub key: &'static str,
    /// The column.
    pub column: String,
    /// Its declared type, for the file's comment.
    pub declared: String,
}

/// A `[[source.changes]]` entry for one base table of a view, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An entry: the table, its watermark column, its key column and the view's column the
    /// key equals (`None`: `mapping.order_id`, the default).
    Entry {
        /// `schema.table`.
        table: String,
        /// The table's own watermark column.
        watermark_column: String,
        /// The table's column that ties a row to the view's rows.
        key: String,
        /// The view's column equal to `key`, unless it is `mapping.order_id`.
        matches: Option<String>,
    },
    /// No entry, and why (said in the file, as a comment).
    Skipped {
        /// `schema.table`.
        table: String,
        /// Why, for a person.
        why: String,
    },
}

/// Everything proposed for one table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The keys placed, in [`NAMES`] order.
    pub placed: Vec<Placed>,
    /// The relation's watermark column, if one was found (with its declared type).
    pub watermark: Option<(String, String, WatermarkKind)>,
    /// For a view: one per base table.
    pub changes: Vec<Change>,
    /// Columns no key took, with their declared types.
    pub unplaced: Vec<(String, String)>,
}

impl Proposal {
    /// The column placed on `key`, if any.
    pub fn column(&self, key: &str) -> Option<&str> {
        self.placed
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.column.as_str())
    }
}

/// Whether `column` is called like one of `names` (for a customer key, also after a prefix).
fn called(column: &str, names: &[&str], customer: bool) -> Option<usize> {
    let lower = column.to_lowercase();
    if let Some(rank) = names.iter().position(|n| *n == lower) {
        return Some(rank);
    }
    if customer {
        for prefix in CUSTOMER_PREFIXES {
            if let Some(rest) = lower.strip_prefix(prefix) {
                if let Some(rank) = names.iter().position(|n| *n == rest) {
                    return Some(rank);
                }
            }
        }
    }
    None
}

/// Whether `ocapi check` accepts `column` for `key`.
fn fits(key: &str, column: &CatalogColumn) -> bool {
    let as_source = Column {
        declared: column.declared.clone(),
        base: column.base.clone(),
    };
    let time_like = matches!(
        column.base.as_str(),
        "timestamptz" | "timestamp" | "date" | "int2" | "int4" | "int8" | "numeric"
    );
    match key {
        // check_role takes any type for the event time; describe wants a time or epoch number.
        "event_time" => time_like,
        _ => check_role(key, &column.name, &as_source).is_ok(),
    }
}

/// The column of `columns` best called a watermark, with a type a watermark can have.
fn watermark_of(columns: &[CatalogColumn]) -> Option<(String, String, WatermarkKind)> {
    columns
        .iter()
        .filter_map(|c| {
            let rank = called(&c.name, WATERMARK_NAMES, false)?;
            let kind = WatermarkKind::from_typname(&c.base)?;
            Some((rank, (c.name.clone(), c.declared.clone(), kind)))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, found)| found)
}

/// Places the `[mapping]` keys on `relation`'s columns, `overrides` (`key`, column) first,
/// finds its watermark and, for a view, one [`Change`] per table of `base_tables`.
pub fn propose(
    relation: &Relation,
    base_tables: &[Relation],
    overrides: &[(String, String)],
) -> Proposal {
    let mut taken: Vec<&str> = Vec::new();
    let mut placed = Vec::new();
    let watermark = watermark_of(&relation.columns);
    if let Some((name, _, _)) = &watermark {
        taken.push(name);
    }
    for (key, names) in NAMES {
        let customer = CUSTOMER_KEYS.contains(key);
        let overridden = overrides.iter().find(|(k, _)| k == key).map(|(_, c)| c);
        let best = match overridden {
            Some(column) => relation.columns.iter().find(|c| &c.name == column),
            None => relation
                .columns
                .iter()
                .filter(|c| !taken.contains(&c.name.as_str()) && fits(key, c))
                .filter_map(|c| called(&c.name, names, customer).map(|rank| (rank, c)))
                .min_by_key(|(rank, _)| *rank)
                .map(|(_, c)| c),
        };
        if let Some(column) = best {
            taken.push(&column.name);
            placed.push(Placed {
                key,
                column: column.name.clone(),
                declared: column.declared.clone(),
            });
        }
    }
    // A view's watermark may be a key's column too (a view exposing only `sold_at`): no.
    let unplaced = relation
        .columns
        .iter()
        .filter(|c| !taken.contains(&c.name.as_str()))
        .map(|c| (c.name.clone(), c.declared.clone()))
        .collect();
    let mut proposal = Proposal {
        placed,
        watermark,
        changes: Vec::new(),
        unplaced,
    };
    if base_tables.len() > 1 {
        proposal.changes = base_tables
            .iter()
            .map(|table| change_for(table, relation, &proposal))
            .collect();
    }
    proposal
}

/// The `[[source.changes]]` entry for one base `table` of `view`, or why there is none.
fn change_for(table: &Relation, view: &Relation, proposal: &Proposal) -> Change {
    let name = table.qualified();
    let Some((watermark_column, _, _)) = watermark_of(&table.columns) else {
        return Change::Skipped {
            table: name,
            why: "no column that moves when a row is written (updated_at or the like): its \
                  changes cannot be found, so they do not move an order"
                .to_owned(),
        };
    };
    let in_view = |column: &str| view.columns.iter().any(|c| c.name == column);
    let used = |column: &str| table.used_by_view.iter().any(|c| c == column);
    let order_id = proposal.column("order_id").unwrap_or("order_id");
    // The order id itself, when the table has it and the view reads it.
    if table.columns.iter().any(|c| c.name == order_id) && used(order_id) {
        return Change::Entry {
            table: name,
            watermark_column,
            key: order_id.to_owned(),
            matches: None,
        };
    }
    // Else a single-column primary key (or an `_id` column) the view also exposes by name.
    let candidates = table
        .primary_key
        .iter()
        .filter(|_| table.primary_key.len() == 1)
        .chain(
            table
                .columns
                .iter()
                .map(|c| &c.name)
                .filter(|c| c.ends_with("_id")),
        );
    for key in candidates {
        if used(key) && in_view(key) {
            return Change::Entry {
                table: name,
                watermark_column,
                key: key.clone(),
                matches: Some(key.clone()),
            };
        }
    }
    Change::Skipped {
        table: name,
        why: format!(
            "the view exposes none of its key columns ({}), so a changed row cannot be tied to \
             an order: add its key to the view's select list",
            if table.primary_key.is_empty() {
                "it has no primary key".to_owned()
            } else {
                table.primary_key.join(", ")
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::catalog::RelationKind;

    fn col(name: &str, base: &str) -> CatalogColumn {
        CatalogColumn {
            name: name.to_owned(),
            declared: base.to_owned(),
            base: base.to_owned(),
        }
    }

    fn rel(name: &str, kind: RelationKind, columns: Vec<CatalogColumn>) -> Relation {
        let (schema, name) = name.split_once('.').unwrap();
        Relation {
            schema: schema.to_owned(),
            name: name.to_owned(),
            kind,
            columns,
            primary_key: Vec::new(),
            used_by_view: Vec::new(),
        }
    }

    #[test]
    fn names_and_types_place_the_keys_and_the_rest_is_said() {
        let table = rel(
            "shop.sales",
            RelationKind::Table,
            vec![
                col("receipt_no", "text"),
                col("created_at", "timestamptz"),
                col("updated_at", "timestamptz"),
                col("total", "numeric"),
                col("currency", "bpchar"),
                col("customer_email", "varchar"),
                col("Phone", "text"),
                col("price", "text"),
                col("cashier", "text"),
                // A `total` that is a timestamp cannot be the value; an email that is an int no.
                col("email", "int4"),
            ],
        );
        let proposal = propose(&table, &[], &[]);
        assert_eq!(proposal.column("order_id"), Some("receipt_no"));
        assert_eq!(proposal.column("event_time"), Some("created_at"));
        assert_eq!(proposal.column("value"), Some("total"));
        assert_eq!(proposal.column("email"), Some("customer_email"));
        assert_eq!(proposal.column("phone"), Some("Phone"));
        assert_eq!(proposal.column("item_price"), Some("price"));
        assert_eq!(
            proposal.watermark.as_ref().map(|w| w.0.as_str()),
            Some("updated_at")
        );
        let unplaced: Vec<_> = proposal.unplaced.iter().map(|u| u.0.as_str()).collect();
        assert_eq!(unplaced, ["cashier", "email"]);
    }

    #[test]
    fn an_override_wins_and_its_column_is_not_placed_twice() {
        let table = rel(
            "shop.sales",
            RelationKind::Table,
            vec![
                col("id", "int8"),
                col("order_id", "text"),
                col("sold_at", "timestamp"),
            ],
        );
        let overrides = [("order_id".to_owned(), "id".to_owned())];
        let proposal = propose(&table, &[], &overrides);
        assert_eq!(proposal.column("order_id"), Some("id"));
        assert_eq!(
            proposal.unplaced,
            [("order_id".to_owned(), "text".to_owned())]
        );
    }

    #[test]
    fn a_view_over_headers_lines_customers_and_stores_gets_an_entry_per_changing_table() {
        let view = rel(
            "pos.v",
            RelationKind::View,
            vec![
                col("order_id", "text"),
                col("sold_at", "timestamp"),
                col("customer_id", "int8"),
                col("updated_at", "timestamptz"),
            ],
        );
        let mut headers = rel(
            "pos.order_headers",
            RelationKind::Table,
            vec![
                col("order_id", "text"),
                col("customer_id", "int8"),
                col("updated_at", "timestamptz"),
            ],
        );
        headers.used_by_view = vec!["order_id".into(), "customer_id".into()];
        let mut customers = rel(
            "crm.customers",
            RelationKind::Table,
            vec![
                col("customer_id", "int8"),
                col("modified_at", "timestamptz"),
            ],
        );
        customers.primary_key = vec!["customer_id".into()];
        customers.used_by_view = vec!["customer_id".into()];
        let mut stores = rel(
            "pos.stores",
            RelationKind::Table,
            vec![col("store_id", "text")],
        );
        stores.used_by_view = vec!["store_id".into()];
        let mut tills = rel(
            "pos.tills",
            RelationKind::Table,
            vec![col("till_id", "text"), col("updated_at", "timestamptz")],
        );
        tills.primary_key = vec!["till_id".into()];
        tills.used_by_view = vec!["till_id".into()];
        let proposal = propose(&view, &[customers, headers, stores, tills], &[]);
        assert_eq!(
            proposal.changes[0],
            Change::Entry {
                table: "crm.customers".into(),
                watermark_column: "modified_at".into(),
                key: "customer_id".into(),
                matches: Some("customer_id".into()),
            }
        );
        assert_eq!(
            proposal.changes[1],
            Change::Entry {
                table: "pos.order_headers".into(),
                watermark_column: "updated_at".into(),
                key: "order_id".into(),
                matches: None,
            }
        );
        assert!(
            matches!(&proposal.changes[2], Change::Skipped { why, .. } if why.contains("updated_at"))
        );
        assert!(
            matches!(&proposal.changes[3], Change::Skipped { why, .. } if why.contains("till_id"))
        );
    }
}
