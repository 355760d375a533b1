//! The `file` destination: appends each event as one NDJSON line, exactly the JSON object that
//! would be sent to Meta. Useful to inspect events before pointing ocapi at Meta.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Delivery, DestinationError};
use crate::config::Config;
use crate::event::Event;

/// Appends events to an NDJSON file.
#[derive(Debug)]
pub struct FileDestination {
    /// The output path.
    path: PathBuf,
    /// Serializes writers so that lines of concurrent batches never interleave.
    lock: Mutex<()>,
}

impl FileDestination {
    /// Uses `destination.path`.
    pub(crate) fn from_config(config: &Config) -> Result<Self, DestinationError> {
        let path = config.destination.path.clone().ok_or_else(|| {
            DestinationError::Invalid("destination.path is required for kind = \"file\"".to_owned())
        })?;
        Ok(Self {
            path,
            lock: Mutex::new(()),
        })
    }

    /// Appends the batch, one event per line, flushed before returning.
    #[allow(clippy::unused_async)]
    pub(crate) async fn send(&self, events: &[Event]) -> Result<Delivery, DestinationError> {
        let mut buffer = Vec::with_capacity(events.len() * 512);
        for event in events {
            serde_json::to_writer(&mut buffer, event).expect("an Event always serializes");
            buffer.push(b'\n');
        }
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let io = |source| DestinationError::File {
            path: self.path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(&buffer).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Delivery::all_accepted(events.len(), None))
    }

    /// Says where events will be written.
    pub(crate) fn check(&self) -> Result<String, DestinationError> {
        Ok(format!(
            "file destination: events are appended to {}",
            self.path.display()
        ))
    }
}
