//! Errors that end a whole run, and the exit code each one maps to.
//!
//! A failure of one host in a fleet is *not* an `Error`: it is a
//! `model::HostOutcome` and the run carries on (see `cmd/ssm.rs`). Every message
//! names the flag or resource at fault and the next step, in the manner of
//! hyperfine's `error.rs`.

use std::path::{Path, PathBuf};

use crate::collapse::CollapseError;
use crate::render::RenderError;

/// Exit codes that scripts can rely on. Documented in `--help` and the README.
pub mod exit {
    /// Every host (or the single local run) produced a flamegraph.
    pub const OK: u8 = 0;
    /// Some hosts failed; the others were rendered.
    pub const PARTIAL: u8 = 1;
    /// Nothing usable: bad arguments, no targets, every host failed, auth or config errors.
    pub const NOTHING: u8 = 2;
    /// Interrupted by Ctrl-C; remote commands were cancelled first.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{flag} {value:?} is not allowed: {why} (the document's allowedPattern is {pattern})")]
    InvalidValue {
        flag: String,
        value: String,
        why: String,
        pattern: String,
    },

    #[error("{0}")]
    Usage(String),

    #[error("the embedded SSM document is invalid: {0} (this is a bug in this build of flamefire)")]
    Document(String),

    #[error("the recorder failed on this machine: {cause}\n  next step: {next}")]
    LocalRecord { cause: String, next: String },

    #[error(
        "could not {action} {path}: {source}\n  next step: check that the path exists and is writable, or pick another with --out"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not start {program}: {source}\n  next step: {next}")]
    Spawn {
        program: String,
        next: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    Collapse(#[from] CollapseError),

    #[error(transparent)]
    Render(#[from] RenderError),

    /// An AWS call failed in a way that stops the run (auth, missing bucket, …).
    /// `code` is the service's error code when it sent one; decisions match
    /// on `code`'s kind, never on `message` (which is for people).
    #[error("{call} failed: {message}\n  next step: {next}")]
    Aws {
        call: &'static str,
        code: Option<AwsCode>,
        message: String,
        next: String,
    },

    #[error(
        "your AWS credentials expire at {expires}, before this run's last upload could arrive ({last_upload}): the hosts would record, then fail to upload\n  next step: {next}"
    )]
    CredentialsExpire {
        expires: String,
        last_upload: String,
        next: String,
    },

    #[error("no usable target: {0}")]
    NoTargets(String),

    #[error("every host failed; see the table above for each cause")]
    AllHostsFailed,

    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted => exit::INTERRUPTED,
            _ => exit::NOTHING,
        }
    }

    /// What kind of AWS refusal this is, when it is one the service named.
    pub fn aws_kind(&self) -> Option<AwsKind> {
        match self {
            Error::Aws {
                code: Some(code), ..
            } => Some(code.kind()),
            _ => None,
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// An AWS error code exactly as the service sent it (`AccessDeniedException`,
/// `NoSuchBucket`, `InvalidInstanceId`, …). `kind` is the one place that
/// reads the text; everything else matches on the `AwsKind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCode(String);

/// The error codes flamefire decides on, across services. Each service
/// spells some of them its own way (SSM's `ThrottlingException`, STS's
/// `Throttling`, EC2's `RequestLimitExceeded`, S3's `SlowDown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsKind {
    /// The caller may not make this call on this resource.
    AccessDenied,
    /// The credentials are expired, unknown or badly signed.
    BadCredentials,
    /// "Slow down": retry later.
    Throttled,
    NoSuchBucket,
    /// S3 has no such object (`NoSuchKey`, or a HEAD's bare `NotFound`).
    NoSuchKey,
    /// SSM knows no such document (or version) in this region.
    InvalidDocument,
    /// The document refuses these parameters.
    InvalidParameters,
    /// SendCommand refuses some instances (not managed, stopped, unknown).
    InvalidInstanceId,
    /// SSM does not know the command id (yet: right after SendCommand).
    InvalidCommandId,
    /// UpdateDocument with content an older version already has.
    DuplicateDocumentContent,
    /// S3's SSE-KMS refusals (`KMS.DisabledException`, …).
    Kms,
    /// A code flamefire makes no decision on; it is still shown.
    Other,
}

impl AwsCode {
    pub fn new(code: impl Into<String>) -> Self {
        AwsCode(code.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> AwsKind {
        use AwsKind::*;
        match self.0.as_str() {
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthorizationError"
            | "Forbidden" => AccessDenied,
            "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AuthFailure" => BadCredentials,
            "ThrottlingException"
            | "Throttling"
            | "RequestLimitExceeded"
            | "TooManyUpdates"
            | "SlowDown" => Throttled,
            "NoSuchBucket" => NoSuchBucket,
            "NoSuchKey" | "NotFound" => NoSuchKey,
            "InvalidDocument" => InvalidDocument,
            "InvalidParameters" => InvalidParameters,
            "InvalidInstanceId" => InvalidInstanceId,
            "InvalidCommandId" => InvalidCommandId,
            "DuplicateDocumentContent" => DuplicateDocumentContent,
            c if c.starts_with("KMS.") => Kms,
            _ => Other,
        }
    }
}

impl std::fmt::Display for AwsCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bad config file (`config.rs` reads it). Defined here, below the CLI,
/// so that `Error` does not depend on the layer that parses flags.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "could not read the config file {path}: {source}\n  next step: fix its permissions or point --config (FLAMEFIRE_CONFIG) at another file"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{}: {key}: {message}\n  next step: {next}", location(.path, *.line, *.column))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
        next: String,
    },

    #[error(
        "--env {env}: {path} has no [env.{env}] section ({available})\n  next step: add the section, or pick one of the sections it has"
    )]
    NoSection {
        env: String,
        path: PathBuf,
        available: String,
    },

    #[error(
        "--env {env} needs a config file, and {path} does not exist\n  next step: write one (terraform output -raw flamefire_config > {path}) or pass --config FILE"
    )]
    NoFile { env: String, path: PathBuf },
}

fn location(path: &Path, line: usize, column: usize) -> String {
    if line == 0 {
        path.display().to_string()
    } else {
        format!("{}:{line}:{column}", path.display())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_services_spelling_of_a_code_is_one_kind() {
        let kind = |c: &str| AwsCode::new(c).kind();
        for c in [
            "ThrottlingException",
            "Throttling",
            "RequestLimitExceeded",
            "SlowDown",
        ] {
            assert_eq!(kind(c), AwsKind::Throttled, "{c}");
        }
        for c in [
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
        ] {
            assert_eq!(kind(c), AwsKind::AccessDenied, "{c}");
        }
        assert_eq!(kind("KMS.DisabledException"), AwsKind::Kms);
        assert_eq!(kind("InvalidInstanceId"), AwsKind::InvalidInstanceId);
        // A code is matched whole: a longer code is not its prefix's kind.
        assert_eq!(kind("InvalidInstanceIdFormat"), AwsKind::Other);
        assert_eq!(kind("throttling"), AwsKind::Other);
    }

    #[test]
    fn only_a_service_code_gives_an_error_a_kind() {
        let aws = |code: Option<&str>| Error::Aws {
            call: "ssm:SendCommand",
            code: code.map(AwsCode::new),
            // The message says "throttl…" but the code decides.
            message: "Rate exceeded: throttling".into(),
            next: String::new(),
        };
        assert_eq!(aws(None).aws_kind(), None);
        assert_eq!(
            aws(Some("AccessDeniedException")).aws_kind(),
            Some(AwsKind::AccessDenied)
        );
        assert_eq!(Error::AllHostsFailed.aws_kind(), None);
    }
}
