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
//! # Layers
//!
//! Read the crate bottom up; each layer imports only the ones below it, and
//! no two modules import each other, directly or around a loop:
//!
//! ```text
//! main ─▶ app ─▶ cmd/            the stories: one subcommand each, short
//!                 │
//!                 ▼
//!        cli/                    clap and config.toml (cli/config.rs) → validated *Plans
//!                 │
//!                 ▼
//!        targets dispatch wait draw fetch collapse render report local doctor runs …
//!                 │               (stages: each imports model, error, aws,
//!                 ▼                and never another stage's insides)
//!        aws                     the seam: the only code that sees SDK types
//!                 │
//!                 ▼
//!        error, document, time   the run's errors and the embedded document
//!                 │
//!                 ▼
//!        model/                  the nouns, plain data with no I/O: InstanceId,
//!                                Host, Target, InvocationStatus, …
//! ```
//!
//! The rule "no import cycle" is checked by a test anyone can run (it needs
//! no emulator): `cargo test --test integration layers`. It names the loop
//! and the file and line of each import when one appears; the fix is
//! usually to move the shared type down into `model/`.
//!
//! `app` dispatches the subcommands to `cmd/`, one module each; `cmd/ssm.rs`
//! is a host's whole journey in one place. `local` replaces
//! targets…fetch with the same recorder script run on this machine;
//! `render` starts at `collapse`. `document` holds the embedded SSM
//! document that both run, `presign` the S3 POST policy hosts upload
//! through. `cli::config` fills the CLI's defaults from `config.toml`; `pprof`
//! writes the stacks that `render` draws as pprof profiles too.
//!
//! # Glossary
//!
//! - **record**: what the host does (`perf record` of the Node processes, by
//!   the document's script); **fetch**: download and verify its upload.
//! - **collapse**: `perf script` text → folded stacks (`Folded`: one line per
//!   distinct stack, with its weight). It reads bytes from any reader;
//!   `stacks` is what opens local files for it.
//! - **render**: folded stacks → files (SVG, `.folded`, pprof, heat map);
//!   pure, no AWS. **draw**: a *host's* journey after the wait, from its
//!   upload to its rendered files and its report row (`draw.rs` calls
//!   fetch, collapse and render in turn).
//! - **samples** vs **weight**: a sample is one stack `perf` caught; its
//!   weight is what it counts for in the flamegraph: 1 per sample
//!   (`Weight::Sample`, right for `cpu-clock` at a fixed rate) or the
//!   sample's period (`Weight::Period`, e.g. `cycles` in frequency mode).
//!   "N samples" in a title counts samples, the widths count weight.
//! - **run**: one `flamefire ssm`, named by its run id; its uploads live
//!   under `<prefix><run-id>/<instance-id>/` in the bucket.
//! - **outcome**: a host's row in the report: rendered, failed (with a
//!   cause and a next step), skipped or cancelled (`report::Status`).

pub mod app;
pub mod aws;
pub mod cli;
pub mod cmd;
pub mod collapse;
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
pub mod model;
pub mod pprof;
pub mod presign;
pub mod progress;
pub mod render;
pub mod report;
pub mod runs;
pub mod stacks;
pub mod targets;
pub mod time;
pub mod wait;
