//! Command-line arguments (clap) → validated plans.
//!
//! Each `*Args` turns into a plain `*Plan`; nothing past this file imports
//! clap. Every value that ends up in the SSM document is checked against the
//! document's own `allowedPattern` here, before any process or AWS call.

pub mod config;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::collapse::{Select, Weight, Window};
use crate::document::{self, Pids, RecordParams};
use crate::error::{Error, Result};
use crate::model::{InstanceId, Target};

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

/// Which instances: shared by `ssm` (required) and `doctor` (optional).
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Instance ids (i-0123456789abcdef0).
    #[arg(value_name = "INSTANCE_ID")]
    pub instances: Vec<String>,

    /// Every running instance with this tag (KEY=VALUE, repeatable: all must match).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,

    /// Every running instance of this autoscaling group.
    #[arg(long, value_name = "NAME", conflicts_with = "tag")]
    pub asg: Option<String>,

    /// The tag an instance needs before flamefire may profile it (the
    /// Terraform module's `instance_opt_in_tag`). Instances chosen by --tag
    /// or --asg without it are skipped before anything is sent. An empty
    /// value turns the check off (for IAM set up without the module).
    #[arg(
        long,
        env = "FLAMEFIRE_OPT_IN_TAG",
        default_value = "flamefire=enabled",
        value_name = "KEY=VALUE"
    )]
    pub opt_in_tag: String,
}

impl TargetArgs {
    /// Instance ids, `--tag`s or `--asg`: at most one kind; `None` when none is given.
    fn parse(&self) -> Result<Option<Target>> {
        parse_target(&self.instances, &self.tag, self.asg.as_deref())
    }

    /// `--opt-in-tag`: `None` when turned off with an empty value.
    fn opt_in(&self) -> Result<Option<(String, String)>> {
        if self.opt_in_tag.is_empty() {
            return Ok(None);
        }
        let mut tags = parse_tags(std::slice::from_ref(&self.opt_in_tag), "--opt-in-tag")?;
        Ok(tags.pop())
    }
}

/// Where a run's results live: shared by `ssm`, `diff`, `doctor`, `runs` and `fetch`.
#[derive(Debug, Args, Clone)]
pub struct BucketArgs {
    /// S3 bucket that hosts upload their stacks to.
    #[arg(long, env = "FLAMEFIRE_BUCKET", value_name = "BUCKET")]
    pub bucket: Option<String>,

    /// Key prefix in the bucket; runs go under <prefix><run-id>/ (terraform
    /// output `prefix`; the on-call role may write under it only).
    #[arg(
        long,
        env = "FLAMEFIRE_PREFIX",
        default_value = "flamefire/",
        value_name = "PREFIX"
    )]
    pub prefix: String,

    /// AWS region (default: the standard chain: AWS_REGION, profile, …).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile (default: the standard chain: AWS_PROFILE, …).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// The MFA code, for a profile with `mfa_serial` (as the Terraform
    /// module's). Without it flamefire asks on the terminal; the session is
    /// then cached until it expires.
    #[arg(long, value_name = "CODE")]
    pub mfa_code: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Name of the SSM document to check.
    #[arg(long, default_value = document::DEFAULT_NAME, value_name = "NAME")]
    pub document: String,

    /// Also ask the hosts: send them the document with Probe=true, which
    /// records nothing. Each host makes every check a run makes before it
    /// records, POSTs a small object to the bucket exactly as its upload
    /// would (its own network, VPC endpoint and bucket policy), finds perf
    /// (or which package a run would install) and records its CPUs for one
    /// second to see whether the kernel lets perf in. Costs one SendCommand
    /// per 50 hosts and a few seconds on each.
    #[arg(long)]
    pub probe: bool,

    /// With --probe: the executable to look for, as `ssm --process`.
    #[arg(
        long = "process",
        default_value = "node",
        value_name = "NAME",
        requires = "probe"
    )]
    pub process: String,

    /// With --probe: as `ssm --no-install` (perf missing is then an error).
    #[arg(long, requires = "probe")]
    pub no_install: bool,

    /// With --probe: seconds to wait for the hosts' answers; hosts still
    /// open then are cancelled and reported.
    #[arg(
        long,
        default_value_t = 120,
        value_name = "SECONDS",
        requires = "probe",
        value_parser = clap::value_parser!(u64).range(30..=3600)
    )]
    pub probe_timeout: u64,

    #[command(flatten)]
    pub bucket: BucketArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub bucket: BucketArgs,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The run to download (see `flamefire runs`).
    #[arg(value_name = "RUN_ID")]
    pub run_id: String,

    /// Directory for the results. Default: ./flamefire-<run-id>/
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Open the report in the browser when done.
    #[arg(long)]
    pub open: bool,

    /// Print a JSON document on stdout instead of paths.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub fold: FoldArgs,

    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// A validated bucket location.
