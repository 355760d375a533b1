//! Unit tests of `transform`.

use super::*;
use crate::event::UserValue;

const NOW: i64 = 1_780_000_000;

fn rules() -> Rules {
    Rules {
        line_items: false,
        item_line: false,
        value_mapped: true,
        default_currency: Some("USD".to_owned()),
        default_country: Some("US".to_owned()),
        hash_external_id: true,
        timezone: chrono_tz::UTC,
        max_future_secs: 24 * 3600,
        processing: false,
        default_ldu: None,
        default_dpo_country: None,
        default_dpo_state: None,
        opt_out: false,
        default_opt_out: None,
        delivery: false,
        default_delivery: None,
    }
}

fn row() -> SourceRow {
    SourceRow {
        watermark: crate::source::Watermark::new(crate::source::WatermarkKind::Timestamptz, "w"),
        key: "R1".into(),
        order_id: Some("R1".into()),
        event_time: Some((NOW - 3600) as f64),
        value: Some("12.50".into()),
        ..SourceRow::default()
    }
    .with_customer(Field::Em, Some("A@Example.com"))
}

fn reason(row: SourceRow) -> InvalidReason {
    build(&[row], &rules(), NOW).unwrap_err().reason
}

#[test]
fn a_valid_row_becomes_a_purchase_event() {
    let built = build(&[row()], &rules(), NOW).unwrap();
    let e = &built.event;
    assert_eq!(e.event_name, "Purchase");
    assert_eq!(e.action_source, "physical_store");
    assert_eq!(e.event_id, "R1");
    assert_eq!(e.event_time, NOW - 3600);
    assert_eq!(e.custom_data.value, Decimal::new(125, 1));
    assert_eq!(e.custom_data.currency, "USD");
    assert_eq!(
        e.user_data.get(Field::Em).cloned(),
        Some(UserValue::Digest(hash::sha256("a@example.com")))
    );
    assert_eq!(
        e.user_data.get(Field::Country).cloned(),
        Some(UserValue::Digest(hash::sha256("us")))
    );
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["custom_data"]["value"], serde_json::json!(12.5));
}

#[test]
fn every_invalid_reason_is_detected() {
    let cases = [
        (
            SourceRow {
                order_id: None,
                ..row()
            },
            InvalidReason::MissingOrderId,
        ),
        (
            SourceRow {
                order_id: Some(" ".into()),
                key: Text::default(),
                ..row()
            },
            InvalidReason::MissingOrderId,
        ),
        (
            SourceRow {
                order_id: Some("x".repeat(300).into()),
                key: "x".repeat(300).into(),
                ..row()
            },
            InvalidReason::OrderIdTooLong,
        ),
        (
            SourceRow {
                event_time: None,
                ..row()
            },
            InvalidReason::MissingEventTime,
        ),
        (
            SourceRow {
                event_time: Some(f64::INFINITY),
                ..row()
            },
            InvalidReason::EventTimeOutOfRange,
        ),
        (
            SourceRow {
                event_time: Some(f64::NAN),
                ..row()
            },
            InvalidReason::EventTimeOutOfRange,
        ),
        (
            SourceRow {
                event_time: Some((NOW - 63 * 86400) as f64),
                ..row()
            },
            InvalidReason::TooOld,
        ),
        (
            SourceRow {
                event_time: Some((NOW + 24 * 3600 + 1) as f64),
                ..row()
            },
            InvalidReason::InFuture,
        ),
        (
            SourceRow {
                value: None,
                ..row()
            },
            InvalidReason::MissingValue,
        ),
        (
            SourceRow {
                value: Some("NaN".into()),
                ..row()
            },
            InvalidReason::InvalidValue,
        ),
        (
            SourceRow {
                value: Some("1e400".into()),
                ..row()
            },
            InvalidReason::InvalidValue,
        ),
        (
            SourceRow {
                currency: Some("XYZ".into()),
                ..row()
            },
            InvalidReason::InvalidCurrency,
        ),
        // Issue 22: only the default country is a walk-in sale, not a data problem.
        (
            row().with_customer(Field::Em, None),
            InvalidReason::Anonymous,
        ),
        (
            row().with_customer(Field::Em, Some("not-an-email")),
            InvalidReason::InsufficientCustomerInformation,
        ),
        (
            row()
                .with_customer(Field::Em, None)
                .with_customer(Field::Ge, Some("F")),
            InvalidReason::InsufficientCustomerInformation,
        ),
        (
            row()
                .with_customer(Field::Em, Some("  "))
                .with_customer(Field::Ph, Some("")),
            InvalidReason::Anonymous,
        ),
    ];
    for (row, expected) in cases {
        assert_eq!(reason(row.clone()), expected, "{row:?}");
    }
    let mut no_country = rules();
    no_country.default_country = None;
    let error = build(&[row().with_customer(Field::Em, None)], &no_country, NOW).unwrap_err();
    assert_eq!(error.reason, InvalidReason::Anonymous);
    // A country of the row's own is a customer value: alone, it is not enough to match.
    let country = row()
        .with_customer(Field::Em, None)
        .with_customer(Field::Country, Some("US"));
    let error = build(&[country], &no_country, NOW).unwrap_err();
    assert_eq!(error.reason, InvalidReason::InsufficientCustomerInformation);
    // Values given, none usable, and no default country: a data problem too.
    let unusable = row().with_customer(Field::Em, Some("nope"));
    let error = build(&[unusable], &no_country, NOW).unwrap_err();
    assert_eq!(error.reason, InvalidReason::NoCustomerInformation);
}

