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
    let listen = "127.0.0.1:0".parse().expect("a valid socket address");
    let sandbox = Sandbox::start(listen, options).await?;
    println!(
        "local Graph API stand-in listening on {}",
        sandbox.base_url()
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
    println!(
        "inspect the ledger: psql -c \"select status, reason, count(*) from \
         ocapi_demo_ledger.ledger group by 1, 2\""
    );
    sandbox.shutdown().await;
    Ok(())
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
    config.destination.access_token_env = None;
    config.destination.access_token_file = Some(token_file);
    config.validate()?;
    Ok(config)
}
