//! error: being written.
pub use std::io::Error;