#[test]
fn a_dropped_email_is_counted_not_fatal() {
    let row = row()
        .with_customer(Field::Em, Some("nope"))
        .with_customer(Field::Ph, Some("+1 650 555 1212"));
    let built = build(&[row], &rules(), NOW).unwrap();
    assert!(built.event.user_data.get(Field::Em).is_none());
    assert_eq!(built.dropped, vec![Field::Em]);
}

#[test]
fn line_items_become_contents_and_sum_to_the_value() {
    let mut rules = rules();
    rules.line_items = true;
    rules.value_mapped = false;
    let line = |sku: &str, qty: &str, price: &str| SourceRow {
        item_id: Some(sku.into()),
        item_quantity: Some(qty.into()),
        item_price: Some(price.into()),
        value: None,
        ..row()
    };
    let rows = [line("A", "2", "5.00"), line("B", "1", "2.5")];
    let event = build(&rows, &rules, NOW).unwrap().event;
    assert_eq!(event.custom_data.value, Decimal::new(125, 1));
    assert_eq!(event.custom_data.num_items, Some(3));
    let contents = event.custom_data.contents.unwrap();
    assert_eq!(
        contents[0],
        Content {
            id: "A".into(),
            quantity: 2,
            item_price: Decimal::new(5, 0)
        }
    );
    let bad = [line("A", "two", "5.00")];
    assert_eq!(
        build(&bad, &rules, NOW).unwrap_err().reason,
        InvalidReason::InvalidLineItem
    );
    // A line of negative quantity returns goods: the order is a return, its value known.
    let returned = build(&[line("A", "-1", "5.00")], &rules, NOW).unwrap_err();
    assert_eq!(returned.reason, InvalidReason::NegativeValue);
    assert_eq!(returned.value, Some(Decimal::new(-5, 0)));
    let exchange = build(
        &[line("A", "2", "5.00"), line("B", "-1", "2.5")],
        &rules,
        NOW,
    );
    assert_eq!(exchange.unwrap_err().reason, InvalidReason::NegativeValue);
}

#[test]
fn an_invalid_order_keeps_the_value_and_currency_it_has() {
    // a time zone that is not one fails the order before its value is read
    let mut r = row();
    r.event_time = None;
    r.local_time = Some("2026-11-01 10:00:00".into());
    r.timezone = Some("Mars/Olympus".into());
    r.currency = Some("eur".into());
    let invalid = build(&[r], &rules(), NOW).unwrap_err();
    assert_eq!(invalid.reason, InvalidReason::UnknownTimeZone);
    assert_eq!(
        (invalid.value, invalid.currency.as_deref()),
        (Some(Decimal::new(125, 1)), Some("EUR"))
    );
    // an unknown currency keeps the value
    let mut r = row();
    r.currency = Some("XYZ".into());
    let invalid = build(&[r], &rules(), NOW).unwrap_err();
    assert_eq!(invalid.reason, InvalidReason::InvalidCurrency);
    assert_eq!(
        (invalid.value, invalid.currency),
        (Some(Decimal::new(125, 1)), None)
    );
}

#[test]
fn rows_are_grouped_by_key_but_null_ids_stay_apart() {
    let r = |key: &str| SourceRow {
        key: key.into(),
        ..row()
    };
    let rows = [r("A"), r("A"), r(""), r(""), r("B")];
    let groups: Vec<usize> = orders(&rows).map(<[SourceRow]>::len).collect();
    assert_eq!(groups, vec![2, 1, 1, 1]);
}

#[test]
fn an_order_dated_minutes_ahead_is_held_not_invalid() {
    // A till clock 5 min 15 s fast: held until its time, the event itself unchanged.
    let mut r = row();
    r.event_time = Some((NOW + 315) as f64);
    let built = build(&[r], &rules(), NOW).unwrap();
    assert_eq!(built.held_until, Some(NOW + 315 - MAX_FUTURE_SECS));
    assert_eq!(built.event.event_time, NOW + 315);
    // Within five minutes: sent now.
    let mut r = row();
    r.event_time = Some((NOW + 300) as f64);
    assert_eq!(build(&[r], &rules(), NOW).unwrap().held_until, None);
    // More than `source.max_future` ahead: invalid.
    let mut r = row();
    r.event_time = Some((NOW + 24 * 3600 + 1) as f64);
    assert_eq!(reason(r), InvalidReason::InFuture);
}

