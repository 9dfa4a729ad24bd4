//! How to reach AWS, and where a run's results live: the flags every
//! command that calls AWS shares, declared once and flattened into each
//! (cargo-lambda's `AwsArgs`), and their validated plans.
//!
//! Input: `--region`, `--profile`, `--mfa-code`, `--bucket`, `--prefix`
//! (the endpoint comes from the SDK's own AWS_ENDPOINT_URL, which its
//! credential providers honour too). Output: an [`AwsPlan`] for `Aws::load` (the one
//! way any command gets its clients) and a [`BucketPlan`].

use clap::Args;

use super::checks::{check_bucket_name, normalise_prefix};
use crate::aws::AwsPlan;
use crate::error::{Error, Result};

/// The AWS connection, the same on every command that calls AWS.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "AWS")]
pub struct AwsArgs {
    /// AWS region (default: the standard chain: AWS_REGION, the profile's
    /// `region`, …).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile (default: the standard chain: AWS_PROFILE, else
    /// `default`). An explicit --profile wins over AWS_ACCESS_KEY_ID and
    /// friends in the environment, as with the AWS CLI.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// The MFA code, for a profile with `mfa_serial` (as the Terraform
    /// module's). Without it flamefire asks on the terminal; the session is
    /// then cached until it expires.
    #[arg(long, value_name = "CODE")]
    pub mfa_code: Option<String>,
}

impl AwsArgs {
    pub fn plan(&self) -> Result<AwsPlan> {
        for (flag, value) in [("--region", &self.region), ("--profile", &self.profile)] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return Err(Error::Usage(format!(
                    "{flag} is empty: give a value or leave the flag out for the standard chain"
                )));
            }
        }
        Ok(AwsPlan {
            region: self.region.clone(),
            profile: self.profile.clone(),
            mfa_code: self.mfa_code.clone(),
            min_life: std::time::Duration::ZERO,
        })
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
}

/// A validated bucket location, and how to reach it.
#[derive(Debug, Clone)]
pub struct BucketPlan {
    pub bucket: String,
    pub prefix: String,
    pub aws: AwsPlan,
}

impl BucketArgs {
    /// The location; `aws` says how to reach it.
    pub fn plan(&self, aws: &AwsArgs) -> Result<BucketPlan> {
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
            aws: aws.plan()?,
        })
    }
}
