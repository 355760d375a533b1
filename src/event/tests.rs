//! Unit tests of events: serialization, digests and versions.

use super::*;

#[test]
fn the_digest_is_what_is_sent_whatever_the_order_of_lines_and_values() {
    // GIVEN an order with two lines and two emails, and the same read in the other order
    let line = |id: &str, quantity| Content {
        id: id.to_owned(),
        quantity,
        item_price: Decimal::new(500, 2),
    };
    let mut event = Event::purchase("R1", 1_700_000_000, Decimal::new(1500, 2), "EUR");
    event.custom_data.contents = Some(vec![line("A", 1), line("B", 2)]);
    let mut reordered = event.clone();
    reordered.custom_data.contents = Some(vec![line("B", 2), line("A", 1)]);
    let email = |byte: u8| UserValue::Digest(Digest([byte; 32]));
    event.user_data = UserData::default().with(CustomerField::Em, email(1));
    event.user_data.more.push(("em", email(2)));
    reordered.user_data = UserData::default().with(CustomerField::Em, email(2));
    reordered.user_data.more.push(("em", email(1)));

    // THEN both have one digest, and any change to what is sent changes it
    assert_eq!(event.digest(), reordered.digest());
    assert_eq!(event.digest().len(), 32 + RULES_TAG.len());
    let mut changed = event.clone();
    changed.custom_data.value = Decimal::new(1600, 2);
    assert_ne!(changed.digest(), event.digest());
    let mut moved = event.clone();
    moved.custom_data.contents = Some(vec![line("A", 2), line("B", 1)]);
    assert_ne!(moved.digest(), event.digest());
    let mut later = event.clone();
    later.event_time += 1;
    assert_ne!(later.digest(), event.digest());
}

/// A digest taken under other normalization rules (or before they were versioned) that
/// differs says nothing: the caller compares watermarks; under the same rules it decides.
#[test]
fn digests_under_other_normalization_rules_decide_only_when_equal() {
    let hex = |b: char| b.to_string().repeat(64);
    let now = format!("{}{}", hex('a'), *RULES_TAG);
    assert_eq!(same_version(&now, &now), Some(true));
    assert_eq!(same_version(&hex('a'), &now), Some(true));
    assert_eq!(same_version(&format!("{}/r1", hex('a')), &now), Some(true));
    let other = format!("{}{}", hex('b'), *RULES_TAG);
    assert_eq!(same_version(&other, &now), Some(false));
    assert_eq!(same_version(&hex('b'), &now), None);
    assert_eq!(same_version(&format!("{}/r1", hex('b')), &now), None);
}

/// The exact bytes of an event: present keys only, in Meta's order, each a one-element
/// array; digests as 64 lowercase hex digits, plain values as they are.
#[test]
fn an_event_serializes_to_exactly_the_json_meta_takes() {
    let mut digest = [0u8; 32];
    digest[0] = 0xab;
    digest[31] = 0x0f;
    let event = Event {
        user_data: UserData::default()
            .with(CustomerField::Em, UserValue::Digest(Digest(digest)))
            .with(CustomerField::Ct, UserValue::Digest(Digest([0xff; 32])))
            .with(
                CustomerField::ExternalId,
                UserValue::Text("Cust_1234".to_owned()),
            ),
        ..Event::purchase("R1", 1_780_000_000, Decimal::new(1250, 2), "USD")
    };
    let em = format!("ab{}0f", "00".repeat(30));
    let ct = "f".repeat(64);
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        format!(
            r#"{{"event_name":"Purchase","event_time":1780000000,"event_id":"R1","action_source":"physical_store","user_data":{{"em":["{em}"],"ct":["{ct}"],"external_id":["Cust_1234"]}},"custom_data":{{"value":12.5,"currency":"USD","order_id":"R1"}}}}"#
        )
    );
    assert_eq!(
        event.user_data.present_keys().collect::<Vec<_>>(),
        ["em", "ct", "external_id"]
    );
    assert_eq!(format!("{:?}", Digest(digest)), format!("Digest({em})"));
}

