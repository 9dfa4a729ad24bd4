//! `flamefire ssm`: a host's journey through the stages.
//!
//! ```text
//! resolve ─▶ sign ─▶ dispatch ─▶ wait ──(each host as it ends)──▶ draw ─┐
//!                                                                       ▼
//!                                     fleet.svg, differential ◀── every host
//! ```
//!
//! Hosts are drawn while the others still record (`wait` reports each end
//! as it is known); the fleet-wide outputs come once every host has ended,
//! from the stacks already in memory.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::fleet::{self, Drawing};
use super::{create_out, finish, pids_text};
use crate::aws::Aws;
use crate::cli::SsmPlan;
use crate::collapse::Select;
use crate::dispatch::{self, DispatchPlan, NotSent, Sent};
use crate::document::{self, UploadFields};
use crate::draw::Drawer;
use crate::error::{Error, Result};
use crate::fetch;
use crate::model::{Failed, Host, HostOutcome, InstanceId, RunLocation, Who};
use crate::presign;
use crate::progress::{HostBars, Progress};
use crate::report::{self, Param, RunReport};
use crate::runs;
use crate::targets::{self, Resolved};
use crate::time::iso_utc;
use crate::wait::{self, Event, HostState, InvocationStatus, Waited, Watch};

/// Hosts get this long after SendCommand before the shared start, so that
/// delivery (and a perf install) does not eat into the recorded window.
/// Real SSM delivers in 1–2 s; a host that gets it later starts at once and
/// says so in its warnings.
const START_DELAY_S: u64 = 3;
/// Upload policy validity beyond the recording: perf script, gzip and a slow uplink.
const UPLOAD_MARGIN_S: u64 = 1800;
/// Largest upload the POST policy accepts.
const MAX_UPLOAD_BYTES: u64 = fetch::MAX_STACKS_BYTES;

pub async fn run(plan: SsmPlan, progress: &Progress) -> Result<u8> {
    let aws = Aws::load(&plan.aws).await?;
    let targets = resolve(&aws, &plan, progress).await?;
    let s3 = bucket(&aws, &plan, progress).await?;
    let (params, who) = prepare(&aws, &s3, &plan, &targets.resolved.hosts).await?;
    note_clock(&aws, progress);
    announce(progress, &plan, &params, &targets);
    let sent_after = aws.now() - INVOKED_AFTER_SLACK;
    let (sent, not_sent) = send(&aws, &s3, &plan, &params, &targets.resolved.hosts, &who).await?;

    let out = create_out(&plan.record.out)?;
    let base = RunReport::new(
        &params.run_id,
        "ssm",
        report_params(&plan, &params, &aws, &s3),
        &out,
    );
    let run = location(&plan);
    let drawer = Drawer::new(
        s3.clone(),
        run.clone(),
        &out,
        Select::default(),
        progress.clone(),
    );
    let hosts: Vec<_> = sent.iter().flat_map(|s| s.hosts.clone()).collect();
    let mut drawing = Drawing::new(drawer, base.clone(), hosts.len());
    set_aside(&mut drawing, &not_sent);
    let watch = Watch {
        ssm: aws.clone(),
        s3: s3.clone(),
        bucket: run.bucket().to_string(),
        run_prefix: run.run_prefix(),
        document: plan.document.clone(),
        sent_after,
        per_host: crate::progress::one_line_per_host(hosts.len()),
    };
    wait_and_draw(&watch, &sent, &params, &plan, &mut drawing, &out, progress).await?;

    let baseline_ids = Arc::new(targets.baseline_ids);
    let (merged_svg, diff) = fleet::outputs(
        std::mem::take(&mut drawing.kept),
        &out,
        &params.run_id,
        baseline_ids.clone(),
        progress,
    )
    .await?;
    let mut outcomes = std::mem::take(&mut drawing.outcomes);
    outcomes.sort_by(|a, b| a.host().cmp(b.host()));
    outcomes.extend(targets.resolved.skipped.into_iter().map(|s| {
        HostOutcome::skipped(
            Who::new(s.host.id.to_string(), s.host.name),
            s.reason.to_string(),
        )
    }));
    if plan.baseline.is_some() {
        fleet::mark_roles(&mut outcomes, &baseline_ids);
    }
    let report = RunReport {
        merged_svg,
        hosts: outcomes,
        diff,
        ..base
    };
    finish(report, progress, plan.record.json, plan.record.open).await
}

