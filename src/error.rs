//! Errors that end a whole run, and the exit code each one maps to.
//!
//! A failure of one host in a fleet is *not* an `Error`: it is a
//! `report::HostOutcome` and the run carries on (see `cmd/ssm.rs`). Every message
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
    #[error("{call} failed: {message}\n  next step: {next}")]
    Aws {
        call: &'static str,
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

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
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
