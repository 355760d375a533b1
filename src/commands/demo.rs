//! `ocapi demo`: the README's first command. On a local PostgreSQL it creates a few thousand
//! realistic store transactions (with line items, some invalid), starts the local Graph API
//! stand-in, migrates the ledger, syncs, and syncs again to show that nothing is sent twice.
//! It only ever touches its own schemas, `ocapi_demo` and `ocapi_demo_ledger`.

use std::path::Path;

use crate::config::Config;
use crate::db::{self, DbError};
use crate::error::Error;
use crate::run::{self, RunOptions};
use crate::sandbox::{Faults, Sandbox, SandboxOptions};
use crate::secret::Secret;

/// The server the demo uses when `DATABASE_URL` is unset.
pub(crate) const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The token the demo's stand-in accepts; it is not a real Meta token.
const DEMO_TOKEN: &str = "demo-token-not-a-secret";

/// Creates `ocapi_demo.store_transactions`: one row per order line, `rows` orders. Every
/// 37th order has only its address (too little to match), every 53rd is 70 days old, every 71st has a bad currency,
/// and every 7th is a walk-in sale, without any customer data (recorded `anonymous`, not sent).
const DEMO_DATA: &str = "
set client_min_messages = warning;
drop schema if exists ocapi_demo cascade;
drop schema if exists ocapi_demo_ledger cascade;
create schema ocapi_demo;
set search_path = ocapi_demo;
{TABLE}reset search_path;
select setseed(0.42);
with orders as (
    select g as n,
           'POS-' || lpad(g::text, 6, '0') as order_id,
           'S' || lpad((1 + g % 12)::text, 3, '0') as store_id,
           case when g % 53 = 0 then now() - interval '70 days'
                else now() - random() * interval '30 days' end as purchased_at,
           g % 10 = 0 as uk,
           (array['Mary', 'José', 'Li', 'Aisha', 'John', 'Zoë', 'Peter', 'Anna'])[1 + g % 8] as first_name,
           (array['Smith', 'García', 'Chen', 'Khan', 'O''Brien', 'Müller', 'Nguyen', 'Rossi'])[1 + g % 7] as last_name,
           1 + floor(random() * 3)::int as lines
    from generate_series(1, $ROWS) g
)
insert into ocapi_demo.store_transactions
    (order_id, store_id, purchased_at, updated_at, total, currency, email, phone, first_name,
     last_name, city, state, zip, country, gender, birth_date, loyalty_id, sku, qty, unit_price)
select o.order_id, o.store_id, o.purchased_at, o.purchased_at + interval '2 minutes', null,
       case when o.n % 71 = 0 then 'EURO' when o.uk then 'GBP' else 'USD' end,
       case when o.n % 37 = 0 or o.n % 5 = 0 then null
            when o.n % 3 = 0 then '  ' || upper(o.first_name) || '.' || o.n || '@Example.COM '
            else lower(o.first_name) || o.n || '@example.com' end,
       case when o.n % 37 = 0 then null
            when o.uk then '020 7946 ' || lpad((o.n % 10000)::text, 4, '0')
            when o.n % 2 = 0 then '(650) 555-' || lpad((o.n % 10000)::text, 4, '0')
            else '+1 415 555 ' || lpad((o.n % 10000)::text, 4, '0') end,
       case when o.n % 37 = 0 then null else o.first_name end,
       case when o.n % 37 = 0 then null else o.last_name end,
       case when o.uk then 'London' else (array['New York', 'San Francisco', 'Austin'])[1 + o.n % 3] end,
       case when o.uk then null else (array['NY', 'California', 'tx'])[1 + o.n % 3] end,
       case when o.uk then 'SW1A 1AA' else (array['10001', '94105-1234', '73301'])[1 + o.n % 3] end,
       case when o.uk then 'GB' when o.n % 4 = 0 then 'United States' else 'US' end,
       (array['F', 'male', 'Woman', null])[1 + o.n % 4],
       case when o.n % 37 <> 0 then date '1960-01-01' + (o.n * 37 % 15000) end,
       case when o.n % 2 = 0 and o.n % 37 <> 0 then 'LOY-' || o.n end,
       'SKU-' || lpad((1 + (o.n * l.line) % 250)::text, 4, '0'),
       1 + (o.n + l.line) % 3,
       round((2 + random() * 60)::numeric, 2)
