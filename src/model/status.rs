//! What SSM says about one host's invocation, in flamefire's words.
//!
//! Shared by the wait stage (which derives it from SSM's answers) and
//! progress (which shows it), so neither imports the other.

use std::fmt;

use super::RecorderExit;

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

/// A host that recorded but could not deliver: the recorder's exit 7
/// (docs/contracts.md), with curl's exit code and S3's `<Code>` from its
/// error line. The host's POST is not the laptop's PutObject: it has another
/// network path and another request context, so `doctor` can be green and
/// every host still refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    pub curl_exit: Option<u32>,
    /// S3's error code, e.g. `AccessDenied`, when S3 answered.
    pub s3_code: Option<String>,
}

impl DeliveryFailure {
    pub fn find(exit_code: Option<i32>, output: &str) -> Option<Self> {
        if exit_code.map(RecorderExit::from_code) != Some(RecorderExit::DeliveryFailed) {
            return None;
        }
        let line = output
            .lines()
            .find(|l| l.starts_with("flamefire: error:"))
            .unwrap_or("");
        let between = |open: &str, close: &str| {
            let at = line.find(open)? + open.len();
            let len = line[at..].find(close)?;
            Some(line[at..at + len].to_string())
        };
        Some(DeliveryFailure {
            curl_exit: between("(curl exit ", ")").and_then(|n| n.parse().ok()),
            s3_code: between("<Code>", "</Code>"),
        })
    }

    pub fn next_step(&self) -> &'static str {
        match (self.s3_code.as_deref(), self.curl_exit) {
            (Some("AccessDenied"), _) => {
                "S3 refused this host's POST, not the laptop's calls: a bucket policy, SCP or VPC endpoint policy on s3:authType (POST for hosts, REST-HEADER for the laptop), s3:signatureAge, aws:SourceIp, aws:SourceVpc or aws:SourceVpce must allow the hosts (README: The hosts' path to S3)"
            }
            (Some(_), _) => {
                "S3 refused this host's upload with the code above: fix its cause and rerun"
            }
            // curl: 5 proxy not resolved, 6 host not resolved, 7 no connection,
            // 28 timed out, 35/60 TLS handshake or certificate.
            (None, Some(5 | 6 | 7 | 28 | 35 | 60)) => {
                "this host has no network path to the bucket's S3 endpoint: add an S3 gateway endpoint in its region, a NAT route, or an S3 interface endpoint with private DNS (README: The hosts' path to S3)"
            }
            _ => InvocationStatus::Failed.next_step(),
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
    fn a_delivery_failure_names_the_hosts_path_or_s3s_refusal() {
        let denied = "flamefire: error: upload of stacks.gz to https://b.s3.us-east-1.amazonaws.com/r/i-1/stacks.gz failed (curl exit 22): <Code>AccessDenied</Code> <Message>Access Denied</Message>";
        let d = DeliveryFailure::find(Some(7), denied).unwrap();
        assert_eq!(d.s3_code.as_deref(), Some("AccessDenied"));
        assert_eq!(d.curl_exit, Some(22));
        assert!(d.next_step().contains("s3:authType"), "{}", d.next_step());
        let dns = "flamefire: error: upload of stacks.gz to https://b.s3.eu-west-1.amazonaws.com/x failed (curl exit 6): curl: (6) Could not resolve host";
        let d = DeliveryFailure::find(Some(7), dns).unwrap();
        assert_eq!((d.curl_exit, d.s3_code.clone()), (Some(6), None));
        assert!(d.next_step().contains("gateway endpoint"));
        // Another exit code is another failure, whatever the text says.
        assert_eq!(DeliveryFailure::find(Some(6), denied), None);
        assert_eq!(
            DeliveryFailure::find(Some(7), "flamefire: error: no time left").map(|d| d.next_step()),
            Some(Failed.next_step())
        );
    }

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
