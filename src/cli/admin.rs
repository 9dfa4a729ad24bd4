//! The commands around a run: `doctor`, `runs`, `fetch` and
//! `document deploy`, and their plans.

use std::path::PathBuf;

use clap::Args;

use super::aws::{AwsArgs, BucketArgs, BucketPlan};
use super::checks::{check_bucket_name, check_document_name, normalise_prefix};
use super::new_run_id;
use super::render::{FoldArgs, FoldPlan};
use super::target::TargetArgs;
use crate::aws::AwsPlan;
use crate::document;
use crate::error::Result;

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

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub bucket: BucketArgs,

    #[command(flatten)]
    pub aws: AwsArgs,
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

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Name to deploy the document under.
    #[arg(long, default_value = document::DEFAULT_NAME, value_name = "NAME")]
    pub document: String,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `document deploy`: which name, in which account and region.
#[derive(Debug)]
pub struct DeployPlan {
    pub document: String,
    pub aws: AwsPlan,
}

impl DeployArgs {
    pub fn plan(&self) -> Result<DeployPlan> {
        check_document_name(&self.document)?;
        document::embedded()?;
        Ok(DeployPlan {
            document: self.document.clone(),
            aws: self.aws.plan()?,
        })
    }
}

#[derive(Debug)]
pub struct DoctorPlan {
    pub checks: crate::doctor::DoctorPlan,
    pub aws: AwsPlan,
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
            aws: self.aws.plan()?,
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
            location: self.bucket.plan(&self.aws)?,
            out: self
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("flamefire-{}", self.run_id))),
            open: self.open,
            json: self.json,
        })
    }
}
