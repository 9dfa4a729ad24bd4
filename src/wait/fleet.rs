//! The wait stage's decisions: the fleet's progress as a pure state machine
//! ([`Fleet`]), fed by what ListCommands, ListObjectsV2 and
//! ListCommandInvocations returned. No I/O and no clock reads, so that
//! every status sequence is a unit test; the loop in `wait` fetches,
//! sleeps and reports around it.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::{CommandReport, InvocationReport};
use crate::dispatch::Sent;
use crate::model::{Ended, Explained, Host, InstanceId, InvocationStatus};

use super::schedule::Invocations;

#[derive(Debug, Clone)]
pub struct HostState {
    pub host: Host,
    pub command_id: String,
    pub status: InvocationStatus,
    pub response_code: Option<i32>,
    pub output: String,
    /// The agent's document-level message (`TraceOutput`), if any.
    pub trace_output: String,
    /// SSM's command-level status, when that is what ended this host.
    pub command_reason: Option<String>,
    /// Its `meta.json` is in the bucket: the upload is complete.
    pub uploaded: bool,
}

impl HostState {
    /// Why this host ended without a result, and the next step.
    pub fn explain(&self) -> Explained {
        Ended {
            status: self.status,
            response_code: self.response_code,
            output: &self.output,
            trace_output: &self.trace_output,
            command_reason: self.command_reason.as_deref(),
        }
        .explain()
    }
}

/// The whole fleet's progress. Pure: no I/O, no clock reads.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    hosts: BTreeMap<InstanceId, HostState>,
    /// Commands ListCommands reported ended, with their status and details.
    ended: BTreeMap<String, (String, String)>,
    /// Ended commands whose invocations were listed since (successfully).
    ended_listed: BTreeSet<String>,
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
                        trace_output: String::new(),
                        command_reason: None,
                        uploaded: false,
                    },
                );
            }
        }
        Fleet {
            hosts,
            ended: BTreeMap::new(),
            ended_listed: BTreeSet::new(),
        }
    }

    /// Hosts whose `meta.json` is listed end as `Success`, even before SSM
    /// says so: the recorder uploads it last and has nothing left to do.
    pub fn observe_uploads<'a>(
        &mut self,
        uploaded: impl IntoIterator<Item = &'a InstanceId>,
    ) -> Vec<(InstanceId, InvocationStatus)> {
        let mut changed = Vec::new();
        for id in uploaded {
            if let Some(s) = self.hosts.get_mut(id) {
                if !s.status.is_terminal() {
                    s.status = InvocationStatus::Success;
                    s.uploaded = true;
                    changed.push((id.clone(), InvocationStatus::Success));
                }
            }
        }
        changed
    }

    /// The commands whose invocations this round lists: every open one on a
    /// sweep, else those `needs_invocations` picks out of `commands`.
    pub fn invocations_to_list(
        &self,
        what: Invocations,
        commands: &[CommandReport],
    ) -> Vec<String> {
        match what {
            Invocations::Sweep => self.in_flight().into_keys().collect(),
            Invocations::Needy => commands
                .iter()
                .filter(|c| self.needs_invocations(c))
                .map(|c| c.command_id.clone())
                .collect(),
            Invocations::Skip => Vec::new(),
        }
    }

    /// Whether a command needs ListCommandInvocations: SSM counts more
    /// failed hosts than we know of (failed hosts never upload, so hosts
    /// that uploaded before SSM counted them cannot hide these), more ended
    /// hosts than we know the end of (those that ended without an upload or
    /// an error: Undeliverable, Cancelled, a Success without upload), or
    /// the command ended with hosts still open.
    pub fn needs_invocations(&self, command: &CommandReport) -> bool {
        let (mut known, mut failed, mut open) = (0u32, 0u32, 0u32);
        for s in self.hosts.values() {
            if s.command_id != command.command_id {
                continue;
            }
            if !s.status.is_terminal() {
                open += 1;
            } else {
                known += 1;
                if s.status != InvocationStatus::Success {
                    failed += 1;
                }
            }
        }
        open > 0
            && (command.errors > failed
                || command.completed > known
                || matches!(
                    command.status.as_str(),
                    "Success" | "Failed" | "TimedOut" | "Cancelled"
                ))
    }

    /// Applies one ListCommands row. A command that SSM reports ended
    /// with `Failed`, `TimedOut` or `Cancelled` ends its hosts that still
    /// have no final status, with SSM's reason, but only once its
    /// invocations were listed (successfully: not throttled) after it was
    /// first reported ended, so that those hosts had the chance to get
    /// their own final status and output.
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
        if !self.ended_listed.contains(command_id) {
            return Vec::new();
        }
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
        if self.ended.contains_key(command_id) {
            self.ended_listed.insert(command_id.to_string());
        }
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
            state.trace_output.clone_from(&r.trace_output);
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

    /// The first and last unfinished instance ids, in key order: the
    /// stretch of the run's keys still worth listing.
    pub fn open_range(&self) -> Option<(&InstanceId, &InstanceId)> {
        let mut open = self
            .hosts
            .iter()
            .filter(|(_, s)| !s.status.is_terminal())
            .map(|(id, _)| id);
        let first = open.next()?;
        Some((first, open.next_back().unwrap_or(first)))
    }

    pub fn state(&self, id: &InstanceId) -> Option<&HostState> {
        self.hosts.get(id)
    }

    pub fn is_done(&self) -> bool {
        self.hosts.values().all(|s| s.status.is_terminal())
    }

    #[cfg(test)]
    pub fn into_states(self) -> Vec<HostState> {
        self.hosts.into_values().collect()
    }
}

