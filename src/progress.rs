//! Progress on stderr: the only module that touches indicatif.
//!
//! On a terminal, one live line per host (`i-0abc  InProgress  12s/40s`)
//! for up to 20 hosts, and one line of counts for a bigger fleet (`[===> ]
//! 812/2000 hosts done  790 rendered, 22 failed, …`) with a line per host
//! as it is drawn; when stderr is not a TTY, or with --quiet, plain lines
//! on each change so that logs and CI stay readable. stdout is never
//! written here.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::{Host, InstanceId, InvocationStatus};

#[derive(Clone)]
pub struct Progress {
    live: bool,
    quiet: bool,
    multi: MultiProgress,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let live = !quiet && std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Progress { live, quiet, multi }
    }

    /// A diagnostic line on stderr that does not tear the live bars.
    pub fn note(&self, line: &str) {
        if self.live {
            self.multi.suspend(|| eprintln!("{line}"));
        } else {
            eprintln!("{line}");
        }
    }

    /// A line that --quiet suppresses.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            self.note(line);
        }
    }

    /// A timed bar for one local recording.
    pub fn recording(&self, label: &str, total: Duration) -> Step {
        let bar = self.multi.add(ProgressBar::new(total.as_secs().max(1)));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}s")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if !self.live {
            self.info(&format!("{label} ({}s)", total.as_secs()));
        }
        Step {
            bar,
            started: Instant::now(),
        }
    }

    /// The wait and draw stages' display: one line per host for a small
    /// fleet, one line of counts for a big one (2,000 live lines would
    /// scroll away and cost more to redraw than the run).
    pub fn hosts(&self, hosts: &[Host], total: Duration) -> HostBars {
        let summary = !one_line_per_host(hosts.len());
        let bars = if summary {
            HashMap::new()
        } else {
            // Elapsed time ticks on its own; the message changes with the status.
            let template = format!(
                "{{prefix:.bold}}  {{msg:<12}} {{elapsed}}/{}s",
                total.as_secs()
            );
            let style = ProgressStyle::with_template(&template).expect("static template");
            let width = hosts.iter().map(|h| h.label().len()).max().unwrap_or(0);
            hosts
                .iter()
                .map(|h| {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{:width$}", h.label()));
                    bar.enable_steady_tick(Duration::from_millis(500));
                    (h.id.clone(), bar)
                })
                .collect()
        };
        let fleet = summary.then(|| {
            let bar = self.multi.add(ProgressBar::new(hosts.len() as u64));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} [{{bar:30}}] {{pos}}/{{len}} hosts done  {{msg}}  {{elapsed}}/{}s",
                    total.as_secs()
                ))
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        HostBars {
            progress: self.clone(),
            bars,
            fleet,
            state: std::sync::Mutex::new(Counts::default()),
            started: Instant::now(),
            total,
        }
    }
}

/// Above this many hosts, the display is one line of counts.
const MAX_HOST_LINES: usize = 20;

/// Whether a fleet of `hosts` gets one line per host.
pub fn one_line_per_host(hosts: usize) -> bool {
    hosts <= MAX_HOST_LINES
}

pub struct Step {
    bar: ProgressBar,
    started: Instant,
}

impl Step {
    pub fn tick(&self) {
        self.bar.set_position(self.started.elapsed().as_secs());
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

pub struct HostBars {
    progress: Progress,
    bars: HashMap<InstanceId, ProgressBar>,
    /// The one line of a big fleet.
    fleet: Option<ProgressBar>,
    state: std::sync::Mutex<Counts>,
    started: Instant,
    total: Duration,
}

#[derive(Default)]
struct Counts {
    status: HashMap<InstanceId, InvocationStatus>,
    rendered: usize,
    failed: usize,
    /// The last "retrying" line shown, so that a throttled poll says so
    /// once, not every round.
    last_retry: Option<Instant>,
}

impl HostBars {
    pub fn update(&self, id: &InstanceId, status: InvocationStatus) {
        let mut state = self.state.lock().expect("not poisoned");
        let changed = state.status.insert(id.clone(), status) != Some(status);
        if let Some(bar) = self.bars.get(id) {
            bar.set_message(status.to_string());
            if status.is_terminal() && status != InvocationStatus::Success {
                bar.finish();
            }
        }
        if status.is_terminal() && status != InvocationStatus::Success {
            state.failed += 1;
        }
        self.refresh_fleet(&state);
        // Plain lines: every change of a small fleet, only ends of a big one.
        if !self.progress.live && changed && (self.fleet.is_none() || status.is_terminal()) {
            let elapsed = self.started.elapsed().as_secs();
            let total = self.total.as_secs();
            self.progress
                .info(&format!("{id}  {status:<12} {elapsed}s/{total}s"));
        }
    }

    /// A host whose upload was downloaded and drawn (`rendered`), or failed
    /// to be; `summary` says which, in a few words.
    pub fn drawn(&self, host: &str, rendered: bool, summary: &str) {
        let mut state = self.state.lock().expect("not poisoned");
        if rendered {
            state.rendered += 1;
        } else {
            state.failed += 1;
        }
        self.refresh_fleet(&state);
        let bar = InstanceId::parse(host).and_then(|id| self.bars.get(&id));
        match bar {
            Some(bar) => {
                bar.set_message(summary.to_string());
                bar.finish();
                if !self.progress.live {
                    self.progress.info(&format!("{host}  {summary}"));
                }
            }
            None => self.progress.info(&format!("{host}  {summary}")),
        }
    }

    /// A poll that failed and will be retried: said at most every 30 s.
    pub fn retrying(&self, why: &str) {
        let mut state = self.state.lock().expect("not poisoned");
        if state
            .last_retry
            .is_some_and(|t| t.elapsed() < Duration::from_secs(30))
        {
            tracing::debug!("retrying: {why}");
            return;
        }
        state.last_retry = Some(Instant::now());
        self.progress.note(&format!(
            "polling again later ({why}); no host is failed for it"
        ));
    }

    fn refresh_fleet(&self, state: &Counts) {
        let Some(bar) = &self.fleet else { return };
        let ended = state.status.values().filter(|s| s.is_terminal()).count();
        let recording = (bar.length().unwrap_or(0) as usize).saturating_sub(ended);
        bar.set_position((state.rendered + state.failed) as u64);
        bar.set_message(format!(
            "{} rendered, {} failed, {recording} still recording",
            state.rendered, state.failed
        ));
    }

    pub fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
        if let Some(bar) = &self.fleet {
            bar.finish_and_clear();
        }
    }
}
