//! The migration runner for `sql/`, and the ledger schema's version.
//!
//! ocapi records the migrations it applied in `<ledger.schema>.ocapi_schema_migrations`, a name
//! of its own: Rails, Ecto, golang-migrate and dbmate each keep a `schema_migrations` table, and
//! a ledger in their schema (`ledger.schema = "public"`) must not read theirs as its own. A
//! ledger migrated by an earlier version of ocapi has its table under the old name,
//! `schema_migrations`; it is recognised by its columns and its first row (`1`, `ledger`) and
//! renamed by the next `migrate`, which says so. Every value is read with `try_get`: anything
//! unexpected in ocapi's table is [`DbError::NotOurs`] (a configuration error naming the table),
//! never a panic.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use super::{quote_ident, DbError, MIGRATIONS};

/// The table ocapi records its applied migrations in, inside the ledger schema.
pub const MIGRATIONS_TABLE: &str = "ocapi_schema_migrations";

/// The name earlier versions gave [`MIGRATIONS_TABLE`].
const LEGACY_TABLE: &str = "schema_migrations";

/// The columns of ocapi's migrations table, as `format_type` prints them (both names).
const COLUMNS: [&str; 3] = [
    "version integer",
    "name text",
    "applied_at timestamp with time zone",
];

/// What `migrate` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The migrations applied now (empty when the schema was already current).
    pub applied: Vec<i32>,
    /// An earlier version's `schema_migrations` was renamed to [`MIGRATIONS_TABLE`].
    pub carried_over: bool,
}

/// Creates or upgrades the ledger schema; returns the versions applied now (empty when the
/// schema was already current). See [`migrate_reporting`].
///
/// # Errors
/// See [`migrate_reporting`].
pub async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<i32>, DbError> {
    Ok(migrate_reporting(client, schema).await?.applied)
}

/// Creates or upgrades the ledger schema, carrying an earlier version's migrations table over.
/// Serialized by an advisory lock so that two migrating processes do not race. Creates only
/// what is missing, so that a role that owns a schema an administrator created (and cannot
/// create schemas) can migrate it, and an up-to-date schema is a no-op for any role that can
/// read it.
///
/// # Errors
/// [`DbError::Query`] when a statement fails; [`DbError::NotOurs`] when ocapi's migrations
/// table holds what ocapi never wrote.
pub async fn migrate_reporting(client: &mut Client, schema: &str) -> Result<Migrated, DbError> {
    if schema_version(client, schema)
        .await?
        .is_some_and(|version| version >= super::latest_migration())
        && table_exists(client, schema, MIGRATIONS_TABLE).await?
    {
        return Ok(Migrated::default());
    }
    let tx = client
        .transaction()
        .await
        .map_err(DbError::query("cannot start migration"))?;
    tx.execute(
        "select pg_advisory_xact_lock(hashtext('ocapi-migrate'))",
        &[],
    )
    .await
    .map_err(DbError::query("cannot take the migration lock"))?;
    let quoted = quote_ident(schema);
    let present: bool = tx
        .query_one(
            "select exists (select from pg_namespace where nspname = $1)",
            &[&schema],
        )
        .await
        .map_err(DbError::query("cannot look up the ledger schema"))?
        .try_get(0)
        .map_err(DbError::query("cannot look up the ledger schema"))?;
    if !present {
        tx.batch_execute(&format!("create schema {quoted}"))
            .await
            .map_err(DbError::query(format!("cannot create schema {schema}")))?;
    }
    tx.batch_execute(&format!("set local search_path to {quoted}"))
        .await
        .map_err(DbError::query(format!("cannot use schema {schema}")))?;
    let mut carried_over = false;
    if !table_exists(&tx, schema, MIGRATIONS_TABLE).await? {
        if is_legacy(&tx, schema).await? {
            // The primary key's index keeps its name through a table rename; it would collide
            // with the index of another tool's `schema_migrations` created later.
            tx.batch_execute(&format!(
                "alter table {quoted}.{LEGACY_TABLE} rename to {MIGRATIONS_TABLE};
                 alter index if exists {quoted}.{LEGACY_TABLE}_pkey
                     rename to {MIGRATIONS_TABLE}_pkey"
            ))
            .await
            .map_err(DbError::query(format!(
                "cannot rename {schema}.{LEGACY_TABLE} to {MIGRATIONS_TABLE}"
            )))?;
            carried_over = true;
        } else {
            tx.batch_execute(&format!(
                "create table {MIGRATIONS_TABLE} (
                     version integer primary key,
                     name text not null,
                     applied_at timestamptz not null default now()
                 )"
            ))
            .await
            .map_err(DbError::query(format!(
                "cannot create {schema}.{MIGRATIONS_TABLE}"
            )))?;
        }
    }
    let done = applied_versions(&tx, schema).await?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|error| {
            name_taken(schema, &error).unwrap_or_else(|| {
                DbError::query(format!("migration {version:04}_{name} failed"))(error)
            })
        })?;
        tx.execute(
            &format!("insert into {MIGRATIONS_TABLE} (version, name) values ($1, $2)"),
            &[version, name],
        )
        .await
        .map_err(DbError::query("cannot record migration"))?;
        applied.push(*version);
    }
    tx.commit()
        .await
        .map_err(DbError::query("cannot commit migration"))?;
    Ok(Migrated {
        applied,
        carried_over,
    })
}

