//! Cost of normalizing and hashing one typical row, all eleven fields (the budget is 5 µs), nine
//! fully populated rows of nine markets (computed, and with repeated values remembered as a run
//! does), and each market's phone.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ocapi::transform::hash::{hash_value, Hashed};
use ocapi::transform::memo::hash_value_memo;
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

/// Fully populated rows of nine markets, as `bench/e2e --fields all` writes them: national and
/// international phones, names with accents and in other scripts, country names and codes.
const MARKETS: [(&str, [(Field, &str); 11]); 9] = [
    ("US", ROW),
    (
        "DE",
        market(
            "jürgen.müller1@example.com",
            "030 20000001",
            "Jürgen",
            "Müller",
            "männlich",
            "München",
            "BY",
            "80331",
            "Deutschland",
        ),
    ),
    (
        "GB",
        market(
            "olivia_jones2@example.com",
            "07401 000001",
            "Olivia",
            "Jones",
            "M",
            "London",
            "England",
            "SW1A 1AA",
            "United Kingdom",
        ),
    ),
    (
        "FR",
        market(
            "amélie.dubois3@example.com",
            "+33 7 01 00 00 78",
            "Amélie",
            "Dubois",
            "Femme",
            "Saint-Étienne",
            "Île-de-France",
            "75001",
            "FR",
        ),
    ),
    (
        "BR",
        market(
            "joao.silva4@example.com",
            "(12) 90001-0000",
            "João",
            "da Silva",
            "masculino",
            "São Paulo",
            "SP",
            "01310-100",
            "Brasil",
        ),
    ),
    (
        "JP",
        market(
            "taro.yamada5@example.com",
            "03-5001-0000",
            "太郎",
            "山田",
            "女性",
            "東京",
            "東京都",
            "100-0001",
            "日本",
        ),
    ),
    (
        "IN",
        market(
            "priya.sharma6@example.com",
            "09800000001",
            "Priya",
            "Sharma",
            "F",
            "Mumbai",
            "Maharashtra",
            "400001",
            "India",
        ),
    ),
    (
        "MX",
        market(
            "jose.garcia7@example.com",
            "+52 55 0001 0000",
            "José",
            "García López",
            "Mujer",
            "Ciudad de México",
            "CDMX",
            "06600",
            "MEX",
        ),
    ),
    (
        "AU",
        market(
            "chloe.wilson8@example.com",
            "02 9001 0000",
            "Chloé",
            "Wilson",
            "Mr",
            "Sydney",
            "NSW",
            "2000",
            "Australia",
        ),
    ),
];

/// One market's row, in [`ROW`]'s field order.
#[allow(clippy::too_many_arguments)]
const fn market(
    em: &'static str,
    ph: &'static str,
    first: &'static str,
    last: &'static str,
    ge: &'static str,
    ct: &'static str,
    st: &'static str,
    zp: &'static str,
    country: &'static str,
) -> [(Field, &'static str); 11] {
    [
        (Field::Em, em),
        (Field::Ph, ph),
        (Field::Fn, first),
        (Field::Ln, last),
        (Field::Ge, ge),
        (Field::Db, "1972-11-07"),
        (Field::Ct, ct),
        (Field::St, st),
        (Field::Zp, zp),
        (Field::Country, country),
        (Field::ExternalId, "L1234"),
    ]
}

/// Normalizes and hashes the whole row in the row's country.
fn hash_row(country: &str) -> usize {
    let ctx = Context {
        country: Some(country),
        year: None,
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

/// Normalizes and hashes every field of every market's row; the number of usable values.
fn hash_markets() -> usize {
    let mut usable = 0;
    for (country, row) in &MARKETS {
        let ctx = Context {
            country: Some(country),
            year: None,
        };
        for (field, raw) in row {
            usable += usize::from(matches!(
                hash_value(*field, black_box(raw), &ctx, true),
                Hashed::Value(_)
            ));
        }
    }
    usable
}

/// [`hash_markets`] as a run does it: the values of the fields that repeat from row to row
/// (names, gender, city, state, postcode, country) remembered per thread
/// ([`ocapi::transform::memo`]); emails, phones, birth dates and external ids computed.
fn hash_markets_remembered() -> usize {
    let mut usable = 0;
    for (country, row) in &MARKETS {
        let ctx = Context {
            country: Some(country),
            year: None,
        };
        for (field, raw) in row {
            usable += usize::from(matches!(
                hash_value_memo(*field, black_box(raw), &ctx, true),
                Hashed::Value(_)
            ));
        }
    }
    usable
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
    // Nine fully populated rows, one per market: divide by 9 for a row.
    c.bench_function("normalize_and_hash_nine_market_rows", |b| {
        b.iter(hash_markets);
    });
    // The same rows as a run normalizes them, with repeated values remembered.
    assert_eq!(hash_markets_remembered(), hash_markets());
    c.bench_function("normalize_and_hash_nine_market_rows_remembered", |b| {
        b.iter(hash_markets_remembered);
    });
    // The phone of each market, in its row's country.
    for (country, row) in &MARKETS {
        let ctx = Context {
            country: Some(country),
            year: None,
        };
        let phone = row[1].1;
        c.bench_function(&format!("field_ph_{country}"), |b| {
            b.iter(|| hash_value(Field::Ph, black_box(phone), &ctx, true));
        });
    }
    // Per field, to see where a row's time goes.
    let ctx = Context {
        country: Some("US"),
        year: None,
    };
    for (field, raw) in ROW {
        c.bench_function(&format!("field_{}", field.key()), |b| {
            b.iter(|| hash_value(field, black_box(raw), &ctx, true));
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
