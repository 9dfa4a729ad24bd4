//! The recorder script's exit codes, a documented contract: the script's
//! header (`ssm-documents/flamefire-record.sh`) and docs/contracts.md,
//! "Outputs". A decision about why a recording failed reads this type, not
//! the script's words.

use std::fmt;

/// How the recorder exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecorderExit {
    /// 0: the stacks and meta.json are written or uploaded.
    Ok,
    /// 1: an unexpected failure (a missing command, a bug).
    Unexpected,
    /// 2: an invalid parameter, or an SSM agent too old to pass them.
    InvalidParameter,
    /// 3: no target process.
    NoTarget,
    /// 4: perf is unavailable and could not be installed.
    PerfUnavailable,
    /// 5: not enough disk, or no work directory.
    NoDisk,
    /// 6: perf record, perf script or gzip failed.
    RecordingFailed,
    /// 7: the output could not be moved or uploaded.
    DeliveryFailed,
    /// 8: another run held the host's lock for 360 s.
    Locked,
    /// 128+N: killed by signal N.
    Signal(i32),
    /// Any other code: not the script's (a shell that could not start it).
    Other(i32),
}

impl RecorderExit {
    pub fn from_code(code: i32) -> Self {
        use RecorderExit::*;
        match code {
            0 => Ok,
            1 => Unexpected,
            2 => InvalidParameter,
            3 => NoTarget,
            4 => PerfUnavailable,
            5 => NoDisk,
            6 => RecordingFailed,
            7 => DeliveryFailed,
            8 => Locked,
            129..=192 => Signal(code - 128),
            other => Other(other),
        }
    }

    pub fn code(self) -> i32 {
        use RecorderExit::*;
        match self {
            Ok => 0,
            Unexpected => 1,
            InvalidParameter => 2,
            NoTarget => 3,
            PerfUnavailable => 4,
            NoDisk => 5,
            RecordingFailed => 6,
            DeliveryFailed => 7,
            Locked => 8,
            Signal(n) => 128 + n,
            Other(code) => code,
        }
    }

    /// The next step when the recorder failed on an instance (its own
    /// message is the cause); `None` when SSM's status says it better.
    pub fn host_next_step(self) -> Option<&'static str> {
        use RecorderExit::*;
        Some(match self {
            NoTarget => {
                "start the app on the host, or name what runs there with --pid or --process"
            }
            PerfUnavailable => {
                "install perf on the host (Amazon Linux, RHEL: perf; Debian: linux-perf; Ubuntu: linux-tools-$(uname -r)), or let the run install it (no --no-install, a reachable package repository)"
            }
            RecordingFailed => {
                "if the kernel refused perf (perf's words above): the SSM agent must run as root (or with CAP_PERFMON), kernel.perf_event_paranoid must allow that user, and kernel lockdown must not be 'confidentiality'; otherwise fix the cause named above"
            }
            NoDisk => {
                "free disk on the host (/var/tmp needs the figure above), or record for less time or at a lower --frequency"
            }
            Locked => "another flamefire run is recording on this host: retry when it has ended",
            InvalidParameter => {
                "update the document (`flamefire document deploy`) and the host's SSM agent (3.3.2746.0 or later)"
            }
            Ok | Unexpected | DeliveryFailed | Signal(_) | Other(_) => return None,
        })
    }

    /// The next step when the recorder ran on this machine (`flamefire
    /// local`); its own message is shown above it.
    pub fn local_next_step(self) -> &'static str {
        use RecorderExit::*;
        match self {
            NoTarget => "start your Node.js app, pass --pid, or try `flamefire local --demo`",
            PerfUnavailable => {
                "install perf yourself (Debian: apt-get install linux-perf) and retry"
            }
            RecordingFailed => {
                "if perf was refused, run as root (sudo), or lower kernel.perf_event_paranoid; otherwise read the recorder's message above"
            }
            NoDisk => "free some disk in /var/tmp or /tmp, or record for less time",
            Locked => "another flamefire run is recording on this machine: retry when it has ended",
            Ok | Unexpected | InvalidParameter | DeliveryFailed | Signal(_) | Other(_) => {
                "read the recorder's messages above; rerun with -v for more"
            }
        }
    }
}

/// The recorder's own fatal line (`flamefire: error: …`), the first one:
/// the script prints it before its warnings, so it survives the agent's
/// truncation of the output. Never "any line containing error": perf and
/// package managers print such lines too.
pub fn error_line(output: &str) -> Option<String> {
    output
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("flamefire: error:"))
        .map(str::to_string)
}

impl fmt::Display for RecorderExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecorderExit::Signal(n) => write!(f, "killed by signal {n}"),
            other => write!(f, "exit {}", other.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_round_trips() {
        for code in (0..=8).chain([130, 137, 143, 9, 127, 255]) {
            assert_eq!(RecorderExit::from_code(code).code(), code, "{code}");
        }
        assert_eq!(RecorderExit::from_code(3), RecorderExit::NoTarget);
        assert_eq!(RecorderExit::from_code(137), RecorderExit::Signal(9));
        assert_eq!(
            RecorderExit::from_code(137).to_string(),
            "killed by signal 9"
        );
    }

    /// The codes are the script's: its header lists each one (the contract
    /// docs/contracts.md pins), so a renumbering there fails here.
    #[test]
    fn the_codes_are_the_ones_the_script_documents() {
        let script = include_str!("../../ssm-documents/flamefire-record.sh");
        let header: String = script
            .lines()
            .skip_while(|l| !l.starts_with("# Exit codes:"))
            .take_while(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(" ");
        for (code, words) in [
            (RecorderExit::Unexpected, "unexpected"),
            (RecorderExit::InvalidParameter, "invalid parameter"),
            (RecorderExit::NoTarget, "no target process"),
            (RecorderExit::PerfUnavailable, "perf unavailable"),
            (RecorderExit::NoDisk, "not enough disk"),
            (RecorderExit::RecordingFailed, "recording failed"),
            (RecorderExit::DeliveryFailed, "delivery failed"),
        ] {
            let entry = format!("{} {words}", code.code());
            assert!(header.contains(&entry), "{entry:?} not in {header:?}");
        }
    }

    #[test]
    fn the_cause_is_the_scripts_own_error_line_not_any_line_with_error() {
        let output = "flamefire: perf is not installed; installing it\n\
            E: error reading package lists\n\
            flamefire: error: upload of stacks.gz failed (curl exit 22)\n\
            flamefire: 2 warning(s): 14/14 pids lack a perf map\n\
            ---Error truncated----";
        assert_eq!(
            error_line(output).as_deref(),
            Some("flamefire: error: upload of stacks.gz failed (curl exit 22)")
        );
        assert_eq!(error_line("some error\nflamefire: note"), None);
    }
}
