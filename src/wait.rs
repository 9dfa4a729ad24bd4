//! Stage 3: sent commands → the final status of every host.
//!
//! Input: the batches `dispatch` sent. Output: each host's final
//! `InvocationStatus` and plugin output. The decisions live in `Fleet`, a pure
//! state machine fed with what ListCommandInvocations reports; the poll loop
//! around it only fetches, sleeps (2–5 s) and draws progress. Statuses
//! never go backwards, unknown instances are ignored, and an empty list or a
//! missing invocation right after SendCommand just means "not visible yet".

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::aws::{Aws, InvocationReport};
use crate::dispatch::Sent;
use crate::progress::HostBars;
use crate::targets::{Host, InstanceId};

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

#[derive(Debug, Clone)]
pub struct HostState {
    pub host: Host,
    pub command_id: String,
    pub status: InvocationStatus,
    pub response_code: Option<i32>,
    pub output: String,
    /// SSM's command-level status, when that is what ended this host.
    pub command_reason: Option<String>,
}

/// The whole fleet's progress. Pure: no I/O, no clock reads.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    hosts: BTreeMap<InstanceId, HostState>,
    /// Commands ListCommands reported ended, with their status and details.
    ended: BTreeMap<String, (String, String)>,
}

impl Fleet {
    pub fn new(sent: &[Sent]) -> Self {
        let mut hosts = BTreeMap::new();
        for batch in sent {
            for host in &batch.hosts {
                hosts.insert(
                    host.id.clone(),
                    HostState {
                        host: host.clone(),
                        command_id: batch.command_id.clone(),
                        status: InvocationStatus::NotVisible,
                        response_code: None,
                        output: String::new(),
                        command_reason: None,
                    },
                );
            }
        }
        Fleet {
            hosts,
            ended: BTreeMap::new(),
        }
    }

    /// Applies one ListCommands answer. A command that SSM reports ended
    /// with `Failed`, `TimedOut` or `Cancelled` ends its hosts that still
    /// have no final status, with SSM's reason, but only when it was already
    /// reported ended in an earlier round: the invocation poll since then
    /// had its chance to give those hosts their own final status.
    pub fn observe_command(
        &mut self,
        command_id: &str,
        status: &str,
        details: &str,
    ) -> Vec<(InstanceId, InvocationStatus)> {
        if !matches!(status, "Failed" | "TimedOut" | "Cancelled") {
            return Vec::new();
        }
        let Some((was, was_details)) = self.ended.get(command_id).cloned() else {
            self.ended
                .insert(command_id.to_string(), (status.into(), details.into()));
            return Vec::new();
        };
        let reason = if was_details.is_empty() || was_details == was {
            format!("SSM ended command {command_id} as {was}")
        } else {
            format!("SSM ended command {command_id} as {was} ({was_details})")
        };
        let mut changed = Vec::new();
        for (id, s) in &mut self.hosts {
            if s.command_id == command_id && !s.status.is_terminal() {
                s.status = InvocationStatus::CommandEnded;
                s.command_reason = Some(reason.clone());
                changed.push((id.clone(), InvocationStatus::CommandEnded));
            }
        }
        changed
    }

    /// Applies one ListCommandInvocations answer for `command_id`; returns
    /// the hosts whose status changed.
    pub fn observe(
        &mut self,
        command_id: &str,
        reports: &[InvocationReport],
    ) -> Vec<(InstanceId, InvocationStatus)> {
        let mut changed = Vec::new();
        for r in reports {
            let Some(id) = InstanceId::parse(&r.instance_id) else {
                continue;
            };
            let Some(state) = self.hosts.get_mut(&id) else {
                continue; // not ours (e.g. an emulator fanning out)
            };
            if state.command_id != command_id || state.status.is_terminal() {
                continue;
            }
            let next = InvocationStatus::from_ssm(&r.status, &r.status_details);
            state.output.clone_from(&r.output);
            state.response_code = r.response_code;
            if next != state.status {
                state.status = next;
                changed.push((id, next));
            }
        }
        changed
    }

    /// Ends every unfinished host with `status` (deadline, or cancellation).
    pub fn end_unfinished(&mut self, status: InvocationStatus) -> Vec<InstanceId> {
        let mut ended = Vec::new();
        for (id, s) in &mut self.hosts {
            if !s.status.is_terminal() {
                s.status = status;
                ended.push(id.clone());
            }
        }
        ended
    }

