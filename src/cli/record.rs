//! What to record and where: `local` and `ssm`, their shared recording
//! flags, and the plans whose every value the SSM document's own
//! `allowedPattern`s have checked, before any process or AWS call.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::aws::{AwsArgs, BucketArgs, BucketPlan};
use super::checks::check_document_name;
use super::render::{FoldArgs, FoldPlan};
use super::target::{TargetArgs, parse_ids, parse_tags};
use crate::aws::AwsPlan;
use crate::document::{self, Pids, RecordParams};
use crate::error::{Error, Result};
use crate::model::Target;

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

    #[command(flatten)]
    pub location: BucketArgs,

    #[command(flatten)]
    pub record: RecordArgs,

    // Last: clap keeps a flattened group's help heading for what follows.
    #[command(flatten)]
    pub aws: AwsArgs,
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
    pub aws: AwsPlan,
    pub record: RecordPlan,
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
            aws,
        } = self.location.plan(&self.aws)?;
        let record = self.record.plan(run_id)?;
        // Credentials sign the hosts' uploads: they must outlive the
        // recording and the wait (with a minute for delivery and sending).
        let aws = AwsPlan {
            min_life: Duration::from_secs(u64::from(self.record.duration) + self.timeout + 60),
            ..aws
        };
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
            aws,
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
