//! Command-line arguments (clap) → validated plans.
//!
//! Each `*Args` turns into a plain `*Plan`; nothing past `cli/` imports
//! clap. Every value that ends up in the SSM document is checked against the
//! document's own `allowedPattern` here, before any process or AWS call.
//!
//! By concern: `aws.rs` (the AWS flags every AWS command flattens, and the
//! bucket), `target.rs` (which instances), `record.rs` (`local`, `ssm`),
//! `render.rs` (`render`, `diff`, the fold and window flags), `admin.rs`
//! (`doctor`, `runs`, `fetch`, `document deploy`), `checks.rs` (resource
//! names), `manuals.rs` (completions, man pages), and `config.rs` (the
//! config file's defaults under all of them).

mod admin;
mod aws;
mod checks;
pub mod config;
mod manuals;
mod origins;
mod record;
mod render;
mod target;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use admin::{DeployArgs, DeployPlan, DoctorArgs, DoctorPlan, FetchArgs, FetchPlan, RunsArgs};
pub use aws::{AwsArgs, BucketArgs, BucketPlan};
pub use checks::check_document_name;
pub(crate) use checks::{check_bucket_name, normalise_prefix};
pub use manuals::{completions, man_page, man_pages};
pub use record::{LocalArgs, LocalPlan, RecordArgs, RecordPlan, SsmArgs, SsmPlan, new_run_id};
pub use render::{
    DiffArgs, DiffInput, DiffPlan, FoldArgs, FoldPlan, RenderArgs, RenderPlan, WeightArg,
    WindowArgs,
};
pub use target::TargetArgs;

const EXIT_CODES: &str = "\
Exit codes:
  0    every host (or the local run) produced a flamegraph
  1    partial: some hosts failed, the others were rendered
  2    nothing usable: bad arguments, no targets, every host failed, auth or config errors
  130  interrupted by Ctrl-C (remote commands are cancelled first)";

/// Why is this server on fire? CPU flamegraphs of Node.js processes.
///
/// flamefire records every Node.js process with `perf` (on this machine, or on
/// EC2 instances through SSM Run Command, no SSH) and renders the flamegraphs
/// locally. Results (paths, or --json) go to stdout; progress goes to stderr.
#[derive(Debug, Parser)]
#[command(name = "flamefire", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr (-v: debug, -vv: trace, including AWS requests).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Plain lines instead of progress bars, and no summary table.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Defaults for --bucket, --prefix, --region, --profile, --document,
    /// --duration, --frequency [default: $XDG_CONFIG_HOME/flamefire/config.toml,
    /// else ~/.config/flamefire/config.toml, if it exists].
    #[arg(long, global = true, env = "FLAMEFIRE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Use the config file's [env.NAME] section over its top level.
    #[arg(
        long = "env",
        global = true,
        env = "FLAMEFIRE_ENV",
        value_name = "NAME"
    )]
    pub env: Option<String>,

    /// Where each setting came from: filled by `config::parse`.
    #[arg(skip)]
    pub settings: config::Origins,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Profile Node.js processes on this machine (no AWS needed).
    ///
    /// Runs the same recorder script that `ssm` sends to instances, then
    /// renders. Needs root (or perf_event_paranoid ≤ 1). Try `--demo` first: it
    /// starts a small Node cluster with perf maps on and profiles it.
    #[command(after_help = EXIT_CODES)]
    Local(LocalArgs),

    /// Render `perf script` output or folded stacks into flamegraphs.
    ///
    /// Each FILE (plain or .gz) gives an SVG and a .folded file; several give a
    /// merged SVG too, with each file's name as the root frame.
    #[command(after_help = EXIT_CODES)]
    Render(RenderArgs),

    /// Compare two profiles: a differential flamegraph of AFTER against BEFORE.
    ///
    /// Typically BEFORE is a healthy host and AFTER the one on fire:
    ///   flamefire diff healthy.perf.gz sick.perf.gz
    ///
    /// Writes diff.svg (AFTER's flamegraph, red where a function's share of
    /// samples grew, blue where it shrank), diff-negated.svg (BEFORE's
    /// flamegraph with the same colours, so that what vanished shows),
    /// before.svg, after.svg and report.html. Both profiles are normalised by
    /// sample count. The functions whose share changed the most go to stderr;
    /// the SVG paths (or --json) to stdout.
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Diff(DiffArgs),

    /// Profile EC2 instances through SSM Run Command; render locally.
    ///
    /// Examples:
    ///   flamefire ssm i-0abc                         # one host
    ///   flamefire ssm i-0abc i-0def --duration 20    # several hosts
    ///   flamefire ssm --tag Role=api --tag Env=prod  # all instances with these tags
    ///   flamefire ssm --asg checkout-asg             # a whole autoscaling group
    ///   flamefire ssm i-sick --baseline i-healthy    # compare: diff.svg and the top changes
    ///   flamefire ssm --tag Role=api --baseline-tag Role=api-canary
    ///
    /// Hosts upload their stacks to --bucket through a presigned POST signed
    /// with your credentials, so instance roles need no S3 permission.
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Ssm(Box<SsmArgs>),

    /// Pre-flight checks: credentials, region, bucket, document, and targets.
    ///
    /// Each check prints ✔, ! (warning) or ✖ with the next step. Exit code 0
    /// when all is well, 1 with warnings (e.g. a drifted document), 2 when
    /// something blocks a run.
    ///   flamefire doctor --bucket my-bucket --tag Role=api
    #[command(verbatim_doc_comment)]
    Doctor(DoctorArgs),

    /// List past runs in the bucket, newest first.
    Runs(RunsArgs),

    /// Download a past run from the bucket and render it again (no profiling).
    #[command(after_help = EXIT_CODES)]
    Fetch(FetchArgs),

    /// Print or deploy the embedded SSM document (for teams without Terraform).
    #[command(subcommand)]
    Document(DocumentCommand),

    /// Print a shell completion script on stdout.
    ///
    ///   flamefire completions bash > ~/.local/share/bash-completion/completions/flamefire
    ///   flamefire completions zsh > ~/.zfunc/_flamefire    # with fpath+=~/.zfunc
    ///   flamefire completions fish > ~/.config/fish/completions/flamefire.fish
    #[command(verbatim_doc_comment)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) on stdout, or write one page per subcommand.
    ///
    ///   flamefire man | man -l -
    ///   flamefire man --dir ~/.local/share/man/man1    # then: man flamefire-ssm
    #[command(verbatim_doc_comment)]
    Man {
        /// Write flamefire.1 and flamefire-SUBCOMMAND.1 here instead; print their paths.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// Write the embedded document (YAML) to stdout.
    Print,
    /// Create the document in SSM, or add a version and make it the default.
    Deploy(DeployArgs),
}
