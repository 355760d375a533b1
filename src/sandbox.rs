//! A local stand-in for the Graph API's Conversions API endpoint. STUB: issue #4.