/// ListCommands' InvokedAfter for the wait, by AWS's clock (`Aws::now`),
/// with slack for the second-resolution `Date` it is read from and for a
/// run whose first response came before any clock was known.
const INVOKED_AFTER_SLACK: Duration = Duration::from_secs(600);

/// The run's hosts, and which of them are the `--baseline`.
struct Targets {
    resolved: Resolved,
    baseline_ids: HashSet<InstanceId>,
}

/// The target, and the baseline as a second target dispatched with the
/// first so that both record the same window.
async fn resolve(aws: &Aws, plan: &SsmPlan, progress: &Progress) -> Result<Targets> {
    progress.info(&format!("resolving {} in {}…", plan.target, aws.region()));
    let mut resolved = targets::resolve(aws, &plan.target, &plan.opt_in).await?;
    let baseline_ids = match &plan.baseline {
        Some(baseline) => {
            progress.info(&format!("resolving baseline {baseline}…"));
            let extra = targets::resolve(aws, baseline, &plan.opt_in)
                .await
                .map_err(|e| match e {
                    Error::NoTargets(why) => Error::NoTargets(format!("baseline: {why}")),
                    e => e,
                })?;
            join_baseline(&mut resolved, extra)?
        }
        None => HashSet::new(),
    };
    for s in &resolved.skipped {
        progress.note(&format!("skipped {}: {}", s.host.label(), s.reason));
    }
    Ok(Targets {
        resolved,
        baseline_ids,
    })
}

/// A client for the bucket: S3 calls go to the bucket's own region; SSM and
/// EC2 stay in the hosts'.
async fn bucket(aws: &Aws, plan: &SsmPlan, progress: &Progress) -> Result<Aws> {
    let s3 = aws.for_bucket(&plan.bucket, &plan.prefix).await;
    s3.check_bucket(&plan.bucket, &plan.prefix).await?;
    if s3.s3_region() != aws.region() {
        progress.info(&format!(
            "bucket {} is in {}: uploads are signed for that region",
            plan.bucket,
            s3.s3_region()
        ));
    }
    Ok(s3)
}

/// The document's parameters, signed upload included, and the caller's ARN;
/// writes `run.json`, the same PutObject as the hosts' uploads, so that a
/// refusal ends the run here, before anything records.
async fn prepare(
    aws: &Aws,
    s3: &Aws,
    plan: &SsmPlan,
    hosts: &[Host],
) -> Result<(document::RecordParams, Option<String>)> {
    let mut params = plan.record.params.clone();
    // Plus a second per round of parallel SendCommand batches.
    let send_rounds = dispatch::batches(hosts).len().div_ceil(dispatch::PARALLEL) as u64;
    let start_delay = START_DELAY_S + send_rounds;
    let who = aws.caller_identity().await.map(|(_, arn)| arn).ok();
    params.upload = Some(upload_fields(s3, plan, &params, start_delay)?);
    // After signing (which may have waited for an MFA code), so that the
    // hosts get the full delay.
    // By AWS's clock: the hosts' clocks agree with it, not with this laptop's.
    params.start_at = epoch(aws.now()) + start_delay;
    params.validate(document::embedded()?)?;
    record_run(s3, plan, &params, hosts, &who, false).await?;
    Ok((params, who))
}