/// The hosts whose `meta.json` is among `keys`.
pub fn uploaded_in(keys: &[String], run_prefix: &str) -> BTreeSet<InstanceId> {
    keys.iter()
        .filter_map(|k| k.strip_prefix(run_prefix)?.strip_suffix("/meta.json"))
        .filter_map(InstanceId::parse)
        .collect()
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
            trace_output: String::new(),
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

    fn counts(id: &str, status: &str, completed: u32) -> CommandReport {
        CommandReport {
            command_id: id.into(),
            status: status.into(),
            status_details: status.into(),
            completed,
            errors: 0,
        }
    }

    #[test]
    fn an_upload_ends_a_host_before_ssm_does() {
        let mut f = fleet();
        let changed = f.observe_uploads(&[host(2).id, host(9).id]);
        assert_eq!(changed, vec![(host(2).id, Success)], "strangers ignored");
        assert!(f.state(&host(2).id).unwrap().uploaded);
        assert!(f.observe_uploads(&[host(2).id]).is_empty(), "once");
        // SSM's later word does not change an uploaded host.
        assert!(f.observe("c1", &[report(2, "Failed", "Failed")]).is_empty());
    }

    #[test]
    fn invocations_are_listed_only_for_hosts_that_ended_without_uploading() {
        let mut f = fleet();
        // Nothing ended: no call.
        assert!(!f.needs_invocations(&counts("c1", "InProgress", 0)));
        // One ended and it uploaded: still no call.
        f.observe_uploads(&[host(1).id]);
        assert!(!f.needs_invocations(&counts("c1", "InProgress", 1)));
        // Two ended, one unexplained: list c1's invocations.
        assert!(f.needs_invocations(&counts("c1", "InProgress", 2)));
        // A command that ended with an open host: list it.
        assert!(f.needs_invocations(&counts("c2", "Failed", 0)));
        // A host that uploaded before SSM counted it hides a failure from
        // the completed count, not from the error count.
        let mut f2 = fleet();
        f2.observe_uploads(&[host(1).id]);
        assert!(!f2.needs_invocations(&counts("c1", "InProgress", 1)));
        let failed_one = CommandReport {
            errors: 1,
            ..counts("c1", "InProgress", 1)
        };
        assert!(f2.needs_invocations(&failed_one));
        // Every host known: never.
        f.observe_uploads(&[host(2).id, host(3).id]);
        assert!(!f.needs_invocations(&counts("c1", "Success", 2)));
    }

    #[test]
    fn only_the_keys_of_open_hosts_are_listed() {
        let mut f = fleet();
        assert_eq!(f.open_range(), Some((&host(1).id, &host(3).id)));
        f.observe_uploads(&[host(1).id, host(3).id]);
        assert_eq!(f.open_range(), Some((&host(2).id, &host(2).id)));
        f.observe_uploads(&[host(2).id]);
        assert_eq!(f.open_range(), None);
        let keys: Vec<String> = [
            "p/r/i-00000000000000001/meta.json",
            "p/r/i-00000000000000002/stacks.gz",
            "p/r/run.json",
            "p/r/i-00000000000000003/meta.json/x",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            uploaded_in(&keys, "p/r/").into_iter().collect::<Vec<_>>(),
            vec![host(1).id]
        );
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
        // …that succeeds (a throttled one does not count)…
        assert!(f.observe_command("c1", "Failed", "Failed").is_empty());
        f.observe("c1", &[report(2, "InProgress", "")]);
        // …and can still give the host its own final status.
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
