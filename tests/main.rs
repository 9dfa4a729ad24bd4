//! flamefire's integration tests: one binary (ripgrep's layout).
//!
//! Needs perf, node and the emulator: run `scripts/test.sh`, which installs
//! and starts them. A missing tool fails a test with that hint; nothing skips.

mod account;
mod cli;
mod diff;
mod doctor;
mod golden;
mod iam;
mod local;
mod presign;
mod report;
mod security;
mod ssm;
mod support;
mod timeslice;
