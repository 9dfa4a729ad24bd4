//! The AWS seam: the only code that touches the AWS SDK.
//!
//! Input: flamefire's own types (`InstanceId`, `Target`, `CommandId`, …).
//! Output: flamefire's own types and `Error`s with a next step. There is one
//! implementation, built from one `SdkConfig` that honours the standard chain
//! (profiles, SSO, environment, `AWS_ENDPOINT_URL`). Tests run this very code
//! against the moto emulator, so there are no mocks and no test branches here.

mod ec2;
mod errors;
mod s3;
mod ssm;

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_types::region::Region;

pub use ec2::Ec2Instance;
pub use s3::{FetchProblem, ObjectSummary};
pub use ssm::{DocumentInfo, InvocationReport, ManagedInstance, SendRequest};

use crate::error::{Error, Result};

/// Clients for the services flamefire uses, from one configuration.
/// Cloning is cheap: the SDK clients share their connection pools.
#[derive(Clone)]
pub struct Aws {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    s3: aws_sdk_s3::Client,
    sts: aws_sdk_sts::Client,
    config: aws_types::SdkConfig,
    region: String,
}

/// Long-lived credentials the CLI signs the upload policy with.
pub struct SigningCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires: Option<SystemTime>,
}

impl Aws {
    /// Loads the standard configuration chain, with `--profile` / `--region` on top.
    pub async fn load(profile: Option<&str>, region: Option<&str>) -> Result<Aws> {
        // Adaptive retry: SendCommand and ListCommandInvocations throttle at
        // fleet scale; the SDK's client-side rate limiter backs off for us.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::adaptive().with_max_attempts(6))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_string()));
        }
        let config = loader.load().await;
        let region = config.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::Usage(
                "no AWS region: pass --region, set AWS_REGION, or set a region in your profile"
                    .into(),
            )
        })?;
        let mut s3 = aws_sdk_s3::config::Builder::from(&config);
        if config.endpoint_url().is_some() {
            // An emulator on 127.0.0.1 has no per-bucket DNS names.
            s3 = s3.force_path_style(true);
        }
        Ok(Aws {
            ec2: aws_sdk_ec2::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sts: aws_sdk_sts::Client::new(&config),
            region,
            config,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The custom endpoint (`AWS_ENDPOINT_URL`), when one is configured.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.config.endpoint_url()
    }

    /// The credentials that sign the presigned POST. Resolving them early
    /// also turns a missing or expired login into one clear error.
    pub async fn signing_credentials(&self) -> Result<SigningCredentials> {
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(no_credentials)?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Aws {
                call: "loading AWS credentials",
                message: errors::chain(&e),
                next: "log in (e.g. `aws sso login --profile …`), or pass --profile".into(),
            })?;
        Ok(SigningCredentials {
            access_key_id: creds.access_key_id().to_string(),
            secret_access_key: creds.secret_access_key().to_string(),
            session_token: creds.session_token().map(str::to_string),
            expires: creds.expiry(),
        })
    }

    /// STS GetCallerIdentity: (account, ARN).
    pub async fn caller_identity(&self) -> Result<(String, String)> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| errors::convert("sts:GetCallerIdentity", e, None))?;
        Ok((
            out.account().unwrap_or_default().to_string(),
            out.arn().unwrap_or_default().to_string(),
        ))
    }
}

fn no_credentials() -> Error {
    Error::Aws {
        call: "loading AWS credentials",
        message: "no credentials provider is configured".into(),
        next: "set AWS_PROFILE or pass --profile, or log in with `aws sso login`".into(),
    }
}
