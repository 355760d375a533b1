//! Retry mechanics (counting, capped exponential delay with jitter); classification lives with
//! each destination. STUB: issue #4.
