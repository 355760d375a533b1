//! Criterion benchmarks of the per-batch CPU work between the source and the wire: building the
//! events of a page of source rows (`transform::build`: normalization and hashing included) and
//! serializing a 1000-event batch into the request body sent to Meta, and the events' digests. Run with
//! `cargo bench --bench batch`; the figures are in docs/benchmarks.md.

use ocapi::config::CustomerField as Field;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ocapi::config::Config;
use ocapi::destination::meta::PARTNER_AGENT;
use ocapi::event::Event;
use ocapi::source::{SourceRow, Watermark, WatermarkKind};
use ocapi::transform::{self, Rules};
use serde::Serialize;

/// Rows in one benchmarked page (the default `source.batch_size`).
const PAGE_ROWS: usize = 5000;
/// Events in one request: Meta's maximum and the default `destination.batch_size`.
const BATCH_EVENTS: usize = 1000;
/// The unix time the events are judged at.
const NOW: i64 = 1_780_000_000;

/// A config mapping every customer field, as the demo does.
const CONFIG: &str = r#"
[connector]
name = "bench"
[source]
url = "postgres://localhost/bench"
table = "shop.store_transactions"
watermark_column = "updated_at"
[mapping]
order_id = "order_id"
event_time = "purchased_at"
value = "total"
currency = "currency"
email = "email"
phone = "phone"
first_name = "first_name"
last_name = "last_name"
city = "city"
state = "state"
zip = "zip"
country = "country"
gender = "gender"
date_of_birth = "birth_date"
external_id = "loyalty_id"
[defaults]
currency = "USD"
country = "US"
[destination]
kind = "file"
dataset_id = "1234567890"
path = "events.ndjson"
"#;

/// The request body's shape, as `destination::meta` sends it.
#[derive(Serialize)]
struct EventsRequest<'a> {
    /// The events.
    data: &'a [&'a Event],
    /// The token.
    access_token: &'a str,
    /// ocapi's partner agent.
    partner_agent: &'a str,
}

/// A typical source row `i`, every mapped field filled, as PostgreSQL's text forms.
fn row(i: usize) -> SourceRow {
    SourceRow {
        watermark: Watermark::new(
            WatermarkKind::Timestamptz,
            format!("2026-01-01 00:00:{:02}.{:03}+00", (i / 1000) % 60, i % 1000),
        ),
        key: format!("R{i}").into(),
        order_id: Some(format!("R{i}").into()),
        event_time: Some((NOW - 3600) as f64),
        value: Some(format!("{}.99", 10 + i % 500).into()),
        currency: Some("USD".into()),
        ..SourceRow::default()
    }
    .with_customer(Field::Em, Some(&format!(" Customer{i}@Example.com ")))
    .with_customer(Field::Ph, Some(&format!("(650) 555-{:04}", i % 10_000)))
    .with_customer(Field::Fn, Some("Mary"))
    .with_customer(Field::Ln, Some("Smith"))
    .with_customer(Field::Ct, Some("New York"))
    .with_customer(Field::St, Some("NY"))
    .with_customer(Field::Zp, Some("10001"))
    .with_customer(Field::Country, Some("US"))
    .with_customer(Field::Ge, Some("F"))
    .with_customer(Field::Db, Some("1990-01-02"))
    .with_customer(Field::ExternalId, Some(&format!("L{i}")))
}

/// The transform rules of [`CONFIG`].
fn rules() -> Rules {
    let config = Config::parse(CONFIG, Path::new("bench.toml")).expect("the bench config parses");
    Rules::from_config(&config)
}

/// Builds the events of a page, as the run loop's reader does.
fn build_page(rows: &[SourceRow], rules: &Rules) -> Vec<Event> {
    transform::orders(rows)
        .filter_map(|order| transform::build(order, rules, NOW).ok())
        .map(|built| built.event)
        .collect()
}

/// `transform::build` over a page of source rows.
fn bench_build(c: &mut Criterion) {
    let rules = rules();
    let rows: Vec<SourceRow> = (0..PAGE_ROWS).map(row).collect();
    let mut group = c.benchmark_group("build");
    group.throughput(Throughput::Elements(PAGE_ROWS as u64));
    group.sample_size(20);
    group.bench_function("page_of_5000_rows", |b| {
        b.iter(|| build_page(black_box(&rows), &rules));
    });
    group.finish();
}

/// Serializing a 1000-event batch to the request JSON.
fn bench_serialize(c: &mut Criterion) {
    let rules = rules();
    let rows: Vec<SourceRow> = (0..BATCH_EVENTS).map(row).collect();
    let events = build_page(&rows, &rules);
    assert_eq!(events.len(), BATCH_EVENTS, "every benchmark row is valid");
    let data: Vec<&Event> = events.iter().collect();
    let mut group = c.benchmark_group("serialize");
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.bench_function("request_body_of_1000_events", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(1 << 20),
            |buffer: &mut Vec<u8>| {
                let request = EventsRequest {
                    data: black_box(&data),
                    access_token: "bench-token",
                    partner_agent: PARTNER_AGENT,
                };
                serde_json::to_writer(buffer, &request).expect("an Event always serializes");
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// `Event::digest` of a 1000-event batch: what recording the events sent adds per event, and
/// what comparing a sent order read again costs.
fn bench_digest(c: &mut Criterion) {
    let rules = rules();
    let rows: Vec<SourceRow> = (0..BATCH_EVENTS).map(row).collect();
    let events = build_page(&rows, &rules);
    let mut group = c.benchmark_group("digest");
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.bench_function("digests_of_1000_events", |b| {
        b.iter(|| {
            black_box(&events)
                .iter()
                .map(Event::digest)
                .collect::<Vec<_>>()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_build, bench_serialize, bench_digest);
criterion_main!(benches);
