//! `flamefire fetch`: a past run's uploads drawn again, report included;
//! nothing is profiled.

use super::fleet::{self, Drawing};
use super::{create_out, finish, fold_params, load};
use crate::cli::FetchPlan;
use crate::collapse::Window;
use crate::draw::Drawer;
use crate::error::{Error, Result};
use crate::model::RunLocation;
use crate::progress::Progress;
use crate::report::{Param, RunReport};
use crate::runs;
use crate::time::iso_utc;

/// Downloads a past run and renders it again, report included; nothing is profiled.
pub async fn run(plan: FetchPlan, progress: &Progress) -> Result<u8> {
    let loc = &plan.location;
    let aws = load(loc).await?;
    aws.check_bucket(&loc.bucket, &loc.prefix).await?;
    let run = RunLocation::new(&loc.bucket, &loc.prefix, &plan.run_id);
    let (hosts, record) = runs::hosts(&aws, &run).await?;
    let out = create_out(&plan.out)?;
    let base = RunReport::new(&plan.run_id, "fetch", Vec::new(), &out);
    let drawer = Drawer::new(
        aws.clone(),
        run.clone(),
        &out,
        plan.fold.select(Window::default()),
        progress.clone(),
    );
    progress.info(&format!("downloading {} host(s)…", hosts.len()));
    let mut drawing = Drawing::new(drawer, base.clone(), hosts.len());
    for host in hosts {
        drawing.start(host, None);
    }
    tokio::select! {
        _ = drawing.all() => {}
        _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted),
    }
    let mut outcomes = std::mem::take(&mut drawing.outcomes);
    outcomes.sort_by(|a, b| a.host().cmp(b.host()));
    let (merged_svg, _) = fleet::outputs(
        std::mem::take(&mut drawing.kept),
        &out,
        &plan.run_id,
        Default::default(),
        progress,
    )
    .await?;
    let record = record.unwrap_or_default();
    let mut params = vec![Param::new("run", &run)];
    if !record.target.is_empty() {
        params.push(Param::new("target", &record.target));
        params.push(Param::new("duration", format!("{} s", record.duration_s)));
        params.push(Param::new(
            "frequency",
            format!("{} Hz", record.frequency_hz),
        ));
        params.push(Param::new("started at", iso_utc(record.started_at)));
    }
    if let Some(by) = &record.started_by {
        params.push(Param::new("started by", by));
    }
    params.extend(fold_params(&plan.fold));
    let report = RunReport {
        params,
        merged_svg,
        hosts: outcomes,
        ..base
    };
    finish(report, progress, plan.json, plan.open).await
}
