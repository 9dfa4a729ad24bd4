//! `flamefire render`: perf script files → flamegraphs, merged.svg, report.

use std::path::Path;

use super::{create_out, finish, fold_params, merge, note_other_events, window_text};
use crate::cli::RenderPlan;
use crate::collapse::Folded;
use crate::draw::{hot, write_pprof};
use crate::error::Result;
use crate::heatmap;
use crate::pprof;
use crate::progress::Progress;
use crate::render::{self, Labels};
use crate::report::{HostOutcome, Param, RunReport, Status};
use crate::stacks;

pub async fn run(plan: RenderPlan, progress: &Progress) -> Result<u8> {
    let out = create_out(&plan.out)?;
    let files = plan.files.clone();
    let select = plan.fold.select(plan.window);
    let results = tokio::task::spawn_blocking(move || stacks::files_with(&files, &select))
        .await
        .expect("collapse task does not panic");
    let mut outcomes = Vec::new();
    let mut rendered: Vec<(Folded, pprof::HostInfo)> = Vec::new();
    for (path, result) in plan.files.iter().zip(results) {
        match result {
            Ok(folded) => {
                let (o, drawn) = draw_input(path, folded, &plan, &out, progress);
                outcomes.push(o);
                rendered.extend(drawn);
            }
            Err(e) => {
                let mut o = HostOutcome::new(path.display().to_string(), None, Status::Failed);
                o.cause = Some(e.to_string());
                outcomes.push(o);
            }
        }
    }
    let parts: Vec<&Folded> = rendered.iter().map(|(f, _)| f).collect();
    let merged_svg = merge(&parts, &out.join("merged.svg"), "inputs")?;
    if let Some(merged) = &merged_svg {
        let parts: Vec<_> = rendered.iter().map(|(f, i)| (f, i)).collect();
        write_pprof(&parts, merged, progress);
    }
    let report = RunReport {
        run_id: String::new(),
        command: "render".into(),
        params: report_params(&plan),
        out,
        merged_svg,
        hosts: outcomes,
        diff: None,
        report: None,
    };
    finish(report, progress, false, plan.open).await
}

/// One input's SVG, folded, pprof and heat map, and its report row; the
/// profile and its pprof identity when it was drawn.
fn draw_input(
    path: &Path,
    folded: Folded,
    plan: &RenderPlan,
    out: &Path,
    progress: &Progress,
) -> (HostOutcome, Option<(Folded, pprof::HostInfo)>) {
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
    let mut o = HostOutcome::new(path.display().to_string(), None, Status::Rendered);
    o.stacks = Some(path.to_path_buf());
    o.heatmap = heatmap::of(&folded);
    if let Err(e) = render::svg(&folded, &labels, &svg) {
        o.status = Status::Failed;
        o.cause = Some(e.to_string());
        return (o, None);
    }
    let info = pprof::HostInfo::input(path, &folded.name);
    write_pprof(&[(&folded, &info)], &svg, progress);
    o.samples = Some(folded.samples);
    o.top_functions = hot(&folded);
    o.folded = Some(svg.with_extension("folded"));
    o.svg = Some(svg);
    (o, Some((folded, info)))
}

/// What the command was asked to do, for the report.
fn report_params(plan: &RenderPlan) -> Vec<Param> {
    let inputs: Vec<_> = plan.files.iter().map(|f| f.display().to_string()).collect();
    let mut params = vec![Param::new("inputs", inputs.join(" "))];
    if let Some(w) = window_text(plan.window) {
        params.push(Param::new("window", w));
    }
    params.extend(fold_params(&plan.fold));
    params
}
