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