from orders o cross join lateral generate_series(1, o.lines) as l(line);
update ocapi_demo.store_transactions
set email = null, phone = null, first_name = null, last_name = null, city = null, state = null,
    zip = null, country = null, gender = null, birth_date = null, loyalty_id = null
where substr(order_id, 5)::int % 7 = 0;
update ocapi_demo.store_transactions t set total = s.total
from (select order_id, sum(qty * unit_price) as total
      from ocapi_demo.store_transactions group by 1) s
where s.order_id = t.order_id;
";

/// Runs the demo on `DATABASE_URL` (else the local server) with `rows` orders.
pub async fn run(rows: u32) -> Result<(), Error> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let url = Secret::new(url);
    let pool = db::pool(&url, "demo", 1)?;
    let client = db::connect(&pool, "demo").await?;
    println!("creating {rows} demo orders in ocapi_demo.store_transactions");
    client
        .batch_execute(
            &DEMO_DATA
                .replace(
                    "{TABLE}",
                    include_str!("../../sql/demo/store_transactions.sql"),
                )
                .replace("$ROWS", &rows.max(1).to_string()),
        )
        .await
        .map_err(DbError::query("cannot create the demo data"))?;

    let options = SandboxOptions {
        access_token: DEMO_TOKEN.to_owned(),
        dataset_id: None,
        app_secret: None,
        // A few transient failures, so the run shows its retries.
        faults: Faults {
            error_rate: 0.05,
            name_index: true,
            ..Faults::default()
        },
        meta_side: crate::sandbox::MetaSide::default(),
    };
    let error_rate = options.faults.error_rate;
    let listen = "127.0.0.1:0".parse().expect("a valid socket address");
    let sandbox = Sandbox::start(listen, options).await?;
    println!(
        "local Graph API stand-in listening on {}",
        sandbox.base_url()
    );
    println!(
        "the stand-in answers about {:.0}% of requests with HTTP 500 or 503 on purpose, to show \
         the retries: the `WARN retrying request … HTTP 500` (or 503) lines below are expected, \
         and each batch they name is sent again",
        100.0 * error_rate
    );

    let config = demo_config(&url, &sandbox.base_url())?;
    let applied = crate::commands::migrate::migrate(&config).await?;
    println!(
        "migrated ledger schema {:?} ({applied:?})\n",
        config.ledger.schema
    );

    let first = run::run(&config, RunOptions::default(), std::future::pending()).await?;
    println!("first run:\n{first}");
    let second = run::run(&config, RunOptions::default(), std::future::pending()).await?;
    println!("second run (nothing new, nothing sent twice):\n{second}");
    let stats = sandbox.stats();
    println!(
        "the stand-in accepted {} events in {} requests ({} faults injected)",
        stats.events_accepted, stats.requests, stats.faults_injected
    );
    let start = config.source.start.clone().unwrap_or_default();
    print!("{}", account(&client, &start).await?);
    println!(
        "inspect the ledger: {}",
        psql_line(
            &url,
            "select status, reason, count(*) from ocapi_demo_ledger.ledger group by 1, 2 \
             order by 1, 2"
        )
    );
    sandbox.shutdown().await;
    Ok(())
}

