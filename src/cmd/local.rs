//! `flamefire local`: the recorder script on this machine, then the same
//! collapse → render → report as a fleet host.

use super::{create_out, finish, fold_params, pids_text};
use crate::cli::LocalPlan;
use crate::collapse::Window;
use crate::document::Pids;
use crate::draw::{hot, labels, write_pprof};
use crate::error::Result;
use crate::fetch;
use crate::heatmap;
use crate::local;
use crate::pprof;
use crate::progress::Progress;
use crate::render;
use crate::report::{HostOutcome, Param, RunReport, Status};

pub async fn run(mut plan: LocalPlan, progress: &Progress) -> Result<u8> {
    let out = create_out(&plan.record.out)?;
    let demo = if plan.demo {
        let demo = local::Demo::start(progress).await?;
        plan.record.params.pids = Pids::Listed(demo.pids.clone());
        Some(demo)
    } else {
        None
    };
    if !nix::unistd::geteuid().is_root() {
        progress.note(
            "warning: not running as root: perf may be refused (kernel.perf_event_paranoid) and JIT maps cannot be chown'ed",
        );
    }
    let recorded = local::record(&plan.record.params, &out, progress).await;
    if let Some(demo) = demo {
        demo.stop().await;
    }
    recorded?;

    let meta = std::fs::read(out.join("meta.json"))
        .ok()
        .and_then(|b| fetch::parse_meta(&b).ok())
        .unwrap_or_default();
    let stacks = out.join("stacks.gz");
    let select = plan.fold.select(Window::default());
    let folded = tokio::task::spawn_blocking(move || crate::stacks::file_with(&stacks, &select))
        .await
        .expect("collapse task does not panic")?;
    let host = if meta.hostname.is_empty() {
        "this machine".to_string()
    } else {
        meta.hostname.clone()
    };
    let svg = out.join("flamegraph.svg");
    render::svg(&folded, &labels(&host, &meta, &folded), &svg)?;
    let info = pprof::HostInfo::from_meta(&meta, &plan.record.params.run_id, "", None);
    write_pprof(&[(&folded, &info)], &svg, progress);
    let mut outcome = HostOutcome::new(host, None, Status::Rendered);
    outcome.samples = Some(folded.samples);
    outcome.heatmap = heatmap::of(&folded);
    outcome.warnings = meta.warnings.clone();
    outcome.processes = meta.targets.clone();
    outcome.top_functions = hot(&folded);
    outcome.folded = Some(svg.with_extension("folded"));
    outcome.stacks = Some(out.join("stacks.gz"));
    outcome.svg = Some(svg.clone());
    let params = &plan.record.params;
    let report = RunReport {
        run_id: params.run_id.clone(),
        command: "local".into(),
        params: vec![
            Param::new("duration", format!("{} s", params.duration_s)),
            Param::new("frequency", format!("{} Hz", params.frequency_hz)),
            Param::new("processes", pids_text(params)),
        ]
        .into_iter()
        .chain(fold_params(&plan.fold))
        .collect(),
        out: out.clone(),
        merged_svg: None,
        hosts: vec![outcome],
        diff: None,
        report: None,
    };
    finish(report, progress, plan.record.json, plan.record.open).await
}
