//! PostgreSQL plumbing: pools from our config (TLS through rustls, so `sslmode=require` URLs
//! work), identifier quoting, and the migration runner for `sql/`.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::Client;

use crate::config::Secret;

/// Migrations, numbered, forward-only, never edited once landed. Each runs with `search_path`
/// set to the ledger schema, so the files use unqualified names.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "ledger", include_str!("../sql/0001_ledger.sql")),
    (
        2,
        "reconcile_views",
        include_str!("../sql/0002_reconcile_views.sql"),
    ),
    (3, "operations", include_str!("../sql/0003_operations.sql")),
    (
        4,
        "ledger_written_once",
        include_str!("../sql/0004_ledger_written_once.sql"),
    ),
    (
        5,
        "ledger_key_collation",
        include_str!("../sql/0005_ledger_key_collation.sql"),
    ),
    (7, "upload_lag", include_str!("../sql/0007_upload_lag.sql")),
];

/// Errors talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse (its text is not repeated: it may hold a password).
    #[error("invalid PostgreSQL URL for {what}: {reason}")]
    Url {
        /// Which URL (source or ledger).
        what: &'static str,
        /// tokio-postgres's reason.
        reason: String,
    },
    /// The pool could not be built.
    #[error("cannot build the {what} connection pool")]
    Pool {
        /// Which pool.
        what: &'static str,
        /// The cause.
        #[source]
        source: deadpool_postgres::BuildError,
    },
    /// No connection could be had.
    #[error("cannot connect to the {what} database")]
    Connect {
        /// Which database.
        what: &'static str,
        /// The cause.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// A statement failed.
    #[error("{context}")]
    Query {
        /// What ocapi was doing.
        context: String,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
}

impl DbError {
    /// Wraps a tokio-postgres error with what ocapi was doing.
    pub fn query(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let context = context.into();
        move |source| Self::Query { context, source }
    }
}

/// Builds a pool for a URL; every connection reads times in UTC and dates in ISO form, so that
/// text renderings of watermarks round-trip whatever the server's defaults.
pub fn pool(url: &Secret, what: &'static str, size: usize) -> Result<Pool, DbError> {
    let mut pg = tokio_postgres::Config::from_str(url.expose()).map_err(|error| DbError::Url {
        what,
        reason: error.to_string(),
    })?;
    pg.options("-c TimeZone=UTC -c DateStyle=ISO,MDY -c extra_float_digits=1 -c client_min_messages=warning");
    if pg.get_application_name().is_none() {
        pg.application_name("ocapi");
    }
    let manager = Manager::from_config(
        pg,
        tls_connector(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|source| DbError::Pool { what, source })
}

/// A rustls connector with libpq's semantics for `sslmode=prefer` and `require`: the
/// connection is encrypted, the server certificate is not verified (libpq verifies only for
/// `verify-ca`/`verify-full`, which tokio-postgres does not parse). Warehouses behind managed
/// services with `sslmode=require` URLs therefore work as they do with psql.
fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(EncryptOnly(provider)))
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// Accepts any server certificate but still checks handshake signatures, as libpq's
/// `sslmode=require` does.
#[derive(Debug)]
struct EncryptOnly(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Takes a connection from a pool.
pub async fn connect(
    pool: &Pool,
    what: &'static str,
) -> Result<deadpool_postgres::Object, DbError> {
    pool.get()
        .await
        .map_err(|source| DbError::Connect { what, source })
}

/// Quotes an identifier for SQL: `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL: `'text'`, with embedded quotes doubled.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Creates or upgrades the ledger schema; returns the versions applied now (empty when the
/// schema was already current). Serialized by an advisory lock so that two migrating
/// processes do not race.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<i32>, DbError> {
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
    tx.batch_execute(&format!(
        "create schema if not exists {quoted};
         set local search_path to {quoted};
         create table if not exists schema_migrations (
             version integer primary key,
             name text not null,
             applied_at timestamptz not null default now()
         );"
    ))
    .await
    .map_err(DbError::query(format!("cannot create schema {schema}")))?;
    let rows = tx
        .query("select version from schema_migrations", &[])
        .await
        .map_err(DbError::query("cannot read schema_migrations"))?;
    let done: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(DbError::query(format!(
            "migration {version:04}_{name} failed"
        )))?;
        tx.execute(
            "insert into schema_migrations (version, name) values ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(DbError::query("cannot record migration"))?;
        applied.push(*version);
    }
    tx.commit()
        .await
        .map_err(DbError::query("cannot commit migration"))?;
    Ok(applied)
}

/// The latest migration version in this build.
pub fn latest_migration() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

/// The schema's applied migration version, or `None` when `migrate` never ran.
pub async fn schema_version(client: &Client, schema: &str) -> Result<Option<i32>, DbError> {
    let table = format!("{}.schema_migrations", quote_ident(schema));
    let exists: bool = client
        .query_one("select to_regclass($1) is not null", &[&table])
        .await
        .map_err(DbError::query("cannot look up the ledger schema"))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_one(&format!("select max(version) from {table}"), &[])
        .await
        .map_err(DbError::query("cannot read schema_migrations"))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_ident("order_id"), "\"order_id\"");
        assert_eq!(
            quote_ident("a\"; drop table x; --"),
            "\"a\"\"; drop table x; --\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
