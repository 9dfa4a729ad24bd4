//! `doctor --probe`: the hosts' own pre-flight (issue 17 §1).
//!
//! doctor's other checks speak for this laptop. A host uploads from its own
//! network with a presigned POST (another `s3:authType`, its own
//! `aws:SourceIp`/`aws:SourceVpce`, its VPC endpoint's policy), and records
//! with its own perf and kernel. So the document goes out with `Probe=true`:
//! each host makes every check a run makes before it records, POSTs a small
//! `upload-check` object through a policy signed as a run's is, finds perf
//! (installing nothing) and records one second of the whole host, keeping
//! nothing. Cost: one SendCommand per 50 hosts, and seconds on each host.
//!
//! Input: the resolved hosts. Output: one `Check` per host, with the
//! recorder's own words and the next step when it failed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Check, Level, first_line, next_of};
use crate::aws::Aws;
use crate::dispatch::{self, DispatchPlan};
use crate::document::{self, Pids, RecordParams};
use crate::model::{Host, InstanceId, InvocationStatus, RunLocation};
use crate::presign;
use crate::progress::{HostBars, Progress};
use crate::wait::{self, Event, HostState, Waited, Watch};

/// What the hosts are asked to check, as a run would be asked.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// A run id of its own, so that the probe objects never mix with a run's.
    pub run_id: String,
    pub process_name: String,
    pub no_install: bool,
    /// How long the hosts get to answer.
    pub timeout: Duration,
}

/// Where the probe's commands and objects go.
pub struct ProbeTarget<'a> {
    pub ssm: &'a Aws,
    pub s3: &'a Aws,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub document: &'a str,
}

/// SSM's delivery timeout for a probe: a host that cannot be reached in a
/// minute is reported as such, not waited for (30 s is SSM's least).
const DELIVERY_TIMEOUT_S: i32 = 60;
/// The probe object is 23 bytes; the policy allows no more than this.
const MAX_PROBE_BYTES: u64 = 1024;
/// ListCommands' InvokedAfter: a moment before the SendCommand, with room
/// for this machine's clock (as `ssm` does).
const INVOKED_AFTER_SLACK: Duration = Duration::from_secs(600);

pub async fn hosts(
    to: &ProbeTarget<'_>,
    plan: &ProbePlan,
    hosts: &[Host],
    progress: &Progress,
) -> Vec<Check> {
    let params = match params(to, plan) {
        Ok(p) => p,
        Err(e) => return vec![Check::failed("probe", &e)],
    };
    let sent_after = to.ssm.now() - INVOKED_AFTER_SLACK;
    let dispatch_plan = DispatchPlan {
        document: to.document.to_string(),
        params,
        delivery_timeout_s: DELIVERY_TIMEOUT_S,
        comment: format!("flamefire doctor --probe {}", plan.run_id),
    };
    progress.info(&format!(
        "probing {} host(s): {} with Probe=true (records nothing)…",
        hosts.len(),
        to.document
    ));
    let (sent, not_sent) = dispatch::send(to.ssm, &dispatch_plan, hosts).await;
    let mut checks: BTreeMap<InstanceId, Check> = BTreeMap::new();
    for batch in &not_sent {
        let text = batch.error.to_string();
        for h in &batch.hosts {
            let check = if batch.not_valid {
                Check::bad(
                    Level::Warn,
                    h.label(),
                    "SSM refused it at SendCommand: shutting down, terminated, stopped, or its agent not running",
                    "a run skips it; check the instance if it should be up",
                )
            } else {
                Check::bad(Level::Fail, h.label(), first_line(&text), next_of(&text))
            };
            checks.insert(h.id.clone(), check);
        }
    }
    if !sent.is_empty() {
        let watch = Watch {
            ssm: to.ssm.clone(),
            s3: to.s3.clone(),
            bucket: to.bucket.to_string(),
            run_prefix: RunLocation::new(to.bucket, to.prefix, &plan.run_id).run_prefix(),
            document: to.document.to_string(),
            sent_after,
            per_host: crate::progress::one_line_per_host(hosts.len()),
        };
        for state in wait_for(&watch, &sent, plan.timeout, progress).await {
            checks.insert(state.host.id.clone(), judge(&state));
        }
    }
    checks.into_values().collect()
}

/// The document's parameters for a probe: a run's, with `Probe=true`, one
/// second, and an upload policy for the probe's own prefix.
fn params(to: &ProbeTarget<'_>, plan: &ProbePlan) -> crate::error::Result<RecordParams> {
    let upload = presign::upload_fields(
        to.s3,
        to.bucket,
        RunLocation::new(to.bucket, to.prefix, &plan.run_id).run_prefix(),
        MAX_PROBE_BYTES,
        to.s3.now(),
        plan.timeout + Duration::from_secs(300),
    )?;
    let params = RecordParams {
        duration_s: 1,
        frequency_hz: 99,
        pids: Pids::All,
        process_name: plan.process_name.clone(),
        start_at: 0,
        run_id: plan.run_id.clone(),
        upload: Some(upload),
        no_install: plan.no_install,
        probe: true,
    };
    params.validate(document::embedded()?)?;
    Ok(params)
}

