//! The `meta` destination: Meta's Conversions API. STUB: issue #4.

use super::{Delivery, DestinationError};
use crate::config::Config;
use crate::event::Event;

/// Sends batches to `POST {base_url}/{api_version}/{dataset_id}/events`.
#[derive(Debug)]
pub struct MetaDestination {}

impl MetaDestination {
    /// Reads the token and builds the HTTP client.
    pub fn from_config(_config: &Config) -> Result<Self, DestinationError> {
        Err(DestinationError::Setup("the meta destination is not built yet".into()))
    }

    /// Delivers one batch.
    #[allow(clippy::unused_async)]
    pub async fn send(&self, _events: &[Event]) -> Result<Delivery, DestinationError> {
        Err(DestinationError::Setup("the meta destination is not built yet".into()))
    }

    /// Verifies the token and dataset.
    #[allow(clippy::unused_async)]
    pub async fn check(&self) -> Result<String, DestinationError> {
        Err(DestinationError::Setup("the meta destination is not built yet".into()))
    }
}
