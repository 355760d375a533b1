//! A dry run's "destination": the events a real run would send now, printed as NDJSON on
//! stdout in page order, and taken as accepted so that the run counts what a real run would.

use std::io::Write;

use crate::destination::{Delivery, DestinationError};
use crate::event::Event;

/// Prints one batch and answers as if the destination had accepted all of it in one request.
/// Fails only when stdout cannot be written (a closed pipe), as a destination `Setup` error.
pub(super) fn deliver(events: &[Event]) -> Result<Delivery, DestinationError> {
    print_events(events)
        .map(|()| Delivery::all_accepted(events.len(), None))
        .map_err(|error| DestinationError::Setup(error.into()))
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
