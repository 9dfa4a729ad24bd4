//! Stages 4–6 for one host: its upload → its flamegraph and outcome.
//!
//! Input: a host that ended (`wait::Event::Ended`). Output: a `Drawn`: the
//! host's row of the report and, when it was drawn, its folded stacks for
//! the fleet merge. Each host runs on its own as soon as it ends, so the
//! first flamegraph is on disk while other hosts still record. Downloads
//! are capped (`fetch::PARALLEL_DOWNLOADS`), and collapsing and drawing
//! take one CPU permit each, so every core works and memory stays bounded
//! by the permits, not by the fleet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::aws::Aws;
use crate::collapse::{Folded, Select};
use crate::fetch::{self, Meta};
use crate::heatmap;
use crate::model::Host;
use crate::pprof;
use crate::progress::Progress;
use crate::render::{self, Labels};
use crate::report::{HostOutcome, HotFunction, Status};
use crate::stacks;
use crate::time::{iso_utc, now_epoch};

/// Where a run's uploads are and where its flamegraphs go.
pub struct Drawer {
    pub s3: Aws,
    pub bucket: String,
    pub prefix: String,
    pub run_id: String,
    pub out: PathBuf,
    pub select: Select,
    pub progress: Progress,
    downloads: Semaphore,
    cpus: Semaphore,
}

/// One host's result.
pub struct Drawn {
    pub outcome: HostOutcome,
    /// Its stacks, for fleet.svg and the differential (without the
    /// per-sample timestamps, which only the heat map needed).
    pub kept: Option<Kept>,
}

pub struct Kept {
    pub host: Host,
    pub folded: Folded,
    pub info: pprof::HostInfo,
}

impl Drawer {
    #[allow(clippy::too_many_arguments)] // the run's coordinates, the output and what to fold
    pub fn new(
        s3: Aws,
        bucket: &str,
        prefix: &str,
        run_id: &str,
        out: &Path,
        select: Select,
        progress: Progress,
    ) -> Arc<Drawer> {
        Arc::new(Drawer {
            s3,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            run_id: run_id.to_string(),
            out: out.to_path_buf(),
            select,
            progress,
            downloads: Semaphore::new(fetch::PARALLEL_DOWNLOADS),
            cpus: Semaphore::new(cores()),
        })
    }

    /// fetch → collapse → render for a host whose recording succeeded. A
    /// download, check or render that fails makes it a failed outcome.
    /// `ssm_status` is SSM's word on the host, when it has said it.
    pub async fn host(self: Arc<Self>, host: Host, ssm_status: Option<String>) -> Drawn {
        let id = host.id.to_string();
        let mut o = HostOutcome::new(id.clone(), host.name.clone(), Status::Failed);
        o.ssm_status = ssm_status;
        let fetched = {
            let _permit = self.downloads.acquire().await.expect("never closed");
            fetch::host(
                &self.s3,
                &self.bucket,
                &self.prefix,
                &self.run_id,
                &host,
                &self.out,
            )
            .await
        };
        let f = match fetched {
            Ok(f) => f,
            Err(error) => {
                o.next_step = Some(match error {
                    fetch::FetchError::Throttled(_) => format!(
                        "the upload is in the bucket: draw it later with `flamefire fetch {}`",
                        self.run_id
                    ),
                    fetch::FetchError::Failed(_) => {
                        "rerun flamefire for this host; if it repeats, check the host's disk and curl"
                            .into()
                    }
                });
                o.cause = Some(error.to_string());
                return Drawn {
                    outcome: o,
                    kept: None,
                };
            }
        };
        o.warnings = f.meta.warnings.clone();
        if f.meta.partial && !o.warnings.iter().any(|w| w.contains("partial")) {
            o.warnings
                .push("partial: perf script was stopped at its time limit".into());
        }
        o.processes = f.meta.targets.clone();
        o.stacks = Some(f.perf.clone());
        let _permit = self.cpus.acquire().await.expect("never closed");
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.draw(f, o))
            .await
            .expect("drawing does not panic")
    }

    /// The CPU part, on a blocking thread: collapse, SVG, folded, pprof,
    /// heat map and hot functions.
    fn draw(&self, f: fetch::Fetched, mut o: HostOutcome) -> Drawn {
        let id = f.host.id.to_string();
        let drawn = stacks::file_with(&f.perf, &self.select)
            .map_err(crate::error::Error::from)
            .and_then(|mut folded| {
                folded.name = f.host.label();
                let svg = self.out.join(format!("{id}.svg"));
                render::svg(&folded, &labels(&f.host.label(), &f.meta, &folded), &svg)?;
                Ok((folded, svg))
            });
        let (mut folded, svg) = match drawn {
            Ok(d) => d,
            Err(e) => {
                o.cause = Some(e.to_string());
                return Drawn {
                    outcome: o,
                    kept: None,
                };
            }
        };
        o.status = Status::Rendered;
        o.samples = Some(folded.samples);
        o.heatmap = heatmap::of(&folded);
        o.top_functions = hot(&folded);
        o.folded = Some(svg.with_extension("folded"));
        let info = pprof::HostInfo::from_meta(&f.meta, &self.run_id, &id, f.host.name.as_deref());
        write_pprof(&[(&folded, &info)], &svg, &self.progress);
        o.svg = Some(svg);
        folded.offsets_ns = Vec::new();
        folded.timed = Vec::new();
        Drawn {
            outcome: o,
            kept: Some(Kept {
                host: f.host,
                folded,
                info,
            }),
        }
    }
}

/// The cores this process may use (cgroup and affinity limits included).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A host's flamegraph title and subtitle.
pub fn labels(host: &str, meta: &Meta, folded: &Folded) -> Labels {
    let date = if meta.started_at > 0 {
        iso_utc(meta.started_at)
    } else {
        iso_utc(now_epoch())
    };
    Labels {
        title: format!("CPU flamegraph: {host}"),
        subtitle: format!(
            "{host} • {}s at {} Hz • {} • {date}",
            meta.duration_s,
            meta.frequency_hz,
            folded.describe()
        ),
    }
}

/// The leaf functions with the most samples, for the report.
pub fn hot(folded: &Folded) -> Vec<HotFunction> {
    folded
        .top_functions(5)
        .into_iter()
        .map(|t| HotFunction {
            name: t.name,
            samples: t.samples,
            share: t.share,
        })
        .collect()
}

/// Beside an SVG (`x.svg`), its stacks as a pprof profile (`x.pb.gz`), for
/// `go tool pprof`, Pyroscope or Parca. Best effort, like report.html.
pub fn write_pprof(parts: &[(&Folded, &pprof::HostInfo)], svg: &Path, progress: &Progress) {
    let path = svg.with_extension("pb.gz");
    if let Err(e) = pprof::write(parts, &path) {
        progress.note(&format!("warning: could not write {}: {e}", path.display()));
    }
}
