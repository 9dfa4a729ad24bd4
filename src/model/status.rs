//! What SSM says about one host's invocation, in flamefire's words.
//!
//! Shared by the wait stage (which derives it from SSM's answers) and
//! progress (which shows it), so neither imports the other.

use std::fmt;

/// Every status SSM reports, plus the two flamefire adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationStatus {
    /// Sent, but SSM does not list the invocation yet.
    NotVisible,
    Pending,
    InProgress,
    Delayed,
    Cancelling,
    Success,
    Cancelled,
    TimedOut,
    Failed,
    Undeliverable,
    Terminated,
    InvalidPlatform,
    AccessDenied,
    /// SSM ended the whole command (ListCommands) without a final status
    /// for this host; `HostState::command_reason` says how.
    CommandEnded,
    /// flamefire's own deadline passed before SSM reported an end.
    GaveUp,
}

impl InvocationStatus {
    /// Maps SSM's `Status` and `StatusDetails`; the details are more precise
    /// (`Undeliverable`, `DeliveryTimedOut`, …) so they win.
    pub fn from_ssm(status: &str, details: &str) -> Self {
        use InvocationStatus::*;
        match details {
            "Undeliverable" => return Undeliverable,
            "Terminated" => return Terminated,
            "InvalidPlatform" => return InvalidPlatform,
            "AccessDenied" => return AccessDenied,
            "DeliveryTimedOut"
            | "ExecutionTimedOut"
            | "Delivery Timed Out"
            | "Execution Timed Out" => return TimedOut,
            _ => {}
        }
        match status {
            "Pending" => Pending,
            "InProgress" => InProgress,
            "Delayed" => Delayed,
            "Cancelling" => Cancelling,
            "Success" => Success,
            "Cancelled" => Cancelled,
            "TimedOut" => TimedOut,
            "Failed" => Failed,
            // An unknown status is not progress: keep waiting, the deadline bounds it.
            _ => Pending,
        }
    }

    pub fn is_terminal(self) -> bool {
        use InvocationStatus::*;
        !matches!(
            self,
            NotVisible | Pending | InProgress | Delayed | Cancelling
        )
    }

    /// The next step shown for a host that ended in this status.
    pub fn next_step(self) -> &'static str {
        use InvocationStatus::*;
        match self {
            Success => "",
            Failed => "read the host's stderr above; rerun with --pid or fix the cause on the host",
            TimedOut => {
                "the agent did not deliver or finish in time: check the instance is up and its agent online"
            }
            Undeliverable => {
                "SSM could not reach the instance: check it is running and its SSM agent is online"
            }
            // "Terminated" is about the command, not the instance: "The
            // parent command exceeded its MaxErrors limit and subsequent
            // command invocations were canceled by the system"
            // (https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html).
            Terminated => {
                "SSM stopped this host's invocation because the command reached its MaxErrors limit (the instance itself was not terminated): rerun for this host"
            }
            CommandEnded => {
                "SSM ended the whole command; its reason is above: fix it (see `flamefire doctor`) and rerun"
            }
            InvalidPlatform => "the document runs on Linux only",
            AccessDenied => {
                "the instance's SSM agent was denied: check its instance profile has AmazonSSMManagedInstanceCore"
            }
            Cancelled | Cancelling => "the command was cancelled (by Ctrl-C or in the console)",
            GaveUp => "raise --timeout, or check the host with `flamefire doctor`",
            NotVisible | Pending | InProgress | Delayed => "",
        }
    }
}

/// The SSM agent's refusal of a document before it ran any step: its
/// parameter check failed (amazon-ssm-agent
/// `agent/framework/docparser/parameterstore/parameterstore.go`
/// `ValidateSSMParameters`: "all errors during param validation errors: …",
/// sent as the document's trace output with status `Failed`). Nothing ran on
/// the host, so there is no exit code and no recorder output to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRefusal {
    /// The agent's message, its lines joined with "; ".
    pub message: String,
}

impl AgentRefusal {
    /// The agent's prefix of a parameter-check failure.
    const PREFIX: &'static str = "all errors during param validation errors:";

    /// The refusal in the invocation's trace output or plugin output, if
    /// either holds one (the agent sends it as its document-level reply).
    pub fn find(trace_output: &str, output: &str) -> Option<Self> {
        [trace_output, output].into_iter().find_map(|text| {
            let at = text.find(Self::PREFIX)?;
            let lines: Vec<&str> = text[at..]
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("----------ERROR"))
                .collect();
            Some(AgentRefusal {
                message: lines.join("; "),
            })
        })
    }

    /// The host's cause, in one line.
    pub fn cause(&self) -> String {
        format!(
            "the host's SSM agent refused the document before running it: {}",
            self.message
        )
    }

    pub const NEXT_STEP: &'static str = "the agent checks every parameter against its allowedPattern with Go's regexp (RE2: no repeat count over 1000) before running anything: deploy flamefire's own document with `flamefire document deploy`, then rerun";
}

impl fmt::Display for InvocationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            InvocationStatus::NotVisible => "Sent",
            InvocationStatus::GaveUp => "GaveUp",
            InvocationStatus::CommandEnded => "CommandEnded",
            other => return write!(f, "{other:?}"),
        };
        f.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvocationStatus::*;

    #[test]
    fn finds_the_agents_refusal_in_trace_or_output() {
        let msg = "all errors during param validation errors: error thrown in 'AllowedRegexParamValidator' while validating parameter /A/: x\nerror thrown in 'AllowedRegexParamValidator' while validating parameter /B/: y";
        let r = AgentRefusal::find(msg, "").unwrap();
        assert!(r.message.ends_with("parameter /A/: x; error thrown in 'AllowedRegexParamValidator' while validating parameter /B/: y"));
        let in_output = format!("\n----------ERROR-------\n{msg}");
        assert_eq!(AgentRefusal::find("", &in_output), Some(r));
        assert_eq!(
            AgentRefusal::find("", "flamefire: error: perf failed"),
            None
        );
    }

    #[test]
    fn maps_every_status() {
        let cases = [
            ("Pending", "Pending", Pending),
            ("InProgress", "InProgress", InProgress),
            ("Delayed", "Delayed", Delayed),
            ("Success", "Success", Success),
            ("Cancelled", "Cancelled", Cancelled),
            ("TimedOut", "DeliveryTimedOut", TimedOut),
            ("TimedOut", "ExecutionTimedOut", TimedOut),
            ("Failed", "Failed", Failed),
            ("Failed", "Undeliverable", Undeliverable),
            ("Failed", "Terminated", Terminated),
            ("Failed", "InvalidPlatform", InvalidPlatform),
            ("Failed", "AccessDenied", AccessDenied),
            ("Cancelling", "Cancelling", Cancelling),
            ("SomethingNew", "", Pending),
        ];
        assert!(Terminated.next_step().contains("MaxErrors"));
        assert!(Terminated.next_step().contains("not terminated"));
        for (status, details, want) in cases {
            assert_eq!(
                InvocationStatus::from_ssm(status, details),
                want,
                "{status}/{details}"
            );
        }
    }
}