#[derive(Debug, Clone)]
pub struct BucketPlan {
    pub bucket: String,
    pub prefix: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub mfa_code: Option<String>,
}

impl BucketArgs {
    pub fn plan(&self) -> Result<BucketPlan> {
        let bucket = self.bucket.clone().ok_or_else(|| {
            Error::Usage(
                "no bucket: pass --bucket or set FLAMEFIRE_BUCKET (terraform output `bucket_name`)"
                    .into(),
            )
        })?;
        check_bucket_name(&bucket)?;
        Ok(BucketPlan {
            bucket,
            prefix: normalise_prefix(&self.prefix)?,
            region: self.region.clone(),
            profile: self.profile.clone(),
            mfa_code: self.mfa_code.clone(),
        })
    }
}

#[derive(Debug)]
pub struct DoctorPlan {
    pub checks: crate::doctor::DoctorPlan,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub mfa_code: Option<String>,
}

impl DoctorArgs {
    /// `--probe`'s plan, its flags checked against the document.
    fn probe_plan(&self) -> Result<Option<crate::doctor::ProbePlan>> {
        if !self.probe {
            return Ok(None);
        }
        document::embedded()?.check("ProcessName", &self.process, "--process")?;
        Ok(Some(crate::doctor::ProbePlan {
            run_id: format!(
                "{}{}",
                crate::model::PROBE_RUN_PREFIX,
                new_run_id(std::time::SystemTime::now())
            ),
            process_name: self.process.clone(),
            no_install: self.no_install,
            timeout: std::time::Duration::from_secs(self.probe_timeout),
        }))
    }

    pub fn plan(&self) -> Result<DoctorPlan> {
        check_document_name(&self.document)?;
        let bucket = match &self.bucket.bucket {
            Some(b) => {
                check_bucket_name(b)?;
                Some(b.clone())
            }
            None => None,
        };
        Ok(DoctorPlan {
            checks: crate::doctor::DoctorPlan {
                bucket,
                prefix: normalise_prefix(&self.bucket.prefix)?,
                document: self.document.clone(),
                target: self.target.parse()?,
                opt_in: self.target.opt_in()?,
                probe: self.probe_plan()?,
            },
            region: self.bucket.region.clone(),
            profile: self.bucket.profile.clone(),
            mfa_code: self.bucket.mfa_code.clone(),
        })
    }
}

#[derive(Debug)]
pub struct FetchPlan {
    pub run_id: String,
    pub fold: FoldPlan,
    pub location: BucketPlan,
    pub out: PathBuf,
    pub open: bool,
    pub json: bool,
}

