//! What `ocapi init` reads of a database before any config exists: a table's or view's columns
//! with their base types, the tables a view reads (following views of views through
//! `pg_rewrite` and `pg_depend`, as PostgreSQL records a view's dependencies), their primary
//! keys, and the most common values of a column. Every statement is unnamed (`query_typed`), so
//! that it works through a transaction-mode pooler as the runs' reads do.

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::SourceError;
use crate::db::{quote_ident, DbError};

/// Rows `most_common` looks at: enough to find a chain's main currency and country, few enough
/// to cost a moment on a warehouse table without an index.
pub const SAMPLE_ROWS: i64 = 10_000;

/// What kind of relation a name is (`pg_class.relkind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// `r` or `p`: a table (partitioned or not).
    Table,
    /// `v`: a view.
    View,
    /// `m`: a materialized view.
    MaterializedView,
    /// `f`: a foreign table.
    Foreign,
}

impl RelationKind {
    /// From `pg_class.relkind`.
    fn from_relkind(kind: &str) -> Option<Self> {
        match kind {
            "r" | "p" => Some(Self::Table),
            "v" => Some(Self::View),
            "m" => Some(Self::MaterializedView),
            "f" => Some(Self::Foreign),
            _ => None,
        }
    }

    /// As a person says it.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::View => "view",
            Self::MaterializedView => "materialized view",
            Self::Foreign => "foreign table",
        }
    }
}

/// One column: its name, its declared type, and the base type its values have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    /// The column's name.
    pub name: String,
    /// The declared type as PostgreSQL prints it (`numeric(12,2)`, a domain's name).
    pub declared: String,
    /// The base type's `pg_type.typname` (domains followed; `_text` for a `text[]`).
    pub base: String,
}

/// A table or view with its columns in their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Table, view, …
    pub kind: RelationKind,
    /// The columns, in `attnum` order.
    pub columns: Vec<CatalogColumn>,
    /// The primary key's columns, in the key's order (empty without one, and for views).
    pub primary_key: Vec<String>,
    /// For a base table behind a view: its columns the view reads (`pg_depend`).
    pub used_by_view: Vec<String>,
}

impl Relation {
    /// `schema.name`, each part quoted only where SQL needs it.
    pub fn qualified(&self) -> String {
        format!(
            "{}.{}",
            plain_or_quoted(&self.schema),
            plain_or_quoted(&self.name)
        )
    }
}

/// An identifier as a person writes it: bare when it is lower case letters, digits and `_`.
fn plain_or_quoted(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        quote_ident(name)
    }
}

/// Looks `name` (`schema.table`, or a name on the search path) up with its columns.
///
/// # Errors
/// [`SourceError::TableNotFound`] when no such relation is visible (or it is an index, a
/// sequence, …); [`SourceError::Db`] when the database fails.
pub async fn relation(client: &Client, name: &str) -> Result<Relation, SourceError> {
    let found = client
        .query_typed(
            "select n.nspname::text, c.relname::text, c.relkind::text, c.oid
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.oid = to_regclass($1::text)",
            &[(&name, Type::TEXT)],
        )
        .await
        .map_err(|error| match error.code() {
            Some(code) if code.code().starts_with("42") => SourceError::TableNotFound {
                table: name.to_owned(),
            },
            _ => DbError::query("cannot look up the table")(error).into(),
        })?;
    let row = found.first().ok_or_else(|| SourceError::TableNotFound {
        table: name.to_owned(),
    })?;
    let kind = RelationKind::from_relkind(&row.get::<_, String>(2)).ok_or_else(|| {
        SourceError::TableNotFound {
            table: name.to_owned(),
        }
    })?;
    let oid: u32 = row.get(3);
    Ok(Relation {
        schema: row.get(0),
        name: row.get(1),
        kind,
        columns: columns(client, oid).await?,
        primary_key: primary_key(client, oid).await?,
        used_by_view: Vec::new(),
    })
}

/// The columns of the relation `oid`, domains followed down to their base type.
async fn columns(client: &Client, oid: u32) -> Result<Vec<CatalogColumn>, SourceError> {
    let rows = client
        .query_typed(
            "with recursive t(attnum, attname, declared, oid, depth) as (
                 select a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod),
                        a.atttypid, 0
                 from pg_attribute a
                 where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
                 union all
                 select t.attnum, t.attname, t.declared, y.typbasetype, t.depth + 1
                 from t join pg_type y on y.oid = t.oid
                 where y.typtype = 'd' and t.depth < 16
             )
             select attname, declared, base from (
                 select distinct on (t.attnum) t.attnum, t.attname, t.declared,
                        y.typname::text as base
                 from t join pg_type y on y.oid = t.oid
                 order by t.attnum, t.depth desc
             ) c order by attnum",
            &[(&oid, Type::OID)],
        )
        .await
        .map_err(DbError::query("cannot read the table's columns"))?;
    Ok(rows
        .iter()
        .map(|row| CatalogColumn {
            name: row.get(0),
            declared: row.get(1),
            base: row.get(2),
        })
        .collect())
}