/// The request bodies' writer gives the bytes of the `Serialize` impl, on events with every
/// optional part, several values of a key, and text that JSON escapes.
#[test]
fn the_fast_json_writer_gives_exactly_the_bytes_of_serde() {
    let base = Event::purchase("R\"1\\é\u{1}", 1_780_000_000, Decimal::new(-1999, 2), "EUR");
    let mut full = base.clone();
    for (n, field) in CustomerField::ALL.into_iter().enumerate() {
        let value = if n % 3 == 0 {
            UserValue::Text(format!("plain \"{n}\"\n\u{7f}ü"))
        } else {
            UserValue::Digest(Digest([u8::try_from(n).unwrap() * 17; 32]))
        };
        full.user_data = full.user_data.with(field, value);
    }
    full.user_data.more = vec![
        ("em", UserValue::Digest(Digest([0x5a; 32]))),
        ("external_id", UserValue::Text("second".to_owned())),
        ("em", UserValue::Text("third".to_owned())),
    ];
    full.custom_data.contents = Some(vec![Content {
        id: "SKU\t1".to_owned(),
        quantity: 3,
        item_price: Decimal::new(333, 2),
    }]);
    full.custom_data.num_items = Some(3);
    full.custom_data.content_type = Some("product".to_owned());
    full.custom_data.delivery_category = Some("curbside");
    full.opt_out = Some(true);
    full.data_processing_options = Some(LDU);
    full.data_processing_options_country = Some(1);
    full.data_processing_options_state = Some(1000);
    let mut no_ldu = base.clone();
    no_ldu.data_processing_options = Some(NO_LDU);
    no_ldu.opt_out = Some(false);
    no_ldu.user_data =
        UserData::default().with(CustomerField::Ph, UserValue::Digest(Digest([0; 32])));
    // Values as serde writes a decimal's `f64`: whole, long fractions, the extremes, zero.
    let values = [
        Decimal::ZERO,
        Decimal::new(1, 28),
        Decimal::new(123_456_789_012_345_678, 4),
        Decimal::new(100, 0),
        Decimal::new(-5, 1),
        Decimal::MAX,
        Decimal::MIN,
    ];
    let valued = values.into_iter().map(|value| {
        let mut event = base.clone();
        event.custom_data.value = value;
        event.custom_data.currency = Text::from("JPY");
        event.custom_data.order_id =
            Text::from("order ü \u{2028} \"x\" with a long id past 24 bytes");
        event
    });
    for event in [base.clone(), full, no_ldu].into_iter().chain(valued) {
        let mut written = Vec::new();
        event.write_json(&mut written);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&event).unwrap()
        );
    }
}

#[test]
fn a_user_value_keeps_its_digest_aligned_at_no_cost_in_size() {
    // GIVEN the digest type, eleven of which each fully populated order copies several times
    // THEN its bytes start on an 8-byte boundary in a value (copied as whole words, which the
    // processor forwards from store to load), and a value is no larger for it
    assert_eq!(std::mem::align_of::<Digest>(), 8);
    assert_eq!(std::mem::size_of::<UserValue>(), 40);
    assert_eq!(std::mem::size_of::<Option<UserValue>>(), 40);
}

#[test]
fn an_event_is_small_enough_to_move_cheaply() {
    // GIVEN the event type, which each order's event moves through four vectors of a run
    // (page → to send → batch → outcomes) and which fills fresh pages of memory there
    // WHEN its size is taken
    let size = std::mem::size_of::<Event>();
    // THEN its customer slots are not inline: with them (~450 bytes) it was ~700 bytes, and
    // moving and faulting in those bytes was a tenth of a run's CPU (issue 24)
    assert!(size <= 320, "an Event is {size} bytes");
}

/// The hex digits of a digest are `{:02x}` of each byte, for every byte value in every place.
#[test]
fn digest_hex_is_every_bytes_two_lowercase_digits() {
    for start in 0..=255u8 {
        let bytes: [u8; 32] = std::array::from_fn(|i| start.wrapping_add((i * 37) as u8));
        let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(Digest(bytes).to_string(), want);
    }
}

/// The ledger's `match_keys`: the present keys joined by commas in Meta's order, the same text
/// for every event with the same keys, and empty for none.
#[test]
fn match_keys_join_the_present_keys_in_order() {
    let digest = |byte: u8| UserValue::Digest(Digest([byte; 32]));
    let data = UserData::default()
        .with(CustomerField::ExternalId, digest(3))
        .with(CustomerField::Ph, digest(2))
        .with(CustomerField::Em, digest(1));
    let joined: Vec<&str> = data.present_keys().collect();
    assert_eq!(data.match_keys(), joined.join(","));
    assert_eq!(data.match_keys(), "em,ph,external_id");
    assert_eq!(UserData::default().match_keys(), "");
    let other = UserData::default().with(CustomerField::Em, digest(9));
    assert_eq!(other.match_keys(), "em");
}

/// Values added one by one: a field's first value fills its slot and marks it present, a
/// further different one waits in `more` (once), a repeat of either is dropped; the fields
/// present are the ones with a first value, also after the event is put in canonical order.
#[test]
fn added_values_fill_slots_then_more_and_mark_their_fields() {
    let digest = |byte: u8| UserValue::Digest(Digest([byte; 32]));
    let mut data = UserData::default();
    assert_eq!(data.present_set(), 0);
    data.add(CustomerField::Ph, digest(2));
    data.add(CustomerField::Em, digest(1));
    data.add(CustomerField::Em, digest(1));
    data.add(CustomerField::Em, digest(3));
    data.add(CustomerField::Em, digest(3));
    data.add(CustomerField::Ph, digest(2));
    assert_eq!(data.get(CustomerField::Em), Some(&digest(1)));
    assert_eq!(data.get(CustomerField::Ph), Some(&digest(2)));
    assert_eq!(data.more, vec![("em", digest(3))]);
    assert_eq!(
        data.present_set(),
        1 << CustomerField::Em.index() | 1 << CustomerField::Ph.index()
    );
    assert_eq!(data.match_keys(), "em,ph");
    let with = UserData::default()
        .with(CustomerField::Ph, digest(2))
        .with(CustomerField::Em, digest(1));
    assert_eq!(with.present_set(), data.present_set());
    let mut event = Event::purchase("o-1", 1_700_000_000, Decimal::ONE, "USD");
    event.user_data = data;
    let canonical = event
        .canonical()
        .expect("two emails: not canonical as it is");
    assert_eq!(
        canonical.user_data.present_set(),
        event.user_data.present_set()
    );
}