#[test]
fn copies_of_one_order_id_that_disagree_are_invalid_and_identical_copies_are_one_order() {
    let a = row();
    let mut b = row();
    b.value = Some("99.00".into());
    assert_eq!(
        build(&[a.clone(), b], &rules(), NOW).unwrap_err().reason,
        InvalidReason::ConflictingRows
    );
    let c = row().with_customer(Field::Em, Some("other@example.com"));
    assert_eq!(
        build(&[a.clone(), c], &rules(), NOW).unwrap_err().reason,
        InvalidReason::ConflictingRows
    );
    // Same value written differently (12.50 vs 12.5) is no conflict.
    let mut d = row();
    d.value = Some("12.5".into());
    assert!(build(&[a, d], &rules(), NOW).is_ok());
}

#[test]
fn a_fractional_quantity_is_one_unit_at_the_line_total_and_the_value_stays_exact() {
    let mut rules = rules();
    rules.line_items = true;
    rules.value_mapped = false;
    let line = |sku: &str, qty: &str, price: &str| SourceRow {
        item_id: Some(sku.into()),
        item_quantity: Some(qty.into()),
        item_price: Some(price.into()),
        value: None,
        ..row()
    };
    let built = build(
        &[line("APPLES", "1.5", "4.00"), line("MILK", "2", "0.15")],
        &rules,
        NOW,
    )
    .unwrap();
    let contents = built.event.custom_data.contents.unwrap();
    assert_eq!(
        (contents[0].quantity, contents[0].item_price),
        (1, Decimal::new(6, 0))
    );
    assert_eq!(
        (contents[1].quantity, contents[1].item_price),
        (2, Decimal::new(15, 2))
    );
    assert_eq!(built.event.custom_data.value, Decimal::new(63, 1));
    assert_eq!(built.event.custom_data.num_items, Some(3));
}

#[test]
fn local_times_are_read_in_each_row_zone_and_dst_follows_postgresql() {
    let local = |time: &str, zone: Option<&str>| SourceRow {
        event_time: None,
        local_time: Some(time.into()),
        timezone: zone.map(Into::into),
        ..row()
    };
    let utc = chrono_tz::UTC;
    let at = |r: &SourceRow| event_time(r, utc).unwrap();
    // 12:00 in Los Angeles (PST, -8) and in London (GMT) on 2026-01-15.
    assert_eq!(
        at(&local("2026-01-15 12:00:00", Some("America/Los_Angeles"))),
        1_768_507_200
    );
    assert_eq!(
        at(&local("2026-01-15 12:00:00", Some("Europe/London"))),
        1_768_478_400
    );
    // Blank zone: source.timezone.
    assert_eq!(at(&local("2026-01-15 12:00:00", Some(" "))), 1_768_478_400);
    // As PostgreSQL: an ambiguous 01:30 is standard time, a 02:30 in the gap uses the
    // offset before the change.
    let ny = Some("America/New_York");
    assert_eq!(at(&local("2026-11-01 01:30:00", ny)), 1_793_514_600);
    assert_eq!(at(&local("2026-03-08T02:30:00", ny)), 1_772_955_000);
    assert_eq!(
        event_time(&local("2026-01-15 12:00:00", Some("Mars/Olympus")), utc),
        Err(InvalidReason::UnknownTimeZone)
    );
}

#[test]
fn limited_data_use_needs_its_geography_and_only_ldu_is_an_option() {
    let mut rules = rules();
    rules.processing = true;
    let with = |dpo: &str, country: Option<&str>, state: Option<&str>| SourceRow {
        data_processing_options: Some(dpo.into()),
        dpo_country: country.map(Into::into),
        dpo_state: state.map(Into::into),
        ..row()
    };
    let reason = |r: SourceRow| {
        build(&[r], &rules, NOW)
            .map(|b| b.event)
            .map_err(|i| i.reason)
    };
    let sent = reason(with("LDU", Some("1"), Some("1000"))).unwrap();
    assert_eq!(sent.data_processing_options, Some(crate::event::LDU));
    assert_eq!(
        (
            sent.data_processing_options_country,
            sent.data_processing_options_state
        ),
        (Some(1), Some(1000))
    );
    assert_eq!(
        reason(with("LDU", Some("1"), None)),
        Err(InvalidReason::LduWithoutGeography)
    );
    assert_eq!(
        reason(with("LDU", None, None)),
        Err(InvalidReason::LduWithoutGeography)
    );
    assert_eq!(
        reason(with("LDU", Some("2"), Some("0"))),
        Err(InvalidReason::ProcessingGeographyOutOfRange)
    );
    assert_eq!(
        reason(with("CCPA", Some("1"), Some("1000"))),
        Err(InvalidReason::UnknownProcessingOption)
    );
    let none = reason(with("", None, None)).unwrap();
    assert_eq!(none.data_processing_options, Some(crate::event::NO_LDU));
    assert_eq!(none.data_processing_options_country, None);
    // Several options from an array: LDU alone, or nothing.
    let sep = crate::source::VALUE_SEPARATOR;
    assert!(reason(with(&format!("LDU{sep}LDU"), Some("0"), Some("0"))).is_ok());
}

