//! The reason of an order with a value that is not text (`InvalidReason::NotText`): one stable
//! text per config key, naming it, so the ledger can group by it and it holds no value.

/// The stable reason text for a value of `key` (a dotted config key such as `mapping.email`)
/// that is neither UTF-8 nor `source.encoding`.
pub(super) fn not_text_reason(key: &str) -> &'static str {
    macro_rules! reasons {
        ($($key:literal),* $(,)?) => {
            match key {
                $($key => concat!(
                    "the column of ", $key, " holds bytes that are not valid UTF-8 \
                     (a SQL_ASCII database; set source.encoding, e.g. \"LATIN1\")"
                ),)*
                _ => "a column holds bytes that are not valid UTF-8 \
                      (a SQL_ASCII database; set source.encoding, e.g. \"LATIN1\")",
            }
        };
    }
    reasons!(
        "mapping.order_id",
        "mapping.event_time",
        "mapping.value",
        "mapping.currency",
        "mapping.email",
        "mapping.phone",
        "mapping.first_name",
        "mapping.last_name",
        "mapping.date_of_birth",
        "mapping.gender",
        "mapping.city",
        "mapping.state",
        "mapping.zip",
        "mapping.country",
        "mapping.external_id",
        "mapping.item_id",
        "mapping.item_quantity",
        "mapping.item_price",
        "mapping.store_id",
        "mapping.timezone",
        "mapping.data_processing_options",
        "mapping.data_processing_options_country",
        "mapping.data_processing_options_state",
        "mapping.opt_out",
        "mapping.delivery_category",
        "source.watermark_column",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CustomerField;

    #[test]
    fn every_customer_field_has_its_own_reason() {
        for field in CustomerField::ALL {
            let reason = not_text_reason(field.config_key());
            assert!(reason.contains(field.config_key()), "{reason}");
        }
    }
}
