//! `flamefire diff`: two profiles → differential flamegraphs, the biggest
//! changes, and each side's own flamegraph.

use std::path::Path;

use super::{compare, create_out, finish, fold_params, load, window_text};
use crate::aws::Aws;
use crate::cli::{BucketPlan, DiffInput, DiffPlan};
use crate::collapse::{Folded, Select};
use crate::draw::hot;
use crate::error::{Error, Result};
use crate::fetch;
use crate::heatmap;
use crate::model::Host;
use crate::progress::Progress;
use crate::render::{self, Labels};
use crate::report::{HostOutcome, Param, Role, RunReport, Status};
use crate::stacks;

/// `flamefire diff`: two profiles → differential flamegraphs, the biggest
/// changes, and each side's own flamegraph.
pub async fn run(plan: DiffPlan, progress: &Progress) -> Result<u8> {
    let out = create_out(&plan.out)?;
    let remote = match &plan.location {
        Some(loc) => {
            let aws = load(loc).await?;
            aws.check_bucket(&loc.bucket, &loc.prefix).await?;
            Some((aws, loc.clone()))
        }
        None => None,
    };
    let select = plan.fold.select(plan.window);
    let (before, after) = tokio::try_join!(
        resolve_input(&plan.before, &select, remote.as_ref(), &out),
        resolve_input(&plan.after, &select, remote.as_ref(), &out)
    )?;
    let mut hosts = Vec::new();
    for (role, input, folded, file) in [
        (Role::Baseline, &plan.before, &before, "before.svg"),
        (Role::Target, &plan.after, &after, "after.svg"),
    ] {
        let side = match role {
            Role::Baseline => "before",
            Role::Target => "after",
        };
        let svg = out.join(file);
        let labels = Labels {
            title: format!("CPU flamegraph: {input} ({side})"),
            subtitle: format!(
                "{}{}",
                folded.describe(),
                window_text(plan.window)
                    .map(|w| format!(" • {w}"))
                    .unwrap_or_default()
            ),
        };
        render::svg(folded, &labels, &svg)?;
        let mut o = HostOutcome::new(input.to_string(), Some(side.into()), Status::Rendered);
        o.role = Some(role);
        o.samples = Some(folded.samples);
        o.heatmap = heatmap::of(folded);
        o.top_functions = hot(folded);
        o.folded = Some(svg.with_extension("folded"));
        o.svg = Some(svg);
        o.stacks = Some(match input {
            DiffInput::File(path) => path.clone(),
            DiffInput::Run { run_id, instance } => {
                out.join(format!("runs/{run_id}/raw/{instance}.perf"))
            }
        });
        hosts.push(o);
    }
    let diff = compare(
        &before,
        &after,
        &out,
        plan.before.to_string(),
        plan.after.to_string(),
    )?;
    let mut params = vec![
        Param::new("before", &plan.before),
        Param::new("after", &plan.after),
    ];
    if let Some(w) = window_text(plan.window) {
        params.push(Param::new("window", w));
    }
    params.extend(fold_params(&plan.fold));
    let report = RunReport {
        run_id: String::new(),
        command: "diff".into(),
        params,
        out,
        merged_svg: None,
        hosts,
        diff: Some(diff),
        report: None,
    };
    finish(report, progress, plan.json, plan.open).await
}

/// One side of a diff → its stacks. The one place that knows what an input
/// can be (see `DiffInput`): past runs in the bucket will be fetched here.
async fn resolve_input(
    input: &DiffInput,
    select: &Select,
    remote: Option<&(Aws, BucketPlan)>,
    out: &Path,
) -> Result<Folded> {
    let path = match input {
        DiffInput::File(path) => path.clone(),
        DiffInput::Run { run_id, instance } => {
            let (aws, loc) = remote.expect("cli requires a bucket for run inputs");
            let host = Host {
                id: instance.clone(),
                name: None,
            };
            // Per run: the same host may be on both sides (yesterday vs today).
            let dir = out.join("runs").join(run_id);
            let fetched = fetch::host(aws, &loc.bucket, &loc.prefix, run_id, &host, &dir)
                .await
                .map_err(|cause| {
                    Error::NoTargets(format!(
                        "{input}: {cause} (list runs and their hosts with `flamefire runs`)"
                    ))
                })?;
            fetched.perf
        }
    };
    let select = select.clone();
    let mut folded = tokio::task::spawn_blocking(move || stacks::file_with(&path, &select))
        .await
        .expect("collapse task does not panic")?;
    if let DiffInput::Run { .. } = input {
        folded.name = input.to_string();
    }
    Ok(folded)
}