/// Waits for every host to answer, at most `timeout`; cancels the hosts
/// still open then (or on Ctrl-C), so that no probe runs on after doctor.
async fn wait_for(
    watch: &Watch,
    sent: &[dispatch::Sent],
    timeout: Duration,
    progress: &Progress,
) -> Vec<HostState> {
    let hosts: Vec<Host> = sent.iter().flat_map(|s| s.hosts.clone()).collect();
    let bars = progress.hosts(&hosts, timeout);
    let (tx, rx) = mpsc::unbounded_channel();
    let now = Instant::now();
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let (waited, mut ended) = tokio::join!(
        wait::until_done(watch, sent, now, now + timeout, tx, interrupt),
        collect(rx, &bars),
    );
    bars.finish();
    let open = match waited {
        Waited::Done => BTreeMap::new(),
        Waited::GaveUp(open) | Waited::Interrupted(open) => open,
    };
    for (command_id, ids) in open {
        if let Err(e) = watch.ssm.cancel_command(&command_id, &ids).await {
            progress.note(&format!("could not cancel the probe {command_id}: {e}"));
        }
        // Hosts a Ctrl-C left open have no Ended event: say so for each.
        for id in ids {
            if let Some(host) = hosts.iter().find(|h| h.id == id) {
                if !ended.iter().any(|s| s.host.id == id) {
                    ended.push(unanswered(host, &command_id));
                }
            }
        }
    }
    ended
}

/// The hosts' ends, as `wait` reports them, with the progress lines kept up.
async fn collect(mut events: mpsc::UnboundedReceiver<Event>, bars: &HostBars) -> Vec<HostState> {
    let mut ended = Vec::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Changed(id, status) => bars.update(&id, status),
            Event::Ended(state) => ended.push(*state),
            Event::Retrying(why) => bars.retrying(&why),
        }
    }
    ended
}

fn unanswered(host: &Host, command_id: &str) -> HostState {
    HostState {
        host: host.clone(),
        command_id: command_id.to_string(),
        status: InvocationStatus::Cancelled,
        response_code: None,
        output: String::new(),
        trace_output: String::new(),
        command_reason: None,
        uploaded: false,
    }
}

/// The recorder's `probe ok` line (and its warnings), else why it failed.
fn judge(state: &HostState) -> Check {
    let label = state.host.label();
    let said = |prefix: &str| {
        state
            .output
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(str::to_string)
    };
    // The host's own words, beside doctor's line about the same host.
    let says = |text: &str| format!("host says: {text}");
    if state.status == InvocationStatus::Success {
        let Some(ok) = said("flamefire: probe ok: ") else {
            return Check::bad(
                Level::Warn,
                label,
                "the host answered without a probe result",
                "deploy this flamefire's document (`flamefire document deploy`) and probe again",
            );
        };
        return match said("flamefire: probe warnings: ") {
            Some(w) => Check::bad(
                Level::Warn,
                label,
                says(&format!("{ok}; warnings: {w}")),
                "a run records anyway; the warnings say what it will do first or miss",
            ),
            None => Check::ok(label, says(&ok)),
        };
    }
    let explained = state.explain();
    let cause = explained
        .cause
        .strip_prefix("flamefire: error: ")
        .unwrap_or(&explained.cause)
        .to_string();
    Check::bad(Level::Fail, label, says(&cause), explained.next_step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: InvocationStatus, code: Option<i32>, output: &str) -> HostState {
        HostState {
            host: Host {
                id: InstanceId::parse("i-0123456789abcdef0").unwrap(),
                name: Some("web-1".into()),
            },
            command_id: "c".into(),
            status,
            response_code: code,
            output: output.into(),
            trace_output: String::new(),
            command_reason: None,
            uploaded: false,
        }
    }

    #[test]
    fn a_probe_ok_line_is_an_ok_check_and_its_warnings_a_warning() {
        let ok = "flamefire: probe ok: perf version 6.1; perf_event_paranoid 2, lockdown none\n";
        let c = judge(&state(InvocationStatus::Success, Some(0), ok));
        assert_eq!(c.level, Level::Ok);
        assert!(
            c.detail.starts_with("host says: perf version 6.1"),
            "{}",
            c.detail
        );
        let warned = format!(
            "{ok}flamefire: probe warnings: perf is not installed: a run will install it with dnf\n"
        );
        let c = judge(&state(InvocationStatus::Success, Some(0), &warned));
        assert_eq!(c.level, Level::Warn);
        assert!(
            c.detail.contains("a run will install it with dnf"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_failed_probe_gives_the_recorders_words_and_the_next_step_for_its_exit_code() {
        let out = "flamefire: error: perf record failed (exit 255): Access to performance monitoring and observability operations is limited.\n";
        let c = judge(&state(InvocationStatus::Failed, Some(6), out));
        assert_eq!(c.level, Level::Fail);
        assert!(
            c.detail.starts_with("host says: perf record failed"),
            "{}",
            c.detail
        );
        assert!(c.next.unwrap().contains("perf_event_paranoid"));
    }

    #[test]
    fn success_without_a_probe_line_is_an_old_document() {
        let c = judge(&state(
            InvocationStatus::Success,
            Some(0),
            "recorded 1 process(es)",
        ));
        assert_eq!(c.level, Level::Warn);
        assert!(c.next.unwrap().contains("document deploy"));
    }
}
