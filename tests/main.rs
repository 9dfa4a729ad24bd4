//! flamefire's integration tests: one binary (ripgrep's layout).
//!
//! Needs perf, node and the emulator: run `scripts/test.sh`, which installs
//! and starts them. A missing tool fails a test with that hint; nothing skips.

mod account;
mod agent;
mod agent_contract;
mod cancel;
mod cli;
mod clock;
mod config;
mod corpus;
mod credentials;
mod diff;
mod doctor;
mod fleet;
mod golden;
mod host_on_fire;
mod hostile_files;
mod iam;
mod layers;
mod local;
mod manuals;
mod on_fire;
mod patterns;
mod perf_discovery;
mod pprof;
mod presign;
mod report;
mod restart;
mod security;
mod shells;
mod ssm;
mod strict;
mod support;
mod timeslice;
mod truncation;