/// Says so when this machine's clock is off AWS's by more than a few
/// seconds: the run's times come from AWS's (`Aws::now`), but the
/// engineer's other tools still read the laptop's.
fn note_clock(aws: &Aws, progress: &Progress) {
    let (off, way) = match aws.clock_offset() {
        Some(crate::aws::Offset::Ahead(d)) => (d, "behind"),
        Some(crate::aws::Offset::Behind(d)) => (d, "ahead of"),
        None => return,
    };
    if off >= Duration::from_secs(30) {
        progress.note(&format!(
            "this machine's clock is {} s {way} AWS's: the hosts start by AWS's clock (check this machine's time sync)",
            off.as_secs()
        ));
    }
}

fn announce(progress: &Progress, plan: &SsmPlan, params: &document::RecordParams, t: &Targets) {
    progress.info(&format!(
        "run {}: sending {} to {} host(s){}; recording {}s from {}",
        params.run_id,
        plan.document,
        t.resolved.hosts.len(),
        if t.baseline_ids.is_empty() {
            String::new()
        } else {
            format!(" ({} baseline)", t.baseline_ids.len())
        },
        params.duration_s,
        iso_utc(params.start_at)
    ));
}

/// SendCommand in batches. The batches SSM refused come back beside the
/// sent ones; when none went out, their (common) cause is the run's error.
async fn send(
    aws: &Aws,
    s3: &Aws,
    plan: &SsmPlan,
    params: &document::RecordParams,
    hosts: &[Host],
    who: &Option<String>,
) -> Result<(Vec<Sent>, Vec<NotSent>)> {
    let dispatch_plan = DispatchPlan {
        document: plan.document.clone(),
        params: params.clone(),
        delivery_timeout_s: 600,
        comment: format!("flamefire run {}", params.run_id),
    };
    let (sent, not_sent) = dispatch::send(aws, &dispatch_plan, hosts).await;
    if !not_sent.is_empty() {
        // The record names the hosts that really got the command (best effort).
        let got: Vec<_> = sent.iter().flat_map(|s| s.hosts.clone()).collect();
        if let Err(e) = record_run(s3, plan, params, &got, who, sent.is_empty()).await {
            tracing::warn!("could not update the run record: {e}");
        }
    }
    if sent.is_empty() {
        // Nothing went out (a missing document, denied access, …): the
        // cause is the same for every batch, so say it once, and leave no
        // output directory; the run record says that nothing was sent.
        return Err(match not_sent.into_iter().next() {
            Some(first) => first.error,
            None => Error::NoTargets("no host to send to".into()),
        });
    }
    Ok((sent, not_sent))
}

/// The hosts of the batches SSM refused: skipped when SSM said the
/// instances themselves are not valid (an ASG scaling in), else failed.
fn set_aside(drawing: &mut Drawing, not_sent: &[NotSent]) {
    for batch in not_sent {
        let error = batch.error.to_string();
        for h in &batch.hosts {
            let who = Who::new(h.id.to_string(), h.name.clone());
            drawing.failed(if batch.not_valid {
                let why = "SSM refused it when the command was sent: shutting down, terminated, stopped, or its agent not running (an autoscaling group scaling in?)";
                HostOutcome::skipped(who, why)
            } else {
                HostOutcome::failed(who, error.clone())
            });
        }
    }
}

