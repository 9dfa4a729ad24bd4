//! What to draw from stacks already on disk (or in the bucket): `render`
//! and `diff`, the time window and the fold options they share with
//! `local` and `fetch`.

use std::path::PathBuf;

use clap::Args;

use super::aws::{AwsArgs, BucketArgs, BucketPlan};
use crate::collapse::{Select, Weight, Window};
use crate::document;
use crate::error::{Error, Result};
use crate::model::InstanceId;

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
    pub(super) fn plan(&self) -> Result<FoldPlan> {
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

    #[command(flatten)]
    pub aws: AwsArgs,
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
            Some(_) => Some(self.bucket.plan(&self.aws)?),
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
