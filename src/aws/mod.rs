//! The AWS seam: the only code that touches the AWS SDK.
//!
//! Input: flamefire's own types (`InstanceId`, `Target`, `CommandId`, …).
//! Output: flamefire's own types and `Error`s with a next step. There is one
//! implementation, built from one `SdkConfig` that honours the standard chain
//! (profiles, SSO, environment, `AWS_ENDPOINT_URL`). Tests run this very code
//! against the moto emulator, so there are no mocks and no test branches here.

mod clock;
mod ec2;
mod errors;
mod mfa;
mod s3;
mod ssm;

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_types::region::Region;

pub use clock::{Clock, Offset};
pub use ec2::Ec2Instance;
pub use s3::{FetchProblem, ObjectSummary, post_url};
pub use ssm::{CommandReport, DocumentInfo, InvocationReport, ManagedInstance, SendRequest};

use crate::error::{Error, Result};

/// How to reach AWS: the validated `--profile`, `--region` and
/// `--mfa-code` (built by `cli::AwsArgs`), and how long the credentials
/// must last. `None` leaves the choice to the SDK's standard chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsPlan {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub mfa_code: Option<String>,
    /// The run needs its credentials this long (recording, waiting): a
    /// cached MFA session with less life left is renewed, not used.
    pub min_life: Duration,
}

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
    /// The region S3 calls are signed for: the bucket's, once known.
    s3_region: String,
    credentials: aws_credential_types::Credentials,
    /// AWS's time, from the first response of any of these clients.
    clock: Clock,
}

/// The credentials the CLI signs the upload policy with.
pub struct SigningCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires: Option<SystemTime>,
}

