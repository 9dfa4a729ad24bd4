//! Stage 3: sent commands → each host's end, as it happens.
//!
//! Input: the batches `dispatch` sent. Output: a stream of `Event`s, one
//! `Ended` per host the moment it is known, so that later stages draw a
//! host while the others still run.
//!
//! A polling round costs about the same for 10 hosts as for 2,000
//! (docs/polling.md has the API limits it relies on):
//! - one ListCommands (filtered to this run's document and start, 50
//!   commands a page) gives every command's status and `CompletedCount`;
//! - one ListObjectsV2 of the run's prefix (1,000 keys a page) shows which
//!   hosts uploaded: a host's `meta.json` is written last, so its presence
//!   means that host's stacks are complete;
//! - ListCommandInvocations only for a command with hosts that ended but
//!   did not upload (failures), to learn their status and output.
//!
//! The decisions live in `Fleet` (fleet.rs), a pure state machine, and the
//! polling cadence in `Schedule` (schedule.rs); the loop here around them
//! only fetches, sleeps and reports. Statuses never go backwards, unknown
//! instances are ignored, and a command not listed yet is "not visible
//! yet". A throttled or failed poll is retried later with jittered
//! backoff: it never ends a host or the run.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc::UnboundedSender;

use crate::aws::{Aws, InvocationReport};
use crate::dispatch::Sent;
use crate::model::InstanceId;
pub use crate::model::InvocationStatus;

mod fleet;
mod schedule;
pub use fleet::{Fleet, HostState, uploaded_in};
pub use schedule::{Backoff, Invocations, Round, Schedule, poll_interval};

/// What the wait stage reports, as it happens.
#[derive(Debug)]
pub enum Event {
    /// A host's status changed (for the progress display).
    Changed(InstanceId, InvocationStatus),
    /// A host ended: `Success` ones are ready to download.
    Ended(Box<HostState>),
    /// A poll failed and will be retried (throttling, a network blip).
    Retrying(String),
}

/// How the wait ended.
pub enum Waited {
    /// Every host ended.
    Done,
    /// The deadline passed: the hosts still open are `GaveUp`, and the
    /// caller cancels them, or they would record and upload after flamefire
    /// has exited (SSM's delivery timeout is 600 s).
    GaveUp(BTreeMap<String, Vec<InstanceId>>),
    /// Ctrl-C: the caller cancels what is still in flight.
    Interrupted(BTreeMap<String, Vec<InstanceId>>),
}

/// Where the run's uploads land, and which document its commands ran.
#[derive(Clone)]
pub struct Watch {
    /// The hosts' region: ListCommands, ListCommandInvocations.
    pub ssm: Aws,
    /// The bucket's region: ListObjectsV2.
    pub s3: Aws,
    pub bucket: String,
    /// `<prefix><run-id>/`
    pub run_prefix: String,
    pub document: String,
    /// A moment before the first SendCommand (ListCommands' InvokedAfter).
    pub sent_after: SystemTime,
    /// Also list the invocations of every open command each SSM round, for
    /// a display with one line per host (Pending, InProgress…). Only for a
    /// fleet small enough for such lines: one or two calls a round.
    pub per_host: bool,
}

/// ListCommandInvocations calls in flight at once (the rest wait).
const PARALLEL_INVOCATION_LISTS: usize = 4;