#[test]
fn a_negative_total_is_a_return_not_a_purchase() {
    let mut r = row();
    r.value = Some("-12.50".into());
    assert_eq!(reason(r), InvalidReason::NegativeValue);
    let mut r = row();
    r.value = Some("0".into());
    assert!(build(&[r], &rules(), NOW).is_ok());
}

#[test]
fn a_null_processing_column_without_a_default_sends_no_processing_fields() {
    let mut rules = rules();
    rules.processing = true;
    let built = build(&[row()], &rules, NOW).unwrap();
    assert_eq!(built.event.data_processing_options, None);
    rules.default_ldu = Some(false);
    let built = build(&[row()], &rules, NOW).unwrap();
    assert_eq!(
        built.event.data_processing_options,
        Some(crate::event::NO_LDU)
    );
}

#[test]
fn a_view_that_repeats_lines_is_one_line_per_item_line_with_every_customer_value() {
    // GIVEN a view joining an order of three items (20.00) with a customer's two emails: each
    // of its two lines comes twice, once per email
    let mut rules = rules();
    rules.line_items = true;
    rules.item_line = true;
    rules.value_mapped = false;
    let line = |n: &str, sku: &str, qty: &str, price: &str, email: &str| {
        SourceRow {
            item_line: Some(n.into()),
            item_id: Some(sku.into()),
            item_quantity: Some(qty.into()),
            item_price: Some(price.into()),
            value: None,
            ..row()
        }
        .with_customer(Field::Em, Some(email))
    };
    let rows = [
        line("1", "A", "2", "5.00", "a@example.com"),
        line("1", "A", "2", "5.0", "b@example.com"),
        line("2", "B", "1", "10", "a@example.com"),
        line("2", "B", "1", "10.00", "b@example.com"),
    ];

    // WHEN it is built
    let event = build(&rows, &rules, NOW).unwrap().event;

    // THEN it is one order of 20.00 with 3 items, carrying both hashed emails
    assert_eq!(event.custom_data.value, Decimal::new(20, 0));
    assert_eq!(event.custom_data.num_items, Some(3));
    assert_eq!(event.custom_data.contents.as_ref().map(Vec::len), Some(2));
    let emails: Vec<_> = std::iter::once(event.user_data.get(Field::Em).cloned().unwrap())
        .chain(event.user_data.more.iter().map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(
        emails,
        [
            UserValue::Digest(hash::sha256("a@example.com")),
            UserValue::Digest(hash::sha256("b@example.com"))
        ]
    );
    // AND without item_line the same rows are summed twice (what the check warns of)
    rules.item_line = false;
    let doubled = build(&rows, &rules, NOW).unwrap().event;
    assert_eq!(doubled.custom_data.value, Decimal::new(40, 0));

    // AND rows of one line that disagree make the order invalid, naming the key
    rules.item_line = true;
    let mut wrong = rows.clone();
    wrong[1].item_quantity = Some("3".into());
    let invalid = build(&wrong, &rules, NOW).unwrap_err();
    assert_eq!(invalid.reason, InvalidReason::LineQuantityDisagrees);
    assert!(invalid.reason.as_str().contains("mapping.item_quantity"));
    let mut wrong = rows.clone();
    wrong[3].item_price = Some("9.99".into());
    assert_eq!(
        build(&wrong, &rules, NOW).unwrap_err().reason,
        InvalidReason::LinePriceDisagrees
    );
    let mut wrong = rows;
    wrong[2].item_id = Some("C".into());
    assert_eq!(
        build(&wrong, &rules, NOW).unwrap_err().reason,
        InvalidReason::LineItemIdDisagrees
    );
}

#[test]
fn the_event_id_is_the_order_key_the_read_gives() {
    // A numeric id read as `1001.0` on its first row, keyed `1001` by the read.
    let r = SourceRow {
        key: "1001".into(),
        order_id: Some("1001.0".into()),
        ..row()
    };
    let event = build(&[r], &rules(), NOW).unwrap().event;
    assert_eq!(event.event_id, "1001");
    assert_eq!(event.custom_data.order_id, "1001");
}