impl Aws {
    /// The one way a command gets its clients. Loads the standard
    /// configuration chain with `--profile` / `--region` on top, and
    /// resolves the credentials once: every client and the upload
    /// signature then use that one session (a role with MFA asks for its
    /// code once), and a missing or expired login fails here, named as a
    /// credentials problem.
    pub async fn load(plan: &AwsPlan) -> Result<Aws> {
        let profile = plan.profile.as_deref();
        // Standard retry (exponential backoff with jitter, a few
        // attempts); the stages retry throttled calls themselves (the
        // wait stage's polls at its next round, downloads with their
        // own backoff: docs/polling.md). Not adaptive retry: its
        // client-side rate limiter slows *every* call of a client after
        // a few throttles: tests/fleet.rs's 200-host run under 30 %
        // throttling downloaded about two hosts a second with it.
        // SendCommand opts out (see `send_command`).
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(4))
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
        if let Some(r) = &plan.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let mut config = loader.load().await;
        let region = config.region().cloned().ok_or_else(|| {
            Error::Usage(
                "no AWS region: pass --region, set AWS_REGION, or set a region in your profile"
                    .into(),
            )
        })?;
        // Before the credentials: a cached MFA session is judged by it.
        let clock = Clock::default();
        let credentials = credentials(plan, &region, &config, &clock).await?;
        config = config
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials.clone()))
            .build();
        let region = region.to_string();
        Ok(Aws {
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&config)
                    .interceptor(clock.interceptor())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(&config)
                    .interceptor(clock.interceptor())
                    .build(),
            ),
            s3: s3_client(&config, &region, &clock),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&config)
                    .interceptor(clock.interceptor())
                    .build(),
            ),
            s3_region: region.clone(),
            region,
            credentials,
            config,
            clock,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The custom endpoint (`AWS_ENDPOINT_URL`), when one is configured.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.config.endpoint_url()
    }

    /// The credentials that sign the presigned POST: the ones every call
    /// of this run uses, resolved once by `load`.
    pub fn signing_credentials(&self) -> SigningCredentials {
        let c = &self.credentials;
        SigningCredentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().map(str::to_string),
            expires: c.expiry(),
        }
    }

    /// Now, by AWS's clock once any response has said it (see `clock`):
    /// for every time a host or AWS judges (StartAt, InvokedAfter, the
    /// upload policy's expiration).
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// AWS's clock minus this machine's, once a response has said it.
    pub fn clock_offset(&self) -> Option<Offset> {
        self.clock.offset()
    }

    /// An S3 client for another region (the bucket's), same credentials.
    fn with_s3_region(&self, region: &str) -> Aws {
        Aws {
            s3: s3_client(&self.config, region, &self.clock),
            s3_region: region.to_string(),
            ..self.clone()
        }
    }

    /// These clients with S3 in `bucket`'s own region (see `bucket_region`);
    /// unchanged when S3 does not say.
    pub async fn for_bucket(&self, bucket: &str, prefix: &str) -> Aws {
        match self.bucket_region(bucket, prefix).await {
            Some(r) if r != self.s3_region => self.with_s3_region(&r),
            _ => self.clone(),
        }
    }

    /// The region S3 calls and upload signatures use.
    pub fn s3_region(&self) -> &str {
        &self.s3_region
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

/// The S3 client for `region`, with the clock's interceptor.
fn s3_client(config: &aws_types::SdkConfig, region: &str, clock: &Clock) -> aws_sdk_s3::Client {
    let mut s3 = aws_sdk_s3::config::Builder::from(config)
        .region(Region::new(region.to_string()))
        .interceptor(clock.interceptor());
    if config.endpoint_url().is_some() {
        // An emulator on 127.0.0.1 has no per-bucket DNS names.
        s3 = s3.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(s3.build())
}

/// The credentials of this run. An explicit `--profile` is used as the
/// AWS CLI uses it: environment credentials (AWS_ACCESS_KEY_ID, …) do not
/// override it. A role profile with `mfa_serial` goes through `mfa`;
/// everything else through the SDK's own providers, with the region.
async fn credentials(
    plan: &AwsPlan,
    region: &Region,
    config: &aws_types::SdkConfig,
    clock: &Clock,
) -> Result<aws_credential_types::Credentials> {
    let profile = plan.profile.as_deref();
    if let Some(p) = mfa::find(profile).await? {
        return mfa::credentials(&p, plan, region, config, clock).await;
    }
    let resolved = match profile {
        // The SDK's default chain reads the environment first, whatever
        // profile it was given; the profile's own provider does not.
        Some(name) => {
            mfa::profile_provider(name, region)
                .provide_credentials()
                .await
        }
        None => {
            config
                .credentials_provider()
                .ok_or_else(no_credentials)?
                .provide_credentials()
                .await
        }
    };
    resolved.map_err(|e| credentials_error(&e, profile))
}

fn no_credentials() -> Error {
    Error::Aws {
        call: "loading AWS credentials",
        code: None,
        message: "no credentials provider is configured".into(),
        next: "set AWS_PROFILE or pass --profile, or log in with `aws sso login`".into(),
    }
}

/// A credentials failure, named as one (not as a network problem), with the
/// login command for the profile in use.
fn credentials_error(
    e: &aws_credential_types::provider::error::CredentialsError,
    profile: Option<&str>,
) -> Error {
    use aws_credential_types::provider::error::CredentialsError as E;
    let profile = profile
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_PROFILE").ok())
        .unwrap_or_else(|| "default".into());
    let next = match e {
        E::CredentialsNotLoaded(_) => format!(
            "no credentials were found for profile {profile}: log in (`aws sso login --profile {profile}` or `aws login --profile {profile}`), pass --profile, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ),
        E::ProviderTimedOut(_) => format!(
            "the credentials provider of profile {profile} did not answer in time: check its credential_process or SSO login, then retry"
        ),
        _ => format!(
            "your login for profile {profile} is missing, expired or refused: log in again (`aws sso login --profile {profile}` or `aws login --profile {profile}`), or pass --profile"
        ),
    };
    Error::Aws {
        call: "loading AWS credentials",
        code: None,
        message: errors::chain(e),
        next,
    }
}