/// The primary key's columns of the relation `oid`, in the key's order.
async fn primary_key(client: &Client, oid: u32) -> Result<Vec<String>, SourceError> {
    let rows = client
        .query_typed(
            "select a.attname::text
             from pg_index i
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
             where i.indrelid = $1 and i.indisprimary
             order by array_position(i.indkey::int2[], a.attnum)",
            &[(&oid, Type::OID)],
        )
        .await
        .map_err(DbError::query("cannot read the table's primary key"))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The tables (plain or partitioned) a view reads, following views of views, each with its
/// columns, primary key and the columns the views read of it; in name order.
///
/// # Errors
/// [`SourceError::Db`] when the database fails.
pub async fn base_tables(client: &Client, view: &Relation) -> Result<Vec<Relation>, SourceError> {
    let rows = client
        .query_typed(
            "with recursive deps(oid, depth) as (
                 select to_regclass($1::text)::oid, 0
                 union
                 select d.refobjid, deps.depth + 1
                 from deps
                 join pg_rewrite r on r.ev_class = deps.oid
                 join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
                      and d.refclassid = 'pg_class'::regclass and d.refobjid <> deps.oid
                 where deps.depth < 8
             )
             select n.nspname::text, c.relname::text, c.oid,
                    coalesce(array_agg(distinct a.attname::text)
                             filter (where a.attname is not null), '{}')
             from (select distinct oid from deps) t
             join pg_class c on c.oid = t.oid and c.relkind in ('r', 'p')
             join pg_namespace n on n.oid = c.relnamespace
             left join pg_depend d on d.classid = 'pg_rewrite'::regclass
                  and d.refclassid = 'pg_class'::regclass and d.refobjid = c.oid
                  and d.refobjsubid > 0
             left join pg_attribute a on a.attrelid = c.oid and a.attnum = d.refobjsubid
             group by 1, 2, 3
             order by 1, 2",
            &[(&view.qualified(), Type::TEXT)],
        )
        .await
        .map_err(DbError::query("cannot read the tables behind the view"))?;
    let mut tables = Vec::new();
    for row in rows {
        let oid: u32 = row.get(2);
        tables.push(Relation {
            schema: row.get(0),
            name: row.get(1),
            kind: RelationKind::Table,
            columns: columns(client, oid).await?,
            primary_key: primary_key(client, oid).await?,
            used_by_view: row.get(3),
        });
    }
    Ok(tables)
}

/// The tables and views a role can read (outside PostgreSQL's own schemas), qualified, in name
/// order, with their kind: what `ocapi init` offers to choose from on a terminal.
///
/// # Errors
/// [`SourceError::Db`] when the database fails.
pub async fn readable_relations(
    client: &Client,
) -> Result<Vec<(String, RelationKind)>, SourceError> {
    let rows = client
        .query_typed(
            "select n.nspname::text, c.relname::text, c.relkind::text
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p', 'v', 'm', 'f')
               and n.nspname not in ('pg_catalog', 'information_schema')
               and n.nspname not like 'pg\\_%'
               and not c.relispartition
               and has_table_privilege(c.oid, 'select')
             order by 1, 2",
            &[],
        )
        .await
        .map_err(DbError::query("cannot list the tables"))?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let kind = RelationKind::from_relkind(&row.get::<_, String>(2))?;
            Some((
                format!(
                    "{}.{}",
                    plain_or_quoted(&row.get::<_, String>(0)),
                    plain_or_quoted(&row.get::<_, String>(1))
                ),
                kind,
            ))
        })
        .collect())
}

/// The most common non-empty values of `column` among the first [`SAMPLE_ROWS`] rows of
/// `relation`, most common first, with their counts (at most `limit`).
///
/// # Errors
/// [`SourceError::Db`] when the database fails.
pub async fn most_common(
    client: &Client,
    relation: &Relation,
    column: &str,
    limit: i64,
) -> Result<Vec<(String, i64)>, SourceError> {
    let sql = format!(
        "select v, count(*) from (
             select nullif(btrim({column}::text), '') as v from {schema}.{name} limit $1
         ) s where v is not null group by v order by 2 desc, 1 limit $2",
        column = quote_ident(column),
        schema = quote_ident(&relation.schema),
        name = quote_ident(&relation.name),
    );
    let rows = client
        .query_typed(&sql, &[(&SAMPLE_ROWS, Type::INT8), (&limit, Type::INT8)])
        .await
        .map_err(DbError::query("cannot sample the table's values"))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// How many rows [`most_common`] samples: the relation's rows, at most [`SAMPLE_ROWS`].
///
/// # Errors
/// [`SourceError::Db`] when the query fails.
pub async fn sampled_rows(client: &Client, relation: &Relation) -> Result<i64, SourceError> {
    let sql = format!(
        "select count(*) from (select from {schema}.{name} limit $1) s",
        schema = quote_ident(&relation.schema),
        name = quote_ident(&relation.name),
    );
    let row = client
        .query_typed(&sql, &[(&SAMPLE_ROWS, Type::INT8)])
        .await
        .map_err(DbError::query("cannot sample the table's values"))?;
    Ok(row[0].get(0))
}

/// The database's clock, as `now()` gives it.
///
/// # Errors
/// [`SourceError::Db`] when the database fails.
pub async fn database_now(client: &Client) -> Result<chrono::DateTime<chrono::Utc>, SourceError> {
    let row = client
        .query_typed("select now()", &[])
        .await
        .map_err(DbError::query("cannot read the database's clock"))?;
    Ok(row[0].get(0))
}
