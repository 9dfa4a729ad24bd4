//! Why an input gives no stacks: [`CollapseError`], which names the input
//! (and the line, where one is at fault) and the next step; and [`Stop`],
//! the same facts before the input's name is added, as the parser returns
//! them.

use std::io;
use std::path::{Path, PathBuf};

/// Characters of an offending line quoted in an error message.
const SNIPPET_CHARS: usize = 80;

/// Why an input gives no stacks. Each message names the input (and the
/// line, where one is at fault) and the next step.
#[derive(Debug, thiserror::Error)]
pub enum CollapseError {
    #[error(
        "could not read stacks from {path}\n  next step: check that the file exists and is readable"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "{path} is not a valid gzip file (truncated or corrupt)\n  next step: re-download or re-record it"
    )]
    CorruptGzip {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "{path}:{line}: input format not recognised: no `perf script` event line in the file; line {line} is not understood: `{snippet}`\n  next step: expected `perf script` output or folded stacks: event lines such as `node 1234 [001] 56.789012: 10101010 cpu-clock:` each followed by frames such as `\t7f3a1c func+0x1a (/usr/bin/node)`, or folded lines `frame;frame 12`"
    )]
    Unrecognised {
        path: PathBuf,
        line: u64,
        snippet: String,
    },

    #[error(
        "{path} holds no samples\n  next step: record for longer or while the process is busy, or widen the time window"
    )]
    Empty { path: PathBuf },

    #[error(
        "{path} has no timestamps, so a time window cannot be applied\n  next step: collapse it without a window, or record with `perf script` default fields (they include `time`)"
    )]
    NoTimestamps { path: PathBuf },

    #[error(
        "{path} has no `{wanted}` samples; it holds {found}\n  next step: pass one of those to --event"
    )]
    NoSuchEvent {
        path: PathBuf,
        wanted: String,
        found: String,
    },

    #[error(
        "{path}: --weight period needs a period on every event line, and {missing} of the `{event}` events have none\n  next step: re-run `perf script` with `-F +period`, or use --weight sample"
    )]
    NoPeriods {
        path: PathBuf,
        event: String,
        missing: u64,
    },
}

/// Why folding stopped, before [`Stop::at`] adds the input's name. Every
/// stage of the parser returns it, so that a read error and a parse error
/// each keep their own type.
#[derive(Debug)]
pub(super) enum Stop {
    Read(io::Error),
    NoTimestamps,
    /// `line` is 1-based, in the whole input.
    Unrecognised {
        line: u64,
        snippet: String,
    },
    Empty,
    NoSuchEvent {
        wanted: String,
        found: String,
    },
    NoPeriods {
        event: String,
        missing: u64,
    },
}

impl From<io::Error> for Stop {
    fn from(source: io::Error) -> Self {
        Stop::Read(source)
    }
}

impl Stop {
    /// The error for input `path`; a read error of a gzip input means a
    /// corrupt or truncated file.
    pub(super) fn at(self, path: &Path, gzip: bool) -> CollapseError {
        let path = path.to_path_buf();
        match self {
            Stop::Read(source) if gzip => CollapseError::CorruptGzip { path, source },
            Stop::Read(source) => CollapseError::Read { path, source },
            Stop::NoTimestamps => CollapseError::NoTimestamps { path },
            Stop::Unrecognised { line, snippet } => CollapseError::Unrecognised {
                path,
                line,
                snippet,
            },
            Stop::Empty => CollapseError::Empty { path },
            Stop::NoSuchEvent { wanted, found } => CollapseError::NoSuchEvent {
                path,
                wanted,
                found,
            },
            Stop::NoPeriods { event, missing } => CollapseError::NoPeriods {
                path,
                event,
                missing,
            },
        }
    }
}

/// `line` as quoted in a message: trimmed, at most [`SNIPPET_CHARS`] characters.
pub(super) fn snippet(line: &str) -> String {
    let line = line.trim_end();
    if line.chars().count() > SNIPPET_CHARS {
        let cut: String = line.chars().take(SNIPPET_CHARS).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}
