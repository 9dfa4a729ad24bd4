//! What `ssm` and `fetch` share once hosts end: each host drawn the moment
//! it ends (`draw`), report.html refreshed as they do, and the fleet-wide
//! outputs (fleet.svg, fleet.pb.gz, the differential) drawn together at the
//! end from the stacks already in memory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::{compare, merge};
use crate::collapse::Folded;
use crate::draw::{Drawer, Drawn, Kept, write_pprof};
use crate::error::Result;
use crate::html;
use crate::model::{Host, HostOutcome, InstanceId, InvocationStatus, Role};
use crate::progress::{HostBars, Progress};
use crate::report::{DiffOutcome, Param, RunReport};

/// Hosts being drawn, and the results so far.
pub struct Drawing {
    drawer: Arc<Drawer>,
    tasks: JoinSet<Drawn>,
    pub outcomes: Vec<HostOutcome>,
    pub kept: Vec<Kept>,
    live: LiveReport,
}

impl Drawing {
    /// `base` is the report as it will read at the end, without hosts;
    /// `hosts` how many are expected.
    pub fn new(drawer: Arc<Drawer>, base: RunReport, hosts: usize) -> Drawing {
        Drawing {
            drawer,
            tasks: JoinSet::new(),
            outcomes: Vec::new(),
            kept: Vec::new(),
            live: LiveReport {
                base,
                hosts,
                next: Instant::now(),
                pending: false,
            },
        }
    }

    /// Starts fetching and drawing a host whose recording succeeded;
    /// `ssm_status` is what SSM said of it, if it has yet.
    pub fn start(&mut self, host: Host, ssm_status: Option<InvocationStatus>) {
        self.tasks.spawn(self.drawer.clone().host(host, ssm_status));
    }

    /// A host that ended without a recording.
    pub fn failed(&mut self, outcome: HostOutcome) {
        self.outcomes.push(outcome);
        self.live.refresh(&self.outcomes, false);
    }

    pub fn busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Waits for the next host to be drawn and returns its outcome (also
    /// kept here). `None` when nothing is being drawn.
    pub async fn next(&mut self) -> Option<&HostOutcome> {
        let drawn = self
            .tasks
            .join_next()
            .await?
            .expect("drawing does not panic");
        if let Some(kept) = drawn.kept {
            self.kept.push(kept);
        }
        self.outcomes.push(drawn.outcome);
        self.live.refresh(&self.outcomes, false);
        self.outcomes.last()
    }

    /// Waits for every host still being drawn.
    pub async fn all(&mut self) {
        while self.next().await.is_some() {}
    }

    /// When report.html has hosts it does not show yet, the moment it may
    /// be rewritten; `None` when it is up to date.
    pub fn report_due(&self) -> Option<Instant> {
        self.live.pending.then_some(self.live.next)
    }

    /// Rewrites report.html with the hosts done so far (a throttled write
    /// that is due, or the last word of an interrupted run).
    pub fn write_report(&mut self) {
        self.live.refresh(&self.outcomes, true);
    }
}

/// report.html while the run goes on: rewritten as hosts end, at most
/// every couple of seconds, and never taking more than a tenth of the
/// time (a 2,000-host page is not free to write).
struct LiveReport {
    base: RunReport,
    hosts: usize,
    next: Instant,
    /// Hosts ended since the last write.
    pending: bool,
}

impl LiveReport {
    fn refresh(&mut self, outcomes: &[HostOutcome], force: bool) {
        let now = Instant::now();
        if !force && now < self.next {
            self.pending = true;
            return;
        }
        self.pending = false;
        let mut report = self.base.clone();
        report.params.push(Param::new(
            "progress",
            format!(
                "{} of {} hosts done; this page is rewritten as hosts finish",
                outcomes.len(),
                self.hosts
            ),
        ));
        report.hosts = outcomes.to_vec();
        let page = report.out.join("report.html");
        let started = Instant::now();
        // Best effort: the final write reports a failure.
        let _ = html::write(&report, &page);
        self.next = now + (started.elapsed() * 10).max(Duration::from_secs(2));
    }
}

/// fleet.svg and fleet.pb.gz of every drawn host, and the baseline vs
/// targets differential when there is a baseline, drawn on separate cores.
pub async fn outputs(
    mut kept: Vec<Kept>,
    out: &Path,
    run_id: &str,
    baseline: Arc<HashSet<InstanceId>>,
    progress: &Progress,
) -> Result<(Option<PathBuf>, Option<DiffOutcome>)> {
    kept.sort_by(|a, b| a.host.id.cmp(&b.host.id));
    let kept = Arc::new(kept);
    let merged = {
        let (kept, out, run_id, progress) = (
            kept.clone(),
            out.to_path_buf(),
            run_id.to_string(),
            progress.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let parts: Vec<&Folded> = kept.iter().map(|k| &k.folded).collect();
            let svg = merge(&parts, &out.join("fleet.svg"), &run_id)?;
            if let Some(svg) = &svg {
                let pprof: Vec<_> = kept.iter().map(|k| (&k.folded, &k.info)).collect();
                write_pprof(&pprof, svg, &progress);
            }
            Ok::<_, crate::error::Error>(svg)
        })
    };
    let diff = {
        let (kept, out, progress) = (kept.clone(), out.to_path_buf(), progress.clone());
        tokio::task::spawn_blocking(move || {
            if baseline.is_empty() {
                return Ok(None);
            }
            compare_fleet(&kept, &baseline, &out, &progress)
        })
    };
    let (merged, diff) = tokio::join!(merged, diff);
    Ok((
        merged.expect("merging does not panic")?,
        diff.expect("comparing does not panic")?,
    ))
}