/// Polls until every host ends, the deadline passes, or `interrupt` fires,
/// sending an `Event` for each change as soon as it is known.
pub async fn until_done(
    watch: &Watch,
    sent: &[Sent],
    recording_ends: Instant,
    deadline: Instant,
    events: UnboundedSender<Event>,
    interrupt: impl Future<Output = ()>,
) -> Waited {
    let mut fleet = Fleet::new(sent);
    let ours: HashSet<String> = sent.iter().map(|s| s.command_id.clone()).collect();
    tokio::pin!(interrupt);
    let mut schedule = Schedule::new(Instant::now(), recording_ends, deadline, watch.per_host);
    let emit = |fleet: &Fleet, changed: Vec<(InstanceId, InvocationStatus)>| {
        for (id, status) in changed {
            let _ = events.send(Event::Changed(id.clone(), status));
            if status.is_terminal() {
                if let Some(state) = fleet.state(&id) {
                    let _ = events.send(Event::Ended(Box::new(state.clone())));
                }
            }
        }
    };
    loop {
        let round = schedule.round(Instant::now());
        let commands = if round.list_commands {
            let listed = tokio::select! {
                listed = watch.ssm.commands_since(&watch.document, watch.sent_after) => listed,
                _ = &mut interrupt => return Waited::Interrupted(fleet.in_flight()),
            };
            schedule.commands_listed(listed.is_ok());
            match listed {
                Ok(all) => all
                    .into_iter()
                    .filter(|c| ours.contains(&c.command_id))
                    .collect(),
                Err(e) => {
                    let _ = events.send(Event::Retrying(format!("ListCommands: {e}")));
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        if round.list_uploads {
            let uploads = tokio::select! {
                u = uploads(watch, &fleet) => u,
                _ = &mut interrupt => return Waited::Interrupted(fleet.in_flight()),
            };
            schedule.uploads_listed(uploads.is_ok());
            match uploads {
                Ok(ids) => {
                    let changed = fleet.observe_uploads(&ids);
                    emit(&fleet, changed);
                }
                Err(e) => {
                    let _ = events.send(Event::Retrying(format!("ListObjectsV2: {e}")));
                }
            }
        }
        let needy = fleet.invocations_to_list(round.invocations, &commands);
        if !needy.is_empty() {
            let listed = tokio::select! {
                l = invocations(&watch.ssm, &needy) => l,
                _ = &mut interrupt => return Waited::Interrupted(fleet.in_flight()),
            };
            let mut failed = None;
            for (command_id, reports) in listed {
                match reports {
                    Ok(reports) => {
                        let changed = fleet.observe(&command_id, &reports);
                        emit(&fleet, changed);
                    }
                    Err(e) => failed = Some(format!("ListCommandInvocations {command_id}: {e}")),
                }
            }
            schedule.invocations_listed(Instant::now(), failed.is_none());
            if let Some(why) = failed {
                let _ = events.send(Event::Retrying(why));
            }
        }
        for c in &commands {
            let changed = fleet.observe_command(&c.command_id, &c.status, &c.status_details);
            emit(&fleet, changed);
        }
        if fleet.is_done() {
            return Waited::Done;
        }
        if round.last {
            let open = fleet.in_flight();
            let ended = fleet.end_unfinished(InvocationStatus::GaveUp);
            let changed = ended
                .into_iter()
                .map(|id| (id, InvocationStatus::GaveUp))
                .collect();
            emit(&fleet, changed);
            return Waited::GaveUp(open);
        }
        let wake = schedule.next_wake(&round, Instant::now());
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = &mut interrupt => return Waited::Interrupted(fleet.in_flight()),
        }
    }
}

/// The open hosts whose `meta.json` is in the bucket. Lists only the keys
/// between the first and the last open host.
async fn uploads(watch: &Watch, fleet: &Fleet) -> crate::error::Result<Vec<InstanceId>> {
    let Some((first, last)) = fleet.open_range() else {
        return Ok(Vec::new());
    };
    let p = &watch.run_prefix;
    // `<run>/i-1` sorts just before `<run>/i-1/meta.json`; `~` after any
    // of `<run>/i-9/`'s keys.
    let start_after = format!("{p}{first}");
    let until = format!("{p}{last}/~");
    let (keys, _pages) = watch
        .s3
        .keys_between(&watch.bucket, p, Some(&start_after), Some(&until))
        .await?;
    Ok(uploaded_in(&keys, p).into_iter().collect())
}

type Listed = (String, crate::error::Result<Vec<InvocationReport>>);

/// ListCommandInvocations for these commands, a few at a time.
async fn invocations(ssm: &Aws, commands: &[String]) -> Vec<Listed> {
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL_INVOCATION_LISTS));
    let mut calls = tokio::task::JoinSet::new();
    for id in commands {
        let (ssm, limit, id) = (ssm.clone(), limit.clone(), id.clone());
        calls.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            let reports = ssm.list_invocations(&id).await;
            (id, reports)
        });
    }
    let mut out: Vec<Listed> = calls.join_all().await;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
