//! The column names `ocapi init` recognises for each `[mapping]` key and for a watermark, as
//! point-of-sale exports, CRMs and warehouse models name them.

/// Names each `[mapping]` key is recognised by, most likely first, in the order keys are
/// placed (a column goes to the first key that takes it). Matched on the lower-cased name,
/// and for customer fields also after a `customer_`/`cust_`/`billing_`/`buyer_` prefix.
pub(super) const NAMES: &[(&str, &[&str])] = &[
    (
        "order_id",
        &[
            "order_id",
            "receipt_id",
            "receipt_no",
            "receipt_number",
            "transaction_id",
            "txn_id",
            "ticket_id",
            "sale_id",
            "invoice_id",
            "order_no",
            "order_number",
            "receipt",
            "bon_id",
        ],
    ),
    (
        "event_time",
        &[
            "sold_at",
            "purchased_at",
            "purchase_time",
            "order_time",
            "transaction_time",
            "sale_time",
            "event_time",
            "ordered_at",
            "transaction_at",
            "booked_at",
            "purchase_date",
            "order_date",
            "sale_date",
            "transaction_date",
            "created_at",
        ],
    ),
    (
        "store_id",
        &[
            "store_id",
            "store",
            "shop_id",
            "location_id",
            "branch_id",
            "store_code",
            "store_no",
        ],
    ),
    (
        "timezone",
        &[
            "time_zone",
            "timezone",
            "tz",
            "store_tz",
            "store_time_zone",
            "store_timezone",
        ],
    ),
    (
        "value",
        &[
            "total",
            "order_total",
            "total_amount",
            "amount",
            "grand_total",
            "value",
            "net_total",
            "gross_total",
            "sales_amount",
            "revenue",
        ],
    ),
    (
        "currency",
        &["currency", "currency_code", "iso_currency", "curr"],
    ),
    (
        "item_id",
        &[
            "sku",
            "item_id",
            "product_id",
            "article_id",
            "item_code",
            "product_code",
            "ean",
            "gtin",
            "upc",
        ],
    ),
    (
        "item_quantity",
        &["qty", "quantity", "item_quantity", "item_qty", "units"],
    ),
    (
        "item_price",
        &[
            "unit_price",
            "item_price",
            "price",
            "price_each",
            "unit_amount",
        ],
    ),
    (
        "item_line",
        &[
            "line_no",
            "line_number",
            "line_id",
            "line_nr",
            "position",
            "line",
        ],
    ),
    ("email", &["email", "email_address", "e_mail", "mail"]),
    (
        "phone",
        &[
            "phone",
            "phone_number",
            "mobile",
            "mobile_phone",
            "telephone",
            "tel",
            "cell",
            "msisdn",
        ],
    ),
    (
        "first_name",
        &["first_name", "firstname", "given_name", "fname", "forename"],
    ),
    (
        "last_name",
        &["last_name", "lastname", "surname", "family_name", "lname"],
    ),
    ("city", &["city", "town", "locality"]),
    ("state", &["state", "state_code", "province", "region"]),
    (
        "zip",
        &[
            "zip",
            "zip_code",
            "postal_code",
            "postcode",
            "post_code",
            "plz",
        ],
    ),
    ("country", &["country", "country_code", "country_iso"]),
    ("gender", &["gender", "sex"]),
    (
        "date_of_birth",
        &[
            "date_of_birth",
            "birth_date",
            "birthdate",
            "dob",
            "birthday",
        ],
    ),
    (
        "external_id",
        &[
            "external_id",
            "loyalty_id",
            "loyalty_card",
            "member_id",
            "membership_id",
            "loyalty_number",
            "card_number",
        ],
    ),
    (
        "data_processing_options",
        &["data_processing_options", "dpo", "ldu"],
    ),
    ("opt_out", &["opt_out", "attribution_only"]),
    ("delivery_category", &["delivery_category"]),
];

/// Names of a column that grows whenever a row is written, most likely first.
pub(super) const WATERMARK_NAMES: &[&str] = &[
    "updated_at",
    "modified_at",
    "last_modified",
    "last_modified_at",
    "changed_at",
    "last_updated",
    "updated_on",
    "modified_on",
    "updated",
    "modified",
    "row_updated_at",
    "_updated_at",
    "_loaded_at",
    "loaded_at",
    "ingested_at",
];

/// Prefixes a customer field's column may carry.
pub(super) const CUSTOMER_PREFIXES: &[&str] =
    &["customer_", "cust_", "billing_", "buyer_", "client_"];

/// Keys that are customer fields (a prefix like `customer_` may precede their names).
pub(super) const CUSTOMER_KEYS: &[&str] = &[
    "email",
    "phone",
    "first_name",
    "last_name",
    "city",
    "state",
    "zip",
    "country",
    "gender",
    "date_of_birth",
    "external_id",
];
