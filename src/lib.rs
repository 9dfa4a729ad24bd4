//! flamefire: why is this server on fire?
//!
//! A run is a pipeline that hosts flow through one by one, and the modules
//! read in its order:
//!
//! ```text
//! cli ─▶ targets ─▶ dispatch ─▶ wait ─(each host as it ends)─▶ draw: fetch ─▶ collapse ─▶ render ─▶ report
//!          │            │         │                                  │
//!          └────────────┴─ aws (the only code that touches the AWS SDK) ─┘
//! ```
//!
//! `app` dispatches the subcommands to `cmd/`, one module each; `cmd/ssm.rs`
//! is a host's whole journey in one place. `local` replaces
//! targets…fetch with the same recorder script run on this machine;
//! `render` starts at `collapse`. `document` holds the embedded SSM
//! document that both run, `presign` the S3 POST policy hosts upload
//! through. `config` fills the CLI's defaults from `config.toml`; `pprof`
//! writes the stacks that `render` draws as pprof profiles too; `status`
//! is SSM's word on a host, shared by `wait` and `progress`.

pub mod app;
pub mod aws;
pub mod cli;
pub mod cmd;
pub mod collapse;
pub mod config;
pub mod diff;
pub mod dispatch;
pub mod doctor;
pub mod document;
pub mod draw;
pub mod error;
pub mod fetch;
pub mod heatmap;
pub mod html;
pub mod local;
pub mod pprof;
pub mod presign;
pub mod progress;
pub mod render;
pub mod report;
pub mod runs;
pub mod status;
pub mod targets;
pub mod time;
pub mod wait;
