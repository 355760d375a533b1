//! The `print` destination of a dry run: the events a real run would send now, printed as
//! NDJSON on stdout in page order, and taken as accepted so that the run counts what a real
//! run would. It is chosen by the run's mode (`ocapi run --dry-run`), never by the config.

use std::io::Write;

use super::{Delivery, DestinationError};
use crate::event::Event;

/// Prints events on stdout.
#[derive(Debug, Default)]
pub struct PrintDestination;

impl PrintDestination {
    /// Prints one batch and answers as if the destination had accepted all of it in one
    /// request. Fails only when stdout cannot be written (a closed pipe).
    pub(crate) fn send(&self, events: &[Event]) -> Result<Delivery, DestinationError> {
        print_events(events)
            .map(|()| Delivery::all_accepted(events.len(), None))
            .map_err(DestinationError::Print)
    }
}

/// Prints events as NDJSON on stdout, one line each, flushed at the end of the batch.
fn print_events(events: &[Event]) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for event in events {
        serde_json::to_writer(&mut out, event).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
