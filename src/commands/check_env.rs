//! What `check` says about the source's surroundings, where a run would go wrong silently: the
//! host's clock against the database's, the server encoding and what ocapi does with it,
//! row-level security that hides rows from the sync role, and a materialized view's refreshes.

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::config::Config;
use crate::db::DbError;
use crate::error::Error;
use crate::source::{self, SourceTable};

/// One line of `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Finding {
    /// Fine, and worth saying.
    Pass(String),
    /// A run will not do what the user expects.
    Warn(String),
}

/// The findings about the clock, the encoding, row-level security and a materialized view.
///
/// # Errors
/// [`Error::Source`] or [`Error::Db`] when a catalog read fails.
pub(super) async fn findings(
    client: &Client,
    config: &Config,
    table: &SourceTable,
) -> Result<Vec<Finding>, Error> {
    let mut found = Vec::new();
    let clock = source::clock(client).await?;
    found.push(match clock.skew_warning() {
        Some(warning) => Finding::Warn(warning),
        None => Finding::Pass(
            "clock: event times are judged by the source database's clock (this host's is \
             within a minute of it)"
                .to_owned(),
        ),
    });
    found.push(encoding(config, table));
    found.extend(row_security(client, config).await?);
    if relkind(client, config).await? == "m" {
        found.push(Finding::Warn(format!(
            "{} is a materialized view: its rows change only when it is refreshed, keeping the \
             watermark values they had, which the last run may already have passed; set \
             `source.lookback` (now {}) to at least the refresh interval plus how long a \
             refresh takes",
            table.quoted_name, config.source.lookback
        )));
    }
    Ok(found)
}

/// The server encoding and what ocapi does with its text.
fn encoding(config: &Config, table: &SourceTable) -> Finding {
    let server = &table.server_encoding;
    match (table.sql_ascii(), &config.source.encoding) {
        (true, None) => Finding::Warn(format!(
            "source encoding {server}: PostgreSQL stores any bytes without checking them; \
             ocapi reads valid UTF-8 as such, and an order with a value in another encoding \
             (a Latin-1 `é`) is invalid, naming its column; if the tills write another \
             encoding, set `source.encoding` (for example \"LATIN1\")"
        )),
        (true, Some(fallback)) => Finding::Pass(format!(
            "source encoding {server}: values that are valid UTF-8 are read as such, others as \
             `source.encoding` ({})",
            fallback.name()
        )),
        (false, Some(_)) => Finding::Warn(format!(
            "source encoding {server}: PostgreSQL converts every value to UTF-8 itself, so \
             `source.encoding` is not used (only a SQL_ASCII database needs it)"
        )),
        (false, None) => Finding::Pass(format!(
            "source encoding {server}: PostgreSQL converts every value to UTF-8"
        )),
    }
}

/// The source's `pg_class.relkind` (`r`, `v`, `m`, `p`, `f`).
async fn relkind(client: &Client, config: &Config) -> Result<String, Error> {
    let rows = client
        .query_typed(
            "select c.relkind::text from pg_class c where c.oid = to_regclass($1::text)",
            &[(&config.source.table, Type::TEXT)],
        )
        .await
        .map_err(DbError::query("cannot look up the source's kind"))?;
    Ok(rows
        .first()
        .and_then(|row| row.try_get::<_, String>(0).ok())
        .unwrap_or_default())
}

/// A warning for each relation whose row-level security applies to the role that reads it:
/// the source itself (read as the connecting role) and, when the source is a view, each table
/// the view reads (through views of views), read as the view's owner, or as the role reading
/// the view when it is `security_invoker` (PostgreSQL's rule for views). Each names the
/// policies that let that role read rows, or says that none does (every run reads nothing).
async fn row_security(client: &Client, config: &Config) -> Result<Vec<Finding>, Error> {
    let rows = client
        .query_typed(
            "with recursive rels(oid, reader, via, depth) as (
                 select c.oid, current_user::name, null::text, 0
                 from pg_class c where c.oid = to_regclass($1::text)
               union
                 select d.refobjid,
                        case when exists (select from unnest(v.reloptions) o(opt)
                                          where opt ~* '^security_invoker=(true|on|yes|1|t|y)$')
                             then rels.reader else pg_get_userbyid(v.relowner) end,
                        coalesce(rels.via, v.oid::regclass::text), rels.depth + 1
                 from rels
                 join pg_class v on v.oid = rels.oid and v.relkind = 'v'
                 join pg_rewrite rw on rw.ev_class = v.oid
                 join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = rw.oid
                                 and d.refclassid = 'pg_class'::regclass
                                 and d.refobjid <> v.oid
                 where rels.depth < 8
             )
             select distinct c.oid::regclass::text, rels.via, r.rolname::text,
                    coalesce((select string_agg(p.polname::text, ', ' order by p.polname)
                              from pg_policy p
                              where p.polrelid = c.oid and p.polcmd in ('r', '*')
                                and p.polpermissive
                                and (0 = any(p.polroles) or exists (
                                    select from unnest(p.polroles) g(role)
                                    where pg_has_role(r.oid, g.role, 'USAGE')))), '')
             from rels
             join pg_class c on c.oid = rels.oid
             join pg_roles r on r.rolname = rels.reader
             where c.relrowsecurity and not r.rolsuper and not r.rolbypassrls
               and (c.relforcerowsecurity or not pg_has_role(r.oid, c.relowner, 'USAGE'))
             order by 1",
            &[(&config.source.table, Type::TEXT)],
        )
        .await
        .map_err(DbError::query(
            "cannot read the source's row-level security",
        ))?;
    Ok(rows
        .iter()
        .map(|row| {
            let read = |i| row.try_get::<_, Option<String>>(i).ok().flatten();
            let name = read(0).unwrap_or_default();
            let role = read(2).unwrap_or_default();
            let policies = read(3).unwrap_or_default();
            let name = match read(1) {
                Some(view) => format!("{name} (read through the view {view})"),
                None => config.source.table.clone(),
            };
            Finding::Warn(if policies.is_empty() {
                format!(
                    "row-level security on {name} applies to role {role:?} and no policy lets \
                     it read a row: every run reads 0 rows; add a policy (`create policy … on \
                     … for select to {role} using (…)`) or read as a role that bypasses it"
                )
            } else {
                format!(
                    "row-level security on {name} applies to role {role:?}: runs read only the \
                     rows that policy {policies} lets it see; make sure that is every sale to \
                     send"
                )
            })
        })
        .collect())
}
