//! Why a host's command ended without a result, and what to do next: one
//! reading of SSM's status, the agent's trace, and the recorder's exit code
//! and error line, shared by `ssm`'s report and `doctor --probe`.

use super::{AgentRefusal, DeliveryFailure, InvocationStatus, RecorderExit};

/// What an invocation that did not succeed says about itself.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    pub status: InvocationStatus,
    pub response_code: Option<i32>,
    /// The step's output (stdout, then stderr), as the agent kept it.
    pub output: &'a str,
    /// The agent's document-level message (`TraceOutput`).
    pub trace_output: &'a str,
    /// SSM's command-level reason, when that is what ended the host.
    pub command_reason: Option<&'a str>,
}

/// One line of cause, and the next step for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub cause: String,
    pub next_step: String,
}

impl Ended<'_> {
    pub fn explain(&self) -> Explained {
        let refused = AgentRefusal::find(self.trace_output, self.output);
        let cause = match (self.command_reason, &refused) {
            (Some(reason), _) => reason.to_string(),
            (None, Some(refusal)) => refusal.cause(),
            (None, None) => self.failure_cause(),
        };
        let undelivered = DeliveryFailure::find(self.response_code, self.output);
        let failed = self.status == InvocationStatus::Failed;
        let next_step = match (refused, undelivered) {
            (Some(_), _) if self.command_reason.is_none() => AgentRefusal::NEXT_STEP,
            (_, Some(d)) if failed => d.next_step(),
            _ if failed => self
                .recorder_exit()
                .and_then(RecorderExit::host_next_step)
                .unwrap_or(self.status.next_step()),
            _ => self.status.next_step(),
        };
        Explained {
            cause,
            next_step: next_step.to_string(),
        }
    }

    fn recorder_exit(&self) -> Option<RecorderExit> {
        self.response_code.map(RecorderExit::from_code)
    }

    /// The recorder's own error line, else its exit code, else SSM's status.
    fn failure_cause(&self) -> String {
        let said = super::recorder::error_line(self.output);
        match (self.status, said) {
            (InvocationStatus::Failed, Some(line)) => line,
            (InvocationStatus::Failed, None) => {
                // The exit code alone, when the output lost the recorder's line.
                let exit = RecorderExit::from_code(self.response_code.unwrap_or(-1));
                format!("the recorder failed ({exit})")
            }
            (InvocationStatus::GaveUp, _) => "no final status before the deadline".into(),
            (other, _) => format!("SSM reported {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: i32, output: &str) -> Explained {
        Ended {
            status: InvocationStatus::Failed,
            response_code: Some(code),
            output,
            trace_output: "",
            command_reason: None,
        }
        .explain()
    }

    #[test]
    fn the_recorders_line_is_the_cause_and_its_exit_code_picks_the_next_step() {
        let e = failed(
            4,
            "flamefire: error: perf is not installed and no package manager (dnf, yum, apt-get, zypper) was found to install it; install perf\n",
        );
        assert!(
            e.cause
                .starts_with("flamefire: error: perf is not installed")
        );
        assert_eq!(
            Some(e.next_step.as_str()),
            RecorderExit::PerfUnavailable.host_next_step()
        );
        let e = failed(6, "flamefire: error: perf record failed (exit 255): …");
        assert!(
            e.next_step.contains("perf_event_paranoid"),
            "{}",
            e.next_step
        );
    }

    #[test]
    fn without_the_recorders_line_the_exit_code_is_the_cause() {
        let e = failed(137, "");
        assert_eq!(e.cause, "the recorder failed (killed by signal 9)");
        assert_eq!(e.next_step, InvocationStatus::Failed.next_step());
    }

    #[test]
    fn a_refused_upload_names_the_request_context_keys() {
        let e = failed(
            7,
            "flamefire: error: before recording: upload of upload-check to https://b.s3.us-east-1.amazonaws.com/p/i-1/upload-check failed (curl exit 22): <Code>AccessDenied</Code>",
        );
        assert!(e.next_step.contains("s3:authType"), "{}", e.next_step);
    }
}
