//! `flamefire render`: perf script files → flamegraphs, merged.svg, report.

use super::{create_out, finish, fold_params, merge, note_other_events, window_text};
use crate::cli::RenderPlan;
use crate::collapse::{self, Folded};
use crate::draw::{hot, write_pprof};
use crate::error::Result;
use crate::heatmap;
use crate::pprof;
use crate::progress::Progress;
use crate::render::{self, Labels};
use crate::report::{HostOutcome, Param, RunReport, Status};

pub async fn run(plan: RenderPlan, progress: &Progress) -> Result<u8> {
    let out = create_out(&plan.out)?;
    let files = plan.files.clone();
    let select = plan.fold.select(plan.window);
    let results = tokio::task::spawn_blocking(move || collapse::files_with(&files, &select))
        .await
        .expect("collapse task does not panic");
    let mut outcomes = Vec::new();
    let mut rendered: Vec<Folded> = Vec::new();
    let mut infos: Vec<pprof::HostInfo> = Vec::new();
    for (path, result) in plan.files.iter().zip(results) {
        let label = path.display().to_string();
        let folded = match result {
            Ok(f) => f,
            Err(e) => {
                let mut o = HostOutcome::new(label, None, Status::Failed);
                o.cause = Some(e.to_string());
                outcomes.push(o);
                continue;
            }
        };
        let svg = out.join(format!("{}.svg", folded.name));
        let labels = Labels {
            title: format!("CPU flamegraph: {}", folded.name),
            subtitle: format!(
                "{} • {}{}",
                folded.describe(),
                path.display(),
                window_text(plan.window)
                    .map(|w| format!(" • {w}"))
                    .unwrap_or_default()
            ),
        };
        note_other_events(progress, &path.display().to_string(), &folded);
        let mut o = HostOutcome::new(label, None, Status::Rendered);
        o.stacks = Some(path.clone());
        o.heatmap = heatmap::of(&folded);
        match render::svg(&folded, &labels, &svg) {
            Ok(()) => {
                let info = pprof::HostInfo::input(path, &folded.name);
                write_pprof(&[(&folded, &info)], &svg, progress);
                infos.push(info);
                o.samples = Some(folded.samples);
                o.top_functions = hot(&folded);
                o.folded = Some(svg.with_extension("folded"));
                o.svg = Some(svg);
                rendered.push(folded);
            }
            Err(e) => {
                o.status = Status::Failed;
                o.cause = Some(e.to_string());
            }
        }
        outcomes.push(o);
    }
    let parts: Vec<&Folded> = rendered.iter().collect();
    let merged_svg = merge(&parts, &out.join("merged.svg"), "inputs")?;
    if let Some(merged) = &merged_svg {
        let parts: Vec<_> = rendered.iter().zip(&infos).collect();
        write_pprof(&parts, merged, progress);
    }
    let mut params = vec![Param::new(
        "inputs",
        plan.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
    )];
    if let Some(w) = window_text(plan.window) {
        params.push(Param::new("window", w));
    }
    params.extend(fold_params(&plan.fold));
    let report = RunReport {
        run_id: String::new(),
        command: "render".into(),
        params,
        out,
        merged_svg,
        hosts: outcomes,
        diff: None,
        report: None,
    };
    finish(report, progress, false, plan.open).await
}
