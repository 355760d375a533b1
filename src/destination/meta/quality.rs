//! The Dataset Quality API call (docs/meta-capi.md §7):
//! `GET {base_url}/{api_version}/dataset_quality?dataset_id=…&fields=offline`, through the
//! destination's client, retries and error type. The token travels in the `Authorization`
//! header, never in the URL. Reading the scores out of the answer is `crate::quality`'s job.

use serde_json::Value;

use super::MetaDestination;
use crate::destination::DestinationError;

impl MetaDestination {
    /// The Dataset Quality API's answer for the dataset's offline events, as JSON (its nesting
    /// is not pinned down by Meta's docs, so it is read leniently by the caller).
    ///
    /// # Errors
    /// As [`MetaDestination::check`]: a typed [`DestinationError`] after the same retries.
    pub(crate) async fn dataset_quality(&self) -> Result<Value, DestinationError> {
        let inner = &*self.inner;
        let url = format!("{}/dataset_quality", inner.version_url);
        let query = [
            ("dataset_id", inner.advice.dataset_id.as_str()),
            ("fields", "offline"),
        ];
        inner.get(&url, &query, "dataset quality").await
    }
}
