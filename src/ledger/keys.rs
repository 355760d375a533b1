//! Ledger keys that follow the id column's type (`key_rules`, sql/0013_key_rules.sql): a
//! connector's keys written under an earlier rule (the id's text, trimmed: `1001.0` for a
//! numeric id) are converted to the rule its source column now asks for (`1001`), once.

use tokio_postgres::Client;

use crate::db::DbError;
use crate::source::IdKind;

use super::Ledger;

/// How many merged keys a conversion names (the rest are counted).
const NAMED: usize = 5;

/// What a conversion of a connector's ledger keys did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyConversion {
    /// The rule the connector's keys follow now ([`IdKind::rule`]).
    pub rule: &'static str,
    /// The rule recorded before, when there was one (`None`: keys written by a version before
    /// sql/0013, or a new connector).
    pub before: Option<String>,
    /// Nothing was done: the keys followed the rule already.
    pub already: bool,
    /// Ledger rows whose key was rewritten.
    pub converted: u64,
    /// Ledger rows removed because another row holds the same order now (two ids that were two
    /// orders to an earlier version and are one now): `(old key, key)`, the first few.
    pub merged: Vec<(String, String)>,
    /// How many rows were merged in all.
    pub merged_total: u64,
}

impl KeyConversion {
    /// One line for `migrate`'s output and the run's log (order ids are no customer data).
    pub fn summary(&self) -> String {
        if self.already {
            return format!("ledger keys follow the {} rule", self.rule);
        }
        let mut line = format!(
            "ledger keys converted to the {} rule: {} rewritten",
            self.rule, self.converted
        );
        if self.merged_total > 0 {
            let named: Vec<String> = self
                .merged
                .iter()
                .map(|(old, key)| format!("{old:?} into {key:?}"))
                .collect();
            let more = self.merged_total.saturating_sub(self.merged.len() as u64);
            line.push_str(&format!(
                ", {} merged into the row of the same order ({}{}): each had its own \
                 ledger row, and was sent as its own event if sent",
                self.merged_total,
                named.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        line
    }
}

impl Ledger {
    /// Converts this connector's ledger keys to `kind`'s rule, once (recorded in
    /// `key_rules`), in one transaction. Two rows that become one key (`1001` and `1001.0`,
    /// both recorded by an earlier version) are merged: the row kept is the one whose order was
    /// sent (then held, rejected, invalid); among equals the one that holds the key already,
    /// then the most recently updated. The caller
    /// holds the connector's run lock, so no run writes meanwhile.
    ///
    /// # Errors
    /// [`DbError`] when a statement fails; nothing is changed then.
    pub async fn convert_keys(
        &self,
        client: &mut Client,
        kind: IdKind,
    ) -> Result<KeyConversion, DbError> {
        let rules = &self.key_rules;
        let context = "cannot convert the ledger's order keys";
        // Nearly always done already: read without a lock (a role that may only read the
        // ledger, or a run of a connector converted before, writes nothing).
        let recorded: Option<String> = client
            .query_opt(
                &format!("select rule from {rules} where connector = $1"),
                &[&self.connector],
            )
            .await
            .map_err(DbError::query(context))?
            .map(|row| row.get(0));
        if recorded.as_deref() == Some(kind.rule()) {
            return Ok(KeyConversion {
                rule: kind.rule(),
                before: recorded,
                already: true,
                ..KeyConversion::default()
            });
        }
        let tx = client
            .transaction()
            .await
            .map_err(DbError::query(context))?;
        let before: Option<String> = tx
            .query_opt(
                &format!("select rule from {rules} where connector = $1 for update"),
                &[&self.connector],
            )
            .await
            .map_err(DbError::query(context))?
            .map(|row| row.get(0));
        let mut done = KeyConversion {
            rule: kind.rule(),
            before: before.clone(),
            already: before.as_deref() == Some(kind.rule()),
            ..KeyConversion::default()
        };
        if done.already {
            return Ok(done);
        }
        // Keys of the text rule are the text an earlier version wrote: nothing to rewrite.
        if kind.rule() != IdKind::Text.rule() {
            let key = kind.key_of_trimmed("(l.order_id collate \"default\")");
            let ledger = &self.ledger;
            // Every row of a key that changes, with the row that holds that key already (any
            // connector's: keys are one per dataset), ranked; all but the first go.
            let merge = format!(
                "with c as (
                     select l.dataset_id, l.event_name, l.order_id, {key} as key
                     from {ledger} as l where l.connector = $1 and l.order_id <> {key}
                 ), g as (
                     select l.dataset_id, l.event_name, l.order_id, c.key, l.status, l.updated_at
                     from c join {ledger} as l on l.dataset_id = c.dataset_id
                          and l.event_name = c.event_name and l.order_id = c.order_id
                     union
                     select l.dataset_id, l.event_name, l.order_id, l.order_id, l.status,
                            l.updated_at
                     from (select distinct dataset_id, event_name, key from c) as k
                     join {ledger} as l on l.dataset_id = k.dataset_id
                          and l.event_name = k.event_name and l.order_id = k.key
                 ), r as (
                     select g.*, row_number() over (
                         partition by g.dataset_id, g.event_name, g.key
                         order by case g.status when 'sent' then 0 when 'held' then 1
                                                when 'rejected' then 2 else 3 end,
                                  g.order_id = g.key desc, g.updated_at desc, g.order_id)
                         as rank
                     from g
                 )
                 delete from {ledger} as l using r
                 where r.rank > 1 and l.dataset_id = r.dataset_id
                   and l.event_name = r.event_name and l.order_id = r.order_id
                 returning l.order_id::text, r.key"
            );
            let merged = tx
                .query(&merge, &[&self.connector])
                .await
                .map_err(DbError::query(context))?;
            done.merged_total = merged.len() as u64;
            done.merged = merged
                .iter()
                .take(NAMED)
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            done.converted = tx
                .execute(
                    &format!(
                        "update {ledger} as l set order_id = {key}
                         where l.connector = $1 and l.order_id <> {key}"
                    ),
                    &[&self.connector],
                )
                .await
                .map_err(DbError::query(context))?;
        }
        let converted = i64::try_from(done.converted).unwrap_or(i64::MAX);
        let merged = i64::try_from(done.merged_total).unwrap_or(i64::MAX);
        tx.execute(
            &format!(
                "insert into {rules} (connector, rule, converted, merged) values ($1, $2, $3, $4)
                 on conflict (connector) do update
                   set rule = excluded.rule, converted_at = now(),
                       converted = {rules}.converted + excluded.converted,
                       merged = {rules}.merged + excluded.merged"
            ),
            &[&self.connector, &kind.rule(), &converted, &merged],
        )
        .await
        .map_err(DbError::query(context))?;
        tx.commit().await.map_err(DbError::query(context))?;
        Ok(done)
    }
}