/// Every demo order, accounted for: the ledger's outcomes (sent, anonymous, held, invalid and
/// rejected with their reasons) and the source orders no run read, those older than
/// `source.start` (`start`, 62 days back: Meta takes store events up to 62 days old,
/// docs/meta-capi.md) apart.
async fn account(client: &tokio_postgres::Client, start: &str) -> Result<String, Error> {
    let outcomes = client
        .query(
            "select status, coalesce(reason, ''), count(*) from ocapi_demo_ledger.ledger \
             group by 1, 2 order by 1, 2",
            &[],
        )
        .await
        .map_err(DbError::query("cannot count the demo ledger's outcomes"))?;
    let unread = client
        .query_one(
            "select count(distinct t.order_id) total,
                    count(distinct t.order_id) filter (where not exists (
                        select 1 from ocapi_demo_ledger.ledger l where l.order_id = t.order_id)
                        and t.updated_at < $1::text::timestamptz) too_old,
                    count(distinct t.order_id) filter (where not exists (
                        select 1 from ocapi_demo_ledger.ledger l where l.order_id = t.order_id)
                        and t.updated_at >= $1::text::timestamptz) unread
             from ocapi_demo.store_transactions t",
            &[&start],
        )
        .await
        .map_err(DbError::query("cannot count the demo orders"))?;
    let (total, too_old, not_read): (i64, i64, i64) = (unread.get(0), unread.get(1), unread.get(2));
    let mut out = format!("every one of the {total} demo orders, accounted for:\n");
    let mut counted = 0;
    for row in &outcomes {
        let (status, reason, n): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        counted += n;
        let what = match status.as_str() {
            "sent" => "sent (Meta acknowledged them)".to_owned(),
            "anonymous" => {
                "anonymous: walk-in sales without customer data, recorded, not sent".to_owned()
            }
            "held" => "held: dated ahead of the clock, sent once their time comes".to_owned(),
            other if reason.is_empty() => other.to_owned(),
            other => format!("{other}: {}", crate::escape::terminal(&reason)),
        };
        out.push_str(&format!("  {n:>6}  {what}\n"));
    }
    if too_old > 0 {
        out.push_str(&format!(
            "  {too_old:>6}  too old: older than 62 days, the most Meta takes for store events; \
             before `source.start`, so no run reads them\n"
        ));
    }
    if not_read > 0 {
        out.push_str(&format!("  {not_read:>6}  not read yet\n"));
    }
    counted += too_old + not_read;
    out.push_str(&format!("  {counted:>6}  in all\n"));
    Ok(out)
}

/// A `psql` command line that reaches the demo's database as printed: the URL without its
/// password (psql asks for it), so that nothing secret reaches the terminal.
fn psql_line(url: &Secret, sql: &str) -> String {
    let quoted = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let target = match reqwest::Url::parse(url.expose()) {
        Ok(mut parsed) if parsed.scheme().starts_with("postgres") => {
            let _ = parsed.set_password(None);
            quoted(parsed.as_str())
        }
        // A key=value connection string: psql takes it as the database name.
        _ => "\"$DATABASE_URL\"".to_owned(),
    };
    format!("psql {target} -c {}", quoted(sql))
}

/// The bundled `connector.toml`, pointed at this database and this stand-in.
fn demo_config(url: &Secret, base_url: &str) -> Result<Config, Error> {
    let mut config = Config::parse(
        include_str!("../../connector.toml"),
        Path::new("connector.toml"),
    )?;
    config.source.url = Some(url.clone());
    config.source.url_env = None;
    // The history to send: 62 days back, the most Meta accepts for store events. Written
    // explicitly, since a connector without ledger state sends only the last 7 days otherwise.
    let start = chrono::Utc::now() - chrono::Duration::seconds(crate::config::MAX_EVENT_AGE_SECS);
    config.source.start = Some(start.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    config.destination.base_url =
        crate::config::HttpUrl::try_from(base_url.to_owned()).map_err(|constraint| {
            crate::config::ConfigError::Invalid {
                key: "destination.base_url",
                constraint,
            }
        })?;
    // Smaller batches than production's 1000, so the demo shows several requests in flight.
    config.destination.batch_size =
        crate::config::BatchSize::new(250).expect("250 is within Meta's limit");
    // A random name created exclusively: a predictable one in the shared temporary directory
    // could be a planted symlink, and writing through it would overwrite the file it names.
    let (token_file, mut file) =
        crate::metrics::create_exclusive(&std::env::temp_dir(), "ocapi-demo-token", "")?;
    std::io::Write::write_all(&mut file, DEMO_TOKEN.as_bytes())?;
    // Readable by its owner only, as the README asks of a token file: the demo's run would
    // otherwise warn about its own file.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    config.destination.access_token_env = None;
    config.destination.access_token_file = Some(token_file);
    config.validate()?;
    Ok(config)
}
