//! Progress on stderr: the only module that touches indicatif.
//!
//! On a terminal, one live line per host (`i-0abc  InProgress  12s/40s`);
//! when stderr is not a TTY, or with --quiet, plain lines on each change so
//! that logs and CI stay readable. stdout is never written here.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::targets::{Host, InstanceId};
use crate::wait::InvocationStatus;

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

    /// One line per host for the wait stage.
    pub fn hosts(&self, hosts: &[Host], total: Duration) -> HostBars {
        // Elapsed time ticks on its own; the message changes with the status.
        let template = format!(
            "{{prefix:.bold}}  {{msg:<12}} {{elapsed}}/{}s",
            total.as_secs()
        );
        let style = ProgressStyle::with_template(&template).expect("static template");
        let width = hosts.iter().map(|h| h.label().len()).max().unwrap_or(0);
        let bars = hosts
            .iter()
            .map(|h| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(format!("{:width$}", h.label()));
                bar.enable_steady_tick(Duration::from_millis(500));
                (h.id.clone(), bar)
            })
            .collect();
        HostBars {
            progress: self.clone(),
            bars,
            status: std::sync::Mutex::new(HashMap::new()),
            started: Instant::now(),
            total,
        }
    }
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
    status: std::sync::Mutex<HashMap<InstanceId, InvocationStatus>>,
    started: Instant,
    total: Duration,
}

impl HostBars {
    pub fn update(&self, id: &InstanceId, status: InvocationStatus) {
        if let Some(bar) = self.bars.get(id) {
            bar.set_message(status.to_string());
            if status.is_terminal() {
                bar.finish();
            }
        }
        if !self.progress.live {
            let mut seen = self.status.lock().expect("not poisoned");
            if seen.insert(id.clone(), status) != Some(status) {
                let elapsed = self.started.elapsed().as_secs();
                let total = self.total.as_secs();
                self.progress
                    .info(&format!("{id}  {status:<12} {elapsed}s/{total}s"));
            }
        }
    }

    pub fn note(&self, line: &str) {
        self.progress.note(line);
    }

    pub fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
    }
}