/// The diff of the merged baseline hosts (BEFORE) against the merged target
/// hosts (AFTER), when both sides have at least one flamegraph.
fn compare_fleet(
    kept: &[Kept],
    baseline_ids: &HashSet<InstanceId>,
    out: &Path,
    progress: &Progress,
) -> Result<Option<DiffOutcome>> {
    let (baseline, targets): (Vec<&Kept>, Vec<&Kept>) =
        kept.iter().partition(|k| baseline_ids.contains(&k.host.id));
    if baseline.is_empty() || targets.is_empty() {
        progress.note(&format!(
            "no differential: {} baseline and {} target host(s) were rendered; both sides need one",
            baseline.len(),
            targets.len()
        ));
        return Ok(None);
    }
    // Stacks merged without a host root frame, so that the same code path
    // on different hosts is the same stack.
    let side = |hosts: &[&Kept], name: &str| {
        let folded = Folded::new(
            name,
            hosts.iter().flat_map(|k| k.folded.stacks.iter().cloned()),
        );
        // Titles and the summary stay one line however big the fleet.
        const NAMED: usize = 3;
        let mut label = hosts
            .iter()
            .take(NAMED)
            .map(|k| k.host.label())
            .collect::<Vec<_>>()
            .join(", ");
        if hosts.len() > NAMED {
            label.push_str(&format!(" and {} more", hosts.len() - NAMED));
        }
        (folded, label)
    };
    let (before, before_label) = side(&baseline, "baseline");
    let (after, after_label) = side(&targets, "targets");
    compare(
        &before,
        &after,
        out,
        format!("baseline {before_label}"),
        format!("targets {after_label}"),
    )
    .map(Some)
}

/// Marks each outcome as baseline or target, for the report.
pub fn mark_roles(outcomes: &mut [HostOutcome], baseline: &HashSet<InstanceId>) {
    for o in outcomes {
        let is_baseline = InstanceId::parse(o.host()).is_some_and(|id| baseline.contains(&id));
        o.who_mut().role = Some(if is_baseline {
            Role::Baseline
        } else {
            Role::Target
        });
    }
}

/// Tells the progress display how a host's drawing ended.
pub fn show_drawn(bars: &HostBars, o: &HostOutcome) {
    bars.drawn(o.host(), o.rendered().is_some(), &summary(o));
}

/// A one-line result for the progress display.
fn summary(o: &HostOutcome) -> String {
    match o {
        HostOutcome::Rendered(r) => format!("rendered, {} samples", r.samples),
        HostOutcome::Failed(f) => format!("failed: {}", f.cause),
        HostOutcome::Skipped(s) => format!("failed: {}", s.cause),
    }
}