    /// Command ids that still have unfinished hosts, with those hosts.
    pub fn in_flight(&self) -> BTreeMap<String, Vec<InstanceId>> {
        let mut out: BTreeMap<String, Vec<InstanceId>> = BTreeMap::new();
        for (id, s) in &self.hosts {
            if !s.status.is_terminal() {
                out.entry(s.command_id.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        out
    }

    pub fn is_done(&self) -> bool {
        self.hosts.values().all(|s| s.status.is_terminal())
    }

    pub fn into_states(self) -> Vec<HostState> {
        self.hosts.into_values().collect()
    }
}

/// How the wait ended.
pub enum Waited {
    Done(Fleet),
    /// Ctrl-C: the caller cancels what is still in flight.
    Interrupted(Fleet),
}

/// The shortest pause between polls (SSM needs about that long to list a new
/// command, and faster polling only spends API calls).
const MIN_POLL: Duration = Duration::from_secs(2);

/// Pause before the next poll. While the hosts record, back off from 2 s to
/// 5 s (a long recording costs few calls) but wake at the recording's end;
/// after it, poll every 2 s, since hosts finish within seconds of it and each
/// second of lag is a second the on-call engineer waits.
pub fn poll_interval(round: u32, until_recording_ends: Duration) -> Duration {
    if until_recording_ends.is_zero() {
        return MIN_POLL;
    }
    let ms = 2000.0 * 1.25f64.powi(round.min(10) as i32);
    let backoff = Duration::from_millis(ms.min(5000.0) as u64);
    backoff.min(until_recording_ends).max(MIN_POLL)
}

/// Polls until every host ends, the deadline passes, or `interrupt` fires.
/// Each round lists every in-flight command concurrently (one call per 50
/// hosts, paginated).
pub async fn until_done(
    aws: &Aws,
    sent: &[Sent],
    recording_ends: Instant,
    deadline: Instant,
    bars: &HostBars,
    interrupt: impl Future<Output = ()>,
) -> Waited {
    let mut fleet = Fleet::new(sent);
    tokio::pin!(interrupt);
    let mut round = 0;
    loop {
        let mut polls = tokio::task::JoinSet::new();
        for (command_id, _) in fleet.in_flight() {
            let aws = aws.clone();
            polls.spawn(async move {
                let (reports, command) = tokio::join!(
                    aws.list_invocations(&command_id),
                    aws.command_status(&command_id)
                );
                (command_id, reports, command)
            });
        }
        let answers = tokio::select! {
            answers = polls.join_all() => answers,
            _ = &mut interrupt => return Waited::Interrupted(fleet),
        };
        for (command_id, reports, command) in answers {
            match reports {
                Ok(reports) => {
                    for (id, status) in fleet.observe(&command_id, &reports) {
                        bars.update(&id, status);
                    }
                }
                // A failed poll is not a failed host: log it and poll again.
                Err(e) => bars.note(&format!("polling {command_id} failed, retrying: {e}")),
            }
            match command {
                Ok(Some(c)) => {
                    for (id, status) in
                        fleet.observe_command(&c.command_id, &c.status, &c.status_details)
                    {
                        bars.update(&id, status);
                    }
                }
                Ok(None) => {}
                Err(e) => bars.note(&format!(
                    "ListCommands for {command_id} failed, retrying: {e}"
                )),
            }
        }
        if fleet.is_done() {
            return Waited::Done(fleet);
        }
        if Instant::now() >= deadline {
            for id in fleet.end_unfinished(InvocationStatus::GaveUp) {
                bars.update(&id, InvocationStatus::GaveUp);
            }
            return Waited::Done(fleet);
        }
        tokio::select! {
            _ = tokio::time::sleep(poll_interval(
                round,
                recording_ends.saturating_duration_since(Instant::now()),
            )) => {}
            _ = &mut interrupt => return Waited::Interrupted(fleet),
        }
        round += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvocationStatus::*;

    fn host(n: u32) -> Host {
        Host {
            id: InstanceId::parse(&format!("i-{n:017x}")).unwrap(),
            name: None,
        }
    }

    fn report(n: u32, status: &str, details: &str) -> InvocationReport {
        InvocationReport {
            instance_id: format!("i-{n:017x}"),
            status: status.into(),
            status_details: details.into(),
            response_code: Some(0),
            output: format!("out {n}"),
        }
    }

    fn fleet() -> Fleet {
        Fleet::new(&[
            Sent {
                command_id: "c1".into(),
                hosts: vec![host(1), host(2)],
            },
            Sent {
                command_id: "c2".into(),
                hosts: vec![host(3)],
            },
        ])
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

    #[test]
    fn pending_inprogress_failed_sequence() {
        let mut f = fleet();
        assert!(
            f.observe("c1", &[]).is_empty(),
            "empty list right after send"
        );
        assert_eq!(
            f.observe("c1", &[report(1, "Pending", "Pending")]),
            vec![(host(1).id, Pending)]
        );
        f.observe("c1", &[report(1, "InProgress", "InProgress")]);
        let changed = f.observe(
            "c1",
            &[
                report(1, "Failed", "Failed"),
                report(2, "Success", "Success"),
            ],
        );
        assert_eq!(changed.len(), 2);
        assert!(!f.is_done(), "c2's host is still unseen");
        assert_eq!(f.in_flight().keys().collect::<Vec<_>>(), vec!["c2"]);
        f.observe("c2", &[report(3, "Success", "Success")]);
        assert!(f.is_done());
    }

    #[test]
    fn terminal_statuses_are_sticky_and_strangers_ignored() {
        let mut f = fleet();
        f.observe("c1", &[report(1, "Success", "Success")]);
        assert!(
            f.observe("c1", &[report(1, "InProgress", "InProgress")])
                .is_empty()
        );
        // An instance we never sent to (moto fans out), or a report under the wrong command.
        assert!(
            f.observe("c1", &[report(9, "Success", "Success")])
                .is_empty()
        );
        assert!(
            f.observe("c2", &[report(2, "Success", "Success")])
                .is_empty()
        );
        let states = f.into_states();
        assert_eq!(states[0].status, Success);
        assert_eq!(states[1].status, NotVisible);
    }

    #[test]
    fn deadline_ends_only_unfinished_hosts() {
        let mut f = fleet();
        f.observe(
            "c1",
            &[report(1, "Success", "Success"), report(2, "InProgress", "")],
        );
        let ended = f.end_unfinished(GaveUp);
        assert_eq!(ended, vec![host(2).id, host(3).id]);
        assert!(f.is_done());
    }

    #[test]
    fn polling_backs_off_from_two_to_five_seconds_then_follows_the_end() {
        let long = Duration::from_secs(300);
        assert_eq!(poll_interval(0, long), Duration::from_secs(2));
        assert!(poll_interval(2, long) > poll_interval(1, long));
        assert_eq!(poll_interval(50, long), Duration::from_secs(5));
        // Wakes at the end of the recording, but never polls faster than 2 s.
        assert_eq!(
            poll_interval(50, Duration::from_millis(3500)),
            Duration::from_millis(3500)
        );
        assert_eq!(
            poll_interval(50, Duration::from_millis(500)),
            Duration::from_secs(2)
        );
        assert_eq!(poll_interval(50, Duration::ZERO), Duration::from_secs(2));
    }

    #[test]
    fn a_failed_command_ends_its_silent_hosts_with_ssms_reason() {
        let mut f = fleet();
        f.observe("c1", &[report(1, "Success", "Success")]);
        // Success and in-progress command states end nothing.
        assert!(
            f.observe_command("c1", "InProgress", "InProgress")
                .is_empty()
        );
        assert!(f.observe_command("c1", "Success", "Success").is_empty());
        // The first report of a failure waits for one more invocation poll…
        assert!(f.observe_command("c1", "Failed", "Failed").is_empty());
        // …which can still give the host its own final status.
        let changed = f.observe_command("c1", "Failed", "Failed");
        assert_eq!(changed, vec![(host(2).id, CommandEnded)]);
        assert!(!f.is_done(), "c2 is untouched");
        let states = f.into_states();
        assert_eq!(states[0].status, Success, "a final status is kept");
        assert_eq!(
            states[1].command_reason.as_deref(),
            Some("SSM ended command c1 as Failed")
        );

        let mut f = fleet();
        f.observe_command("c2", "TimedOut", "DeliveryTimedOut");
        f.observe("c2", &[report(3, "TimedOut", "DeliveryTimedOut")]);
        assert!(
            f.observe_command("c2", "TimedOut", "DeliveryTimedOut")
                .is_empty()
        );
    }
}
