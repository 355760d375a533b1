//! Cost of normalizing and hashing one typical row, all eleven fields (the budget is 5 µs).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ocapi::transform::hash::{hash_value, Hashed};
use ocapi::transform::normalize::{Context, Field};

/// A typical US row: national phone, state name, ZIP+4, country name, US date.
const ROW: [(Field, &str); 11] = [
    (Field::Em, "  John.Smith@Example.com "),
    (Field::Ph, "(650) 555-1212"),
    (Field::Fn, "Mary-Jane"),
    (Field::Ln, "O'Brien"),
    (Field::Ge, "Female"),
    (Field::Db, "2/16/1997"),
    (Field::Ct, "Menlo Park"),
    (Field::St, "California"),
    (Field::Zp, "94035-1234"),
    (Field::Country, "United States"),
    (Field::ExternalId, " Cust_1234 "),
];

/// Normalizes and hashes the whole row in the row's country.
fn hash_row(country: &str) -> usize {
    let ctx = Context {
        country: Some(country),
    };
    ROW.iter()
        .filter(|(field, raw)| {
            matches!(
                hash_value(*field, black_box(raw), &ctx, true),
                Hashed::Value(_)
            )
        })
        .count()
}

/// Registers the benchmark.
fn bench(c: &mut Criterion) {
    assert_eq!(
        hash_row("US"),
        ROW.len(),
        "every field of the typical row is usable"
    );
    c.bench_function("normalize_and_hash_typical_row", |b| {
        b.iter(|| hash_row(black_box("US")));
    });
    // The digest alone, the floor under every field.
    c.bench_function("sha256_hex_only", |b| {
        b.iter(|| ocapi::transform::hash::sha256_hex(black_box("john.smith@example.com")));
    });
    // Per field, to see where a row's time goes.
    let ctx = Context {
        country: Some("US"),
    };
    for (field, raw) in ROW {
        c.bench_function(&format!("field_{}", field.key()), |b| {
            b.iter(|| hash_value(field, black_box(raw), &ctx, true));
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