impl FetchArgs {
    pub fn plan(&self) -> Result<FetchPlan> {
        document::embedded()?.check("RunId", &self.run_id, "RUN_ID")?;
        Ok(FetchPlan {
            run_id: self.run_id.clone(),
            fold: self.fold.plan()?,
            location: self.bucket.plan()?,
            out: self
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("flamefire-{}", self.run_id))),
            open: self.open,
            json: self.json,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// Write the embedded document (YAML) to stdout.
    Print,
    /// Create the document in SSM, or add a version and make it the default.
    Deploy(DeployArgs),
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Name to deploy the document under.
    #[arg(long, default_value = document::DEFAULT_NAME, value_name = "NAME")]
    pub document: String,

    /// AWS region (default: the standard chain).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile (default: the standard chain).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// The MFA code, for a profile with `mfa_serial` (see `ssm --help`).
    #[arg(long, value_name = "CODE")]
    pub mfa_code: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct RecordArgs {
    /// Seconds to record (1–300).
    #[arg(short, long, default_value_t = 30, value_name = "SECONDS")]
    pub duration: u32,

    /// Sampling frequency in Hz (1–999). 99 avoids lockstep with timers.
    #[arg(short = 'F', long, default_value_t = 99, value_name = "HZ")]
    pub frequency: u32,

    /// Record only this process id (repeatable, up to 64). Default: every
    /// process whose executable is --process.
    #[arg(short, long = "pid", value_name = "PID")]
    pub pid: Vec<String>,

    /// Executable name to select when no --pid is given (`node` also matches `nodejs`).
    #[arg(long = "process", default_value = "node", value_name = "NAME")]
    pub process: String,

    /// Directory for the results (SVGs, report.html). Default: ./flamefire-<run-id>/
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Open report.html in the browser when done.
    #[arg(long)]
    pub open: bool,

    /// Print a JSON document on stdout instead of paths.
    #[arg(long)]
    pub json: bool,

    /// Never install perf on the host: fail with the package to install instead
    /// (for teams that forbid package installs from Run Command).
    #[arg(long)]
    pub no_install: bool,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    #[command(flatten)]
    pub record: RecordArgs,

    /// Start the bundled demo Node cluster (two workers with a hot HTML
    /// tokenizer, perf maps on), profile it, then stop it.
    #[arg(long, conflicts_with = "pid")]
    pub demo: bool,

    #[command(flatten)]
    pub fold: FoldArgs,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// `perf script` output (plain or .gz) or folded stacks.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Directory for the SVGs and report.html. Default: the current directory.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    #[command(flatten)]
    pub window: WindowArgs,

    #[command(flatten)]
    pub fold: FoldArgs,

    /// Open report.html in the browser when done.
    #[arg(long)]
    pub open: bool,
}

/// A time window, in seconds from each input's first sample (read the
/// seconds off report.html's time slices). Needs `perf script` input.
#[derive(Debug, Args, Clone, Default)]
pub struct WindowArgs {
    /// Draw only the samples from this many seconds after the first one.
    #[arg(long, value_name = "SECONDS")]
    pub from: Option<f64>,

    /// Draw only the samples before this many seconds after the first one.
    #[arg(long, value_name = "SECONDS")]
    pub to: Option<f64>,
}

/// Which samples to fold and what each weighs: shared by `render`, `diff`,
/// `local` and `fetch`.
#[derive(Debug, Args, Clone, Default)]
pub struct FoldArgs {
    /// Fold this event type (`cycles`, `cycles:u`, `page-faults`,
    /// `sched:sched_switch`) when the input holds several. Default: the
    /// input's first event type; the report says which was folded.
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,

    /// What one sample counts: `sample` (1 each; right for cpu-clock at a
    /// fixed frequency) or `period` (its period, as `perf report` weighs
    /// `cycles` recorded in frequency mode).
    #[arg(long, value_enum, default_value_t = WeightArg::Sample, value_name = "WEIGHT")]
    pub weight: WeightArg,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightArg {
    #[default]
    Sample,
    Period,
}

/// Validated `--event` and `--weight`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoldPlan {
    pub event: Option<String>,
    pub weight: Weight,
}

impl FoldPlan {
    /// What `collapse` folds, within `window`.
    pub fn select(&self, window: Window) -> Select {
        Select {
            window,
            event: self.event.clone(),
            weight: self.weight,
        }
    }
}

impl FoldArgs {
    fn plan(&self) -> Result<FoldPlan> {
        if let Some(event) = &self.event {
            if event.is_empty() || event.contains(char::is_whitespace) {
                return Err(Error::Usage(format!(
                    "--event {event:?} is not an event name: give one as perf prints it, e.g. --event cycles or --event sched:sched_switch"
                )));
            }
        }
        Ok(FoldPlan {
            event: self.event.clone(),
            weight: match self.weight {
                WeightArg::Sample => Weight::Sample,
                WeightArg::Period => Weight::Period,
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The reference profile (e.g. the healthy host): `perf script` output
    /// (plain or .gz), folded stacks, or RUN_ID/INSTANCE_ID of a past run.
    #[arg(value_name = "BEFORE")]
    pub before: PathBuf,

    /// The profile to explain (e.g. the host on fire), same formats.
    #[arg(value_name = "AFTER")]
    pub after: PathBuf,

    /// Directory for the SVGs and report.html. Default: the current directory.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    #[command(flatten)]
    pub window: WindowArgs,

    #[command(flatten)]
    pub fold: FoldArgs,

    /// Open report.html in the browser when done.
    #[arg(long)]
    pub open: bool,

    /// Print a JSON document on stdout instead of paths.
    #[arg(long)]
    pub json: bool,

    /// Where past runs live, for RUN_ID/INSTANCE_ID inputs.
    #[command(flatten)]
    pub bucket: BucketArgs,
}

#[derive(Debug, Args)]
pub struct SsmArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// A healthy instance to compare with (repeatable). It is profiled in
    /// the same window, and diff.svg shows the targets against it.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub baseline: Vec<String>,

    /// Every running instance with this tag is a baseline (KEY=VALUE,
    /// repeatable: all must match).
    #[arg(long, value_name = "KEY=VALUE", conflicts_with = "baseline")]
    pub baseline_tag: Vec<String>,

    /// Name of the SSM document (deployed by terraform/ or `flamefire document deploy`).
    #[arg(long, default_value = document::DEFAULT_NAME, value_name = "NAME")]
    pub document: String,

    /// Give up on hosts that have not finished this many seconds after recording ends.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,

    // --bucket, --prefix, --region, --profile, as for the other bucket commands.
    #[command(flatten)]
    pub location: BucketArgs,

    #[command(flatten)]
    pub record: RecordArgs,
}

/// How the recording is parameterised, whatever runs it.
#[derive(Debug, Clone)]
pub struct RecordPlan {
    pub params: RecordParams,
    pub out: PathBuf,
    pub open: bool,
    pub json: bool,
}

#[derive(Debug)]
pub struct LocalPlan {
    pub record: RecordPlan,
    pub fold: FoldPlan,
    pub demo: bool,
}

#[derive(Debug)]
pub struct RenderPlan {
    pub files: Vec<PathBuf>,
    pub out: PathBuf,
    pub window: Window,
    pub fold: FoldPlan,
    pub open: bool,
}

/// One side of a diff.
///
/// One side of a diff: a local file, or a host of a past run in the bucket.
/// `app::resolve_input` is the one place that turns an input into stacks.
#[derive(Debug, Clone, PartialEq)]
pub enum DiffInput {
    /// `perf script` output (plain or gzip) or folded stacks.
    File(PathBuf),
    /// `RUN_ID/i-0abc`: that host's stacks from a past run (see `flamefire runs`).
    Run {
        run_id: String,
        instance: InstanceId,
    },
}

impl DiffInput {
    /// An existing file wins; otherwise `RUN_ID/INSTANCE_ID` names a past run's host.
    pub fn parse(raw: &std::path::Path) -> DiffInput {
        if !raw.exists() {
            if let Some((run, id)) = raw.to_str().and_then(|s| s.split_once('/')) {
                let run_ok = document::embedded().is_ok_and(|d| d.check("RunId", run, "").is_ok());
                if let (true, Some(instance)) = (run_ok, InstanceId::parse(id)) {
                    return DiffInput::Run {
                        run_id: run.to_string(),
                        instance,
                    };
                }
            }
        }
        DiffInput::File(raw.to_path_buf())
    }
}

impl std::fmt::Display for DiffInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiffInput::File(path) => write!(f, "{}", path.display()),
            DiffInput::Run { run_id, instance } => write!(f, "{run_id}/{instance}"),
        }
    }
}

#[derive(Debug)]
pub struct DiffPlan {
    pub before: DiffInput,
    pub after: DiffInput,
    /// The bucket, when an input is a past run's host.
    pub location: Option<BucketPlan>,
    pub out: PathBuf,
    pub window: Window,
    pub fold: FoldPlan,
    pub open: bool,
    pub json: bool,
}

#[derive(Debug)]
pub struct SsmPlan {
    pub target: Target,
    /// The opt-in tag instances chosen by tag or group must carry.
    pub opt_in: crate::targets::OptIn,
    /// Healthy hosts to compare the targets with, profiled in the same run.
    pub baseline: Option<Target>,
    pub bucket: String,
    pub prefix: String,
    pub document: String,
    pub timeout: Duration,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub mfa_code: Option<String>,
    pub record: RecordPlan,
}

/// `flamefire completions SHELL`: generated from the same definitions as `--help`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "flamefire", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `flamefire man`: flamefire(1) in roff, listing every subcommand.
pub fn man_page() -> String {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .expect("rendering to memory does not fail");
    String::from_utf8_lossy(&out).into_owned()
}

/// `flamefire man --dir DIR`: flamefire.1 and one `flamefire-SUB.1` per
/// subcommand (nested ones too, e.g. flamefire-document-deploy.1).
pub fn man_pages(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = Vec::new();
    write_man_pages(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_man_pages(
    cmd: &clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut out = Vec::new();
    man.render(&mut out)
        .expect("rendering to memory does not fail");
    std::fs::write(&path, out).map_err(|e| Error::io("write", &path, e))?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_man_pages(sub, dir, written)?;
    }
    Ok(())
}

/// A fresh run id: sortable by time, unique enough across engineers.
pub fn new_run_id(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let stamp = crate::time::compact_utc(since.as_secs());
    // Low bits of the clock and the pid: two runs in the same second differ.
    let salt = (since.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{stamp}-{salt:04x}")
}

impl RecordArgs {
    fn plan(&self, run_id: String) -> Result<RecordPlan> {
        let doc = document::embedded()?;
        let pids = if self.pid.is_empty() {
            Pids::All
        } else {
            if self.pid.len() > 64 {
                return Err(Error::Usage(format!(
                    "--pid was given {} times; at most 64 processes can be recorded at once",
                    self.pid.len()
                )));
            }
            let mut pids = Vec::new();
            for p in &self.pid {
                doc.check("Pids", p, "--pid")?;
                pids.push(p.parse().map_err(|_| {
                    Error::Usage(format!(
                        "--pid {p:?} is not a process id (expected a number)"
                    ))
                })?);
            }
            Pids::Listed(pids)
        };
        let params = RecordParams {
            duration_s: self.duration,
            frequency_hz: self.frequency,
            pids,
            process_name: self.process.clone(),
            start_at: 0,
            run_id: run_id.clone(),
            upload: None,
            no_install: self.no_install,
            probe: false,
        };
        params.validate(doc)?;
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("flamefire-{run_id}")));
        Ok(RecordPlan {
            params,
            out,
            open: self.open,
            json: self.json,
        })
    }
}

impl LocalArgs {
    pub fn plan(&self, run_id: String) -> Result<LocalPlan> {
        Ok(LocalPlan {
            record: self.record.plan(run_id)?,
            fold: self.fold.plan()?,
            demo: self.demo,
        })
    }
}

impl RenderArgs {
    pub fn plan(&self) -> Result<RenderPlan> {
        Ok(RenderPlan {
            files: self.files.clone(),
            out: self.out.clone(),
            window: self.window.plan()?,
            fold: self.fold.plan()?,
            open: self.open,
        })
    }
}

impl WindowArgs {
    fn plan(&self) -> Result<Window> {
        for (flag, value) in [("--from", self.from), ("--to", self.to)] {
            if let Some(v) = value.filter(|v| !v.is_finite() || *v < 0.0) {
                return Err(Error::Usage(format!(
                    "{flag} {v} is not a time: give seconds from the first sample, 0 or more (e.g. {flag} 2.5)"
                )));
            }
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if to <= from {
                return Err(Error::Usage(format!(
                    "--to {to} must be after --from {from}: the window is [from, to) in seconds from the first sample"
                )));
            }
        }
        Ok(Window {
            from_s: self.from,
            to_s: self.to,
        })
    }
}

impl DiffArgs {
    pub fn plan(&self) -> Result<DiffPlan> {
        let before = DiffInput::parse(&self.before);
        let after = DiffInput::parse(&self.after);
        let remote = [&before, &after]
            .into_iter()
            .find(|i| matches!(i, DiffInput::Run { .. }));
        let location = match remote {
            Some(input) if self.bucket.bucket.is_none() => {
                return Err(Error::Usage(format!(
                    "{input} is neither a file nor reachable without a bucket: pass --bucket or set FLAMEFIRE_BUCKET to diff a past run's host"
                )));
            }
            Some(_) => Some(self.bucket.plan()?),
            None => None,
        };
        Ok(DiffPlan {
            before,
            after,
            location,
            out: self.out.clone(),
            window: self.window.plan()?,
            fold: self.fold.plan()?,
            open: self.open,
            json: self.json,
        })
    }
}

impl SsmArgs {
    pub fn plan(&self, run_id: String) -> Result<SsmPlan> {
        let target = self.target()?;
        let baseline = self.baseline()?;
        if let (Target::Ids(targets), Some(Target::Ids(baselines))) = (&target, &baseline) {
            if let Some(both) = targets.iter().find(|id| baselines.contains(id)) {
                return Err(Error::Usage(format!(
                    "{both} is both a target and a --baseline: a host cannot be compared with itself"
                )));
            }
        }
        let BucketPlan {
            bucket,
            prefix,
            region,
            profile,
            mfa_code,
        } = self.location.plan()?;
        let record = self.record.plan(run_id)?;
        // The hosts receive `<prefix><run-id>/`: check it with the document's pattern now.
        document::embedded()?.check(
            "UploadKeyPrefix",
            &format!("{prefix}{}/", record.params.run_id),
            "--prefix",
        )?;
        check_document_name(&self.document)?;
        Ok(SsmPlan {
            target,
            opt_in: self.target.opt_in()?,
            baseline,
            bucket,
            prefix,
            document: self.document.clone(),
            timeout: Duration::from_secs(self.timeout),
            region,
            profile,
            mfa_code,
            record,
        })
    }

    /// `--baseline` ids or `--baseline-tag` tags, checked like the targets.
    fn baseline(&self) -> Result<Option<Target>> {
        if !self.baseline_tag.is_empty() {
            return Ok(Some(Target::Tags(parse_tags(
                &self.baseline_tag,
                "--baseline-tag",
            )?)));
        }
        if self.baseline.is_empty() {
            return Ok(None);
        }
        Ok(Some(Target::Ids(parse_ids(&self.baseline, "--baseline ")?)))
    }

    fn target(&self) -> Result<Target> {
        self.target.parse()?.ok_or_else(|| {
            Error::Usage(
                "no target: give instance ids, --tag KEY=VALUE or --asg NAME (see `flamefire ssm --help`)".into(),
            )
        })
    }
}

fn parse_target(instances: &[String], tag: &[String], asg: Option<&str>) -> Result<Option<Target>> {
    let chosen = [!instances.is_empty(), !tag.is_empty(), asg.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if chosen > 1 {
        return Err(Error::Usage(
            "give instance ids, --tag or --asg, not several kinds at once".into(),
        ));
    }
    if let Some(asg) = asg {
        if asg.is_empty() || asg.len() > 255 {
            return Err(Error::Usage(format!(
                "--asg {asg:?} is not an autoscaling group name"
            )));
        }
        return Ok(Some(Target::AutoScalingGroup(asg.to_string())));
    }
    if !tag.is_empty() {
        return Ok(Some(Target::Tags(parse_tags(tag, "--tag")?)));
    }
    if !instances.is_empty() {
        return Ok(Some(Target::Ids(parse_ids(instances, "")?)));
    }
    Ok(None)
}

/// `KEY=VALUE` tags; errors name `flag`.
fn parse_tags(raw: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    let mut tags = Vec::new();
    for t in raw {
        let (k, v) = t.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "{flag} {t:?} must be KEY=VALUE, e.g. {flag} Role=api"
            ))
        })?;
        if k.is_empty() {
            return Err(Error::Usage(format!("{flag} {t:?} has an empty key")));
        }
        // EC2 tag limits: keys up to 128 characters, and DescribeInstances
        // filter values up to 255
        // (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
        if k.chars().count() > 128 {
            return Err(Error::Usage(format!(
                "{flag} {:?}…: the key is longer than EC2's 128 characters; check the tag's spelling",
                shorten_arg(t)
            )));
        }
        if v.chars().count() > 255 {
            return Err(Error::Usage(format!(
                "{flag} {k}=…: the value has {} characters, more than the 255 EC2 matches; check the tag's value",
                v.chars().count()
            )));
        }
        tags.push((k.to_string(), v.to_string()));
    }
    Ok(tags)
}