/// Waits for every host, drawing each as it ends; at `--timeout` cancels
/// the hosts still open, on Ctrl-C cancels them all and keeps what is drawn.
async fn wait_and_draw(
    watch: &Watch,
    sent: &[Sent],
    params: &document::RecordParams,
    plan: &SsmPlan,
    drawing: &mut Drawing,
    out: &std::path::Path,
    progress: &Progress,
) -> Result<()> {
    let recording_ends = params.start_at + params.duration_s as u64;
    let until_end = Duration::from_secs(recording_ends.saturating_sub(epoch(watch.ssm.now())));
    let total = until_end + plan.timeout;
    let hosts: Vec<_> = sent.iter().flat_map(|s| s.hosts.clone()).collect();
    let bars = progress.hosts(&hosts, total);
    let now = Instant::now();
    match follow(watch, sent, now + until_end, now + total, &bars, drawing).await {
        Waited::Interrupted(in_flight) => {
            bars.finish();
            progress.note("interrupted: cancelling the remote commands…");
            cancel(&watch.ssm, in_flight, progress).await;
            return Err(Error::Interrupted);
        }
        Waited::GaveUp(in_flight) if !in_flight.is_empty() => {
            progress.note(
                "--timeout passed: cancelling the hosts still open, so that none records after this run (raise --timeout to wait longer)",
            );
            cancel(&watch.ssm, in_flight, progress).await;
        }
        Waited::GaveUp(_) | Waited::Done => {}
    }
    // Every host has ended; those that succeeded may still be drawing.
    let interrupted = tokio::select! {
        _ = async {
            while let Some(o) = drawing.next().await {
                fleet::show_drawn(&bars, o);
            }
        } => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    bars.finish();
    if interrupted {
        // Nothing runs remotely any more: keep what is drawn.
        drawing.write_report();
        progress.note(&format!(
            "interrupted: {}/report.html has the hosts drawn so far",
            out.display()
        ));
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// CancelCommand for each command's open hosts, saying what happened to each.
async fn cancel(aws: &Aws, in_flight: BTreeMap<String, Vec<InstanceId>>, progress: &Progress) {
    for (command_id, ids) in in_flight {
        let names: Vec<_> = ids.iter().map(|i| i.to_string()).collect();
        match aws.cancel_command(&command_id, &ids).await {
            Ok(()) => progress.note(&format!("cancelled {}", names.join(", "))),
            Err(e) => progress.note(&format!(
                "could not cancel {} ({command_id}): {e}",
                names.join(", ")
            )),
        }
    }
}

/// The wait stage and the drawing of each host that ends, together: a
/// host's flamegraph is drawn while the others still record. Returns when
/// every host has ended (some may still be drawing) or on Ctrl-C.
async fn follow(
    watch: &Watch,
    sent: &[Sent],
    recording_ends: Instant,
    deadline: Instant,
    bars: &HostBars,
    drawing: &mut Drawing,
) -> Waited {
    let (tx, mut events) = mpsc::unbounded_channel();
    let waiting = wait::until_done(watch, sent, recording_ends, deadline, tx, async {
        let _ = tokio::signal::ctrl_c().await;
    });
    tokio::pin!(waiting);
    let mut waited = None;
    loop {
        let report_due = drawing.report_due();
        tokio::select! {
            w = &mut waiting, if waited.is_none() => {
                if matches!(w, Waited::Interrupted(_)) {
                    return w;
                }
                waited = Some(w);
            }
            event = events.recv() => match event {
                Some(Event::Changed(id, status)) => bars.update(&id, status),
                Some(Event::Ended(state)) if state.status == InvocationStatus::Success => {
                    // An uploaded host may not have ended in SSM yet.
                    let said = (!state.uploaded).then_some(state.status);
                    drawing.start(state.host, said);
                }
                Some(Event::Ended(state)) => drawing.failed(failed_outcome(*state)),
                Some(Event::Retrying(why)) => bars.retrying(&why),
                // The wait is over and every event is handled.
                None => return waited.unwrap_or(Waited::Done),
            },
            Some(o) = drawing.next(), if drawing.busy() => {
                fleet::show_drawn(bars, o);
            }
            // Hosts that ended while report.html was last written.
            _ = sleep_until_due(report_due), if report_due.is_some() => {
                drawing.write_report();
            }
        }
    }
}

async fn sleep_until_due(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due.into()).await;
    }
}

/// A host that ended without a recording to draw.
fn failed_outcome(state: HostState) -> HostOutcome {
    let explained = state.explain();
    HostOutcome::Failed(Failed {
        ssm_status: Some(state.status),
        next_step: Some(explained.next_step),
        output_tail: Some(report::tail(&state.output, 6)),
        ..Failed::new(
            Who::new(state.host.id.to_string(), state.host.name.clone()),
            explained.cause,
        )
    })
}

/// What the run was asked to do, for the report.
fn report_params(
    plan: &SsmPlan,
    params: &document::RecordParams,
    aws: &Aws,
    s3: &Aws,
) -> Vec<Param> {
    let mut out = vec![Param::new("target", &plan.target)];
    if let Some(b) = &plan.baseline {
        out.push(Param::new("baseline", b));
    }
    out.extend([
        Param::new("duration", format!("{} s", params.duration_s)),
        Param::new("frequency", format!("{} Hz", params.frequency_hz)),
        Param::new("processes", pids_text(params)),
        Param::new("started at", iso_utc(params.start_at)),
        Param::new("region", aws.region()),
        Param::new("bucket region", s3.s3_region()),
        Param::new("bucket", location(plan)),
        Param::new("document", &plan.document),
    ]);
    out
}

/// Adds the baseline's hosts and skips to the targets'; returns the
/// baseline's ids. A host on both sides is an error: it cannot be compared
/// with itself.
fn join_baseline(targets: &mut Resolved, baseline: Resolved) -> Result<HashSet<InstanceId>> {
    let ids: HashSet<InstanceId> = baseline.hosts.iter().map(|h| h.id.clone()).collect();
    if let Some(both) = targets.hosts.iter().find(|h| ids.contains(&h.id)) {
        return Err(Error::Usage(format!(
            "{} is both a target and a baseline: narrow the targets or the baseline so that they do not overlap",
            both.label()
        )));
    }
    targets.hosts.extend(baseline.hosts);
    targets.skipped.extend(baseline.skipped);
    Ok(ids)
}

/// Signs the run's upload policy with the caller's credentials, for the
/// bucket's region. Refuses when those credentials expire before the last
/// upload the run waits for: the hosts would record for nothing.
fn upload_fields(
    s3: &Aws,
    plan: &SsmPlan,
    params: &document::RecordParams,
    start_delay: u64,
) -> Result<UploadFields> {
    let creds = s3.signing_credentials();
    // By AWS's clock, which judges the policy's expiration and the session's.
    let now = s3.now();
    // The last upload flamefire waits for: the end of the recording plus --timeout.
    let last_upload = Duration::from_secs(start_delay + params.duration_s as u64) + plan.timeout;
    if let Some(expiry) = creds.expires {
        presign::check_expiry(expiry, now, last_upload, plan.timeout)?;
    }
    let expires_in = last_upload + Duration::from_secs(UPLOAD_MARGIN_S);
    let run = location(plan);
    presign::upload_fields(
        s3,
        run.bucket(),
        run.run_prefix(),
        MAX_UPLOAD_BYTES,
        now,
        expires_in,
    )
}

/// `<prefix><run-id>/run.json`: what `flamefire runs` lists later. Written
/// before anything is sent (an error here ends the run), and again when
/// some hosts could not be sent to.
async fn record_run(
    s3: &Aws,
    plan: &SsmPlan,
    params: &document::RecordParams,
    hosts: &[Host],
    who: &Option<String>,
    nothing_sent: bool,
) -> Result<()> {
    let record = runs::RunRecord {
        run_id: params.run_id.clone(),
        started_at: params.start_at,
        target: plan.target.to_string(),
        hosts: hosts.iter().map(|h| h.id.to_string()).collect(),
        duration_s: params.duration_s as u64,
        frequency_hz: params.frequency_hz as u64,
        document: plan.document.clone(),
        started_by: who.clone(),
        nothing_sent,
    };
    let run = location(plan);
    let body = serde_json::to_vec(&record).expect("the run record serialises");
    s3.put_run_record(run.bucket(), &run.run_record(), body)
        .await
}

/// Where this run's keys are (docs/contracts.md's layout).
fn location(plan: &SsmPlan) -> RunLocation {
    RunLocation::new(&plan.bucket, &plan.prefix, &plan.record.params.run_id)
}

/// Seconds since the epoch.
fn epoch(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