/// The schema's applied migration version, or `None` when `migrate` never ran: from
/// [`MIGRATIONS_TABLE`], else from an earlier version's `schema_migrations` (which `migrate`
/// carries over). Another tool's `schema_migrations` is not ocapi's and is left alone.
///
/// # Errors
/// [`DbError::Query`] when a statement fails; [`DbError::NotOurs`] when ocapi's table holds
/// what ocapi never wrote.
pub(crate) async fn schema_version(client: &Client, schema: &str) -> Result<Option<i32>, DbError> {
    let table = if table_exists(client, schema, MIGRATIONS_TABLE).await? {
        MIGRATIONS_TABLE
    } else if is_legacy(client, schema).await? {
        LEGACY_TABLE
    } else {
        return Ok(None);
    };
    let versions = versions_in(client, schema, table).await?;
    Ok(versions.into_iter().max())
}

/// The versions recorded in ocapi's migrations table (`search_path` is the schema).
async fn applied_versions(client: &impl GenericClient, schema: &str) -> Result<Vec<i32>, DbError> {
    versions_in(client, schema, MIGRATIONS_TABLE).await
}

/// The versions recorded in `schema.table`, read so that nothing unexpected can panic.
async fn versions_in(
    client: &impl GenericClient,
    schema: &str,
    table: &str,
) -> Result<Vec<i32>, DbError> {
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let not_ours = |found: String| DbError::NotOurs {
        table: format!("{schema}.{table}"),
        found,
    };
    let rows = client
        .query_typed(&format!("select version from {qualified}"), &[])
        .await
        .map_err(|error| match error.code() {
            // No `version` column (42703), or not a table ocapi can read.
            Some(code) if code.code().starts_with("42") => {
                not_ours("no integer column `version`".to_owned())
            }
            _ => DbError::query(format!("cannot read {schema}.{table}"))(error),
        })?;
    rows.iter()
        .map(|row| match row.try_get::<_, Option<i32>>(0) {
            Ok(Some(version)) => Ok(version),
            Ok(None) => Err(not_ours("a NULL version".to_owned())),
            Err(_) => Err(not_ours(format!(
                "a `version` column of type {}",
                row.columns()
                    .first()
                    .map_or("unknown", |c| c.type_().name())
            ))),
        })
        .collect()
}

/// Whether `schema.table` exists.
async fn table_exists(
    client: &impl GenericClient,
    schema: &str,
    table: &str,
) -> Result<bool, DbError> {
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    client
        .query_typed(
            "select to_regclass($1::text) is not null",
            &[(&qualified, Type::TEXT)],
        )
        .await
        .and_then(|rows| match rows.first() {
            Some(row) => row.try_get(0),
            None => Ok(false),
        })
        .map_err(DbError::query("cannot look up the ledger schema"))
}

/// Whether the schema's `schema_migrations` is one an earlier version of ocapi made: ocapi's
/// columns, and its first migration recorded as ocapi named it.
async fn is_legacy(client: &impl GenericClient, schema: &str) -> Result<bool, DbError> {
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(LEGACY_TABLE));
    let rows = client
        .query_typed(
            "select coalesce(array_agg(a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod)
                                       order by a.attnum), '{}')
             from pg_attribute a
             where a.attrelid = to_regclass($1::text) and a.attnum > 0 and not a.attisdropped",
            &[(&qualified, Type::TEXT)],
        )
        .await
        .map_err(DbError::query("cannot look up the ledger schema"))?;
    let columns: Vec<String> = rows
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(DbError::query("cannot look up the ledger schema"))?
        .unwrap_or_default();
    if columns != COLUMNS {
        return Ok(false);
    }
    let rows = client
        .query_typed(
            &format!(
                "select exists (select from {qualified} where version = 1 and name = 'ledger')"
            ),
            &[],
        )
        .await
        .map_err(DbError::query(format!(
            "cannot read {schema}.{LEGACY_TABLE}"
        )))?;
    Ok(rows
        .first()
        .and_then(|row| row.try_get::<_, bool>(0).ok())
        .unwrap_or(false))
}

/// What the ledger creates in its schema (tables, views, indexes), named when one of these
/// names is already taken by another application's relation.
pub const LEDGER_RELATIONS: &str = "tables ledger, runs, state, key_rules, meta_alerts and \
     ocapi_schema_migrations; views ledger_daily, ledger_by_store, ledger_store_sales, \
     ledger_invalid_reasons, ledger_unsent_reasons, run_summary and run_match_keys";

/// A migration that failed because a relation of the ledger's name already exists in the
/// schema (another application's `runs`, say: PostgreSQL's `42P07 duplicate_table`, or `42809`
/// when a view would replace a table): a configuration error naming it, not a raw failure.
fn name_taken(schema: &str, error: &tokio_postgres::Error) -> Option<DbError> {
    use tokio_postgres::error::SqlState;
    let db = error.as_db_error()?;
    if *db.code() != SqlState::DUPLICATE_TABLE && *db.code() != SqlState::WRONG_OBJECT_TYPE {
        return None;
    }
    let name = db.message().split('"').nth(1)?;
    Some(DbError::NotOurs {
        table: format!("{schema}.{name}"),
        found: format!(
            "the name of a relation the ledger creates (the ledger creates the \
             {LEDGER_RELATIONS})"
        ),
    })
}
