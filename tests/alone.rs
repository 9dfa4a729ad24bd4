//! Tests that would disturb every other perf run on the machine while they
//! run, in a binary of their own: cargo runs test binaries one after
//! another, so no other test records meanwhile.
//!
//! A Node process whose perf map perf finds to be a FIFO, where the
//! script's screening cannot see it, blocks `perf script` of *any* run that
//! sampled it (the script's watchdog then stops that run). Beside the
//! integration tests it failed their runs at random.

// The shared fixtures, of which this binary uses a few.
#[allow(dead_code)]
mod agent;
#[allow(dead_code)]
mod support;

#[path = "alone/blocked_map.rs"]
mod blocked_map;