/// Instance ids, deduplicated; errors start with `flag` (empty for positionals).
fn parse_ids(raw: &[String], flag: &str) -> Result<Vec<InstanceId>> {
    let mut ids = Vec::new();
    for r in raw {
        let id = InstanceId::parse(r).ok_or_else(|| {
            Error::Usage(format!(
                "{flag}{r:?} is not an instance id (expected i- followed by 8 or 17 hex digits, e.g. i-0123456789abcdef0)"
            ))
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// SSM document names: 3–128 of letters, digits, `_.-`.
pub fn check_document_name(name: &str) -> Result<()> {
    let ok = regex::Regex::new(r"^[A-Za-z0-9_.-]{3,128}$")
        .expect("static regex")
        .is_match(name);
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--document {name:?} is not an SSM document name (3–128 letters, digits, `_.-`)"
        )))
    }
}

/// S3's bucket naming rules, so a typo fails before any AWS call.
pub(crate) fn check_bucket_name(bucket: &str) -> Result<()> {
    let ok = regex::Regex::new(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
        .expect("static regex")
        .is_match(bucket)
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--bucket {bucket:?} is not a valid S3 bucket name (3–63 lowercase letters, digits, `.` and `-`)"
        )))
    }
}

/// `flamefire` and `flamefire/` mean the same prefix; the empty prefix is the
/// bucket root. Segments must start with a letter, digit or `_`, so that no
/// key looks like an option (`-o…`) or climbs (`..`).
pub(crate) fn normalise_prefix(prefix: &str) -> Result<String> {
    if prefix.is_empty() {
        return Ok(String::new());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    let segment = regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$").expect("static regex");
    if !trimmed.split('/').all(|s| segment.is_match(s)) {
        return Err(Error::Usage(format!(
            "--prefix {:?} is not allowed: use path segments of letters, digits and `_.-` that start with a letter, digit or `_`, e.g. flamefire/",
            shorten_arg(prefix)
        )));
    }
    Ok(format!("{trimmed}/"))
}

fn shorten_arg(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn ssm(args: &[&str]) -> Result<SsmPlan> {
        let mut argv = vec!["flamefire", "ssm"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Ssm(a) => a.plan("20261127T080000Z-abcd".into()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn instance_ids_are_checked_before_any_call() {
        let err = ssm(&["i-nothex", "--bucket", "b-ok"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"i-nothex\" is not an instance id")
        );
        let plan = ssm(&[
            "i-0123456789abcdef0",
            "i-0123456789abcdef0",
            "--bucket",
            "bkt",
        ])
        .unwrap();
        assert!(matches!(plan.target, Target::Ids(ref v) if v.len() == 1));
    }

    #[test]
    fn target_kinds_are_exclusive_and_required() {
        assert!(
            ssm(&["--bucket", "bkt"])
                .unwrap_err()
                .to_string()
                .contains("no target")
        );
        let err = ssm(&["i-0123456789abcdef0", "--tag", "a=b", "--bucket", "bkt"]).unwrap_err();
        assert!(err.to_string().contains("not several kinds"));
        assert!(
            Cli::try_parse_from(["flamefire", "ssm", "--tag", "a=b", "--asg", "x"]).is_err(),
            "--tag and --asg conflict"
        );
        let err = ssm(&["--tag", "novalue", "--bucket", "bkt"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("--tag \"novalue\" must be KEY=VALUE")
        );
    }

    #[test]
    fn values_are_checked_against_the_documents_patterns_naming_the_flag() {
        let err = ssm(&["--asg", "a", "--bucket", "bkt", "--duration", "0"]).unwrap_err();
        assert!(err.to_string().starts_with("--duration \"0\""), "{err}");
        let err = ssm(&["--asg", "a", "--bucket", "bkt", "--pid", "1;reboot"]).unwrap_err();
        assert!(err.to_string().starts_with("--pid"), "{err}");
        let err = ssm(&["--asg", "a", "--bucket", "bkt", "--process=--output=/x"]).unwrap_err();
        assert!(err.to_string().starts_with("--process"), "{err}");
        let err = ssm(&["--asg", "a", "--bucket", "bkt", "--prefix", "../etc"]).unwrap_err();
        assert!(err.to_string().starts_with("--prefix"), "{err}");
        let err = ssm(&["--asg", "a", "--bucket", "Bad_Bucket"]).unwrap_err();
        assert!(err.to_string().starts_with("--bucket"), "{err}");
        let err = ssm(&["--asg", "a"]).unwrap_err();
        assert!(err.to_string().contains("FLAMEFIRE_BUCKET"), "{err}");
    }

    #[test]
    fn baselines_are_checked_like_targets() {
        let plan = ssm(&[
            "i-0123456789abcdef0",
            "--baseline",
            "i-0123456789abcdef1",
            "--bucket",
            "bkt",
        ])
        .unwrap();
        assert!(matches!(plan.baseline, Some(Target::Ids(ref v)) if v.len() == 1));
        let plan = ssm(&["--asg", "a", "--baseline-tag", "Role=ok", "--bucket", "bkt"]).unwrap();
        assert_eq!(
            plan.baseline,
            Some(Target::Tags(vec![("Role".into(), "ok".into())]))
        );
        assert_eq!(
            ssm(&["--asg", "a", "--bucket", "bkt"]).unwrap().baseline,
            None
        );

        let err = ssm(&["--asg", "a", "--baseline", "i-zz", "--bucket", "bkt"]).unwrap_err();
        assert!(err.to_string().starts_with("--baseline \"i-zz\""), "{err}");
        let err = ssm(&["--asg", "a", "--baseline-tag", "x", "--bucket", "bkt"]).unwrap_err();
        assert!(err.to_string().starts_with("--baseline-tag \"x\""), "{err}");
        let same = "i-0123456789abcdef0";
        let err = ssm(&[same, "--baseline", same, "--bucket", "bkt"]).unwrap_err();
        assert!(
            err.to_string().contains("both a target and a --baseline"),
            "{err}"
        );
        assert!(
            Cli::try_parse_from([
                "flamefire",
                "ssm",
                "--asg",
                "a",
                "--baseline",
                same,
                "--baseline-tag",
                "a=b"
            ])
            .is_err(),
            "--baseline and --baseline-tag conflict"
        );
    }

    fn window(args: &[&str]) -> Result<Window> {
        let mut argv = vec!["flamefire", "diff", "a", "b"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Diff(a) => a.plan().map(|p| p.window),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn windows_are_seconds_from_the_first_sample() {
        assert_eq!(window(&[]).unwrap(), Window::default());
        assert_eq!(
            window(&["--from", "1.5", "--to", "3"]).unwrap(),
            Window {
                from_s: Some(1.5),
                to_s: Some(3.0)
            }
        );
        assert!(
            window(&["--from=-1"])
                .unwrap_err()
                .to_string()
                .starts_with("--from")
        );
        assert!(
            window(&["--to", "NaN"])
                .unwrap_err()
                .to_string()
                .starts_with("--to")
        );
        let err = window(&["--from", "3", "--to", "2"]).unwrap_err();
        assert!(err.to_string().contains("must be after --from"), "{err}");
    }

    #[test]
    fn event_and_weight_choose_what_is_folded() {
        let fold = |args: &[&str]| {
            let mut argv = vec!["flamefire", "render", "x.perf"];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(argv).expect("parses").command {
                Command::Render(a) => a.plan().map(|p| p.fold),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(fold(&[]).unwrap(), FoldPlan::default());
        let plan = fold(&["--event", "cycles:u", "--weight", "period"]).unwrap();
        assert_eq!(plan.event.as_deref(), Some("cycles:u"));
        assert_eq!(plan.weight, Weight::Period);
        let err = fold(&["--event", ""]).unwrap_err();
        assert!(err.to_string().starts_with("--event"), "{err}");
        assert!(
            Cli::try_parse_from(["flamefire", "render", "x", "--weight", "ns"]).is_err(),
            "--weight is sample or period"
        );
        for command in ["diff a b", "local", "fetch 20261127T080000Z-abcd"] {
            let mut argv = vec!["flamefire"];
            argv.extend(command.split(' '));
            argv.extend(["--event", "page-faults", "--weight", "period"]);
            assert!(Cli::try_parse_from(&argv).is_ok(), "{command}");
        }
    }

    #[test]
    fn diff_inputs_are_paths_for_now() {
        let plan = match Cli::try_parse_from(["flamefire", "diff", "h.perf.gz", "s.perf.gz"])
            .unwrap()
            .command
        {
            Command::Diff(a) => a.plan().unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(plan.before, DiffInput::File("h.perf.gz".into()));
        assert_eq!(plan.after.to_string(), "s.perf.gz");
        assert_eq!(plan.out, PathBuf::from("."));
    }

    #[test]
    fn diff_inputs_are_files_or_past_run_hosts() {
        let run = DiffInput::parse(std::path::Path::new(
            "20261127T080000Z-abcd/i-0123456789abcdef0",
        ));
        assert_eq!(run.to_string(), "20261127T080000Z-abcd/i-0123456789abcdef0");
        assert!(matches!(run, DiffInput::Run { .. }));
        for file in [
            "sick.perf.gz",
            "dir/i-nothex",
            "a;b/i-0123456789abcdef0",
            "src",
        ] {
            assert!(
                matches!(
                    DiffInput::parse(std::path::Path::new(file)),
                    DiffInput::File(_)
                ),
                "{file}"
            );
        }
    }

    #[test]
    fn tag_values_of_up_to_255_characters_are_accepted() {
        let ok = format!("Role={}", "a".repeat(255));
        assert!(ssm(&["--tag", &ok, "--bucket", "bkt"]).is_ok());
        let long = format!("Role={}", "a".repeat(256));
        let err = ssm(&["--tag", &long, "--bucket", "bkt"]).unwrap_err();
        assert!(err.to_string().starts_with("--tag Role="), "{err}");
        let err = ssm(&["--asg", "a", "--bucket", "bkt", "--opt-in-tag", "x"]).unwrap_err();
        assert!(err.to_string().starts_with("--opt-in-tag"), "{err}");
        let plan = ssm(&["--asg", "a", "--bucket", "bkt", "--opt-in-tag", ""]).unwrap();
        assert_eq!(plan.opt_in, None);
        let plan = ssm(&["--asg", "a", "--bucket", "bkt"]).unwrap();
        assert_eq!(plan.opt_in, Some(("flamefire".into(), "enabled".into())));
    }

    #[test]
    fn prefix_is_normalised() {
        assert_eq!(normalise_prefix("flamefire").unwrap(), "flamefire/");
        assert_eq!(normalise_prefix("a/b/").unwrap(), "a/b/");
        assert_eq!(normalise_prefix("").unwrap(), "");
        for bad in ["/a", "-o/x", "a/../b", "a//b", ".hidden/", "a b/"] {
            assert!(normalise_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_ids_match_the_documents_pattern() {
        let id = new_run_id(SystemTime::now());
        document::embedded()
            .unwrap()
            .check("RunId", &id, "--run-id")
            .unwrap();
    }
}
