//! The pipeline, one readable function per subcommand.
//!
//! Each function reads top to bottom as the stages run; the stages
//! themselves live in their own modules. Nothing here exits the process:
//! `main` turns the returned code or `Error` into an exit status.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::aws::Aws;
use crate::cli::{
    BucketPlan, Cli, Command, DeployArgs, DiffInput, DiffPlan, DoctorPlan, DocumentCommand,
    FetchPlan, LocalPlan, RenderPlan, SsmPlan, check_document_name, new_run_id,
};
use crate::collapse::{self, Folded, Select, Window};
use crate::config::Origins;
use crate::diff;
use crate::dispatch::{self, DispatchPlan};
use crate::doctor;
use crate::document::{self, Pids, UploadFields};
use crate::error::{Error, Result, exit};
use crate::fetch::{self, Meta};
use crate::heatmap;
use crate::html;
use crate::local;
use crate::pprof;
use crate::presign::{self, PostRequest};
use crate::progress::Progress;
use crate::render::{self, Labels};
use crate::report::{
    self, CHANGES_SHOWN, DiffOutcome, HostOutcome, HotFunction, Param, Role, RunReport, Status,
};
use crate::runs;
use crate::targets::{self, Host, InstanceId, Resolved};
use crate::time::{iso_utc, now_epoch};
use crate::wait::{self, InvocationStatus, Waited};

/// Hosts get this long after SendCommand before the shared start, so that
/// delivery (and a perf install) does not eat into the recorded window.
/// Real SSM delivers in 1–2 s; a host that gets it later starts at once and
/// says so in its warnings.
const START_DELAY_S: u64 = 3;
/// Upload policy validity beyond the recording: perf script, gzip and a slow uplink.
const UPLOAD_MARGIN_S: u64 = 1800;
/// Largest upload the POST policy accepts.
const MAX_UPLOAD_BYTES: u64 = fetch::MAX_STACKS_BYTES;

pub async fn run(cli: Cli) -> Result<u8> {
    let progress = Progress::new(cli.quiet);
    let run_id = new_run_id(SystemTime::now());
    match cli.command {
        Command::Local(args) => local(args.plan(run_id)?, &progress).await,
        Command::Render(args) => render_files(args.plan()?, &progress).await,
        Command::Diff(args) => diff(args.plan()?, &progress).await,
        Command::Ssm(args) => ssm(args.plan(run_id)?, &progress).await,
        Command::Document(DocumentCommand::Print) => {
            report::print_stdout(document::YAML);
            Ok(exit::OK)
        }
        Command::Document(DocumentCommand::Deploy(args)) => deploy(args, &progress).await,
        Command::Doctor(args) => doctor(args.plan()?, &cli.settings, &progress).await,
        Command::Runs(args) => list_runs(args.bucket.plan()?, args.json).await,
        Command::Fetch(args) => fetch_run(args.plan()?, &progress).await,
        Command::Completions { shell } => {
            report::print_stdout(&crate::cli::completions(shell));
            Ok(exit::OK)
        }
        Command::Man { dir: None } => {
            report::print_stdout(&crate::cli::man_page());
            Ok(exit::OK)
        }
        Command::Man { dir: Some(dir) } => {
            for page in crate::cli::man_pages(&dir)? {
                report::print_stdout(&format!("{}\n", page.display()));
            }
            Ok(exit::OK)
        }
    }
}

async fn doctor(plan: DoctorPlan, settings: &Origins, progress: &Progress) -> Result<u8> {
    let loaded = Aws::load(
        plan.profile.as_deref(),
        plan.region.as_deref(),
        plan.mfa_code.as_deref(),
    )
    .await;
    let aws = match loaded {
        Ok(aws) => aws,
        // No credentials, no other check: say so as a check, with its next step.
        Err(e) => {
            let checks = doctor::no_credentials(&e);
            report::print_stdout(&doctor::render(&checks));
            return Ok(doctor::exit_code(&checks));
        }
    };
    progress.info("checking…");
    let checks = doctor::run(&aws, &plan.checks).await;
    report::print_stdout(&doctor::render(&checks));
    report::print_stdout(&settings.render());
    Ok(doctor::exit_code(&checks))
}

/// The AWS clients for a bucket command, S3 in the bucket's own region.
async fn load(loc: &BucketPlan) -> Result<Aws> {
    let aws = Aws::load(
        loc.profile.as_deref(),
        loc.region.as_deref(),
        loc.mfa_code.as_deref(),
    )
    .await?;
    Ok(aws.for_bucket(&loc.bucket, &loc.prefix).await)
}

async fn list_runs(location: BucketPlan, json: bool) -> Result<u8> {
    let aws = load(&location).await?;
    aws.check_bucket(&location.bucket, &location.prefix).await?;
    let found = runs::list(&aws, &location.bucket, &location.prefix).await?;
    if json {
        let mut text = serde_json::to_string_pretty(&found).expect("runs serialise");
        text.push('\n');
        report::print_stdout(&text);
    } else {
        report::print_stdout(&runs::table(&found));
    }
    Ok(exit::OK)
}

/// Downloads a past run and renders it again, report included; nothing is profiled.
async fn fetch_run(plan: FetchPlan, progress: &Progress) -> Result<u8> {
    let loc = &plan.location;
    let aws = load(loc).await?;
    aws.check_bucket(&loc.bucket, &loc.prefix).await?;
    let (hosts, record) = runs::hosts(&aws, &loc.bucket, &loc.prefix, &plan.run_id).await?;
    let out = create_out(&plan.out)?;
    let (mut outcomes, rendered, infos) = fetch_and_render(
        &aws,
        &loc.bucket,
        &loc.prefix,
        &plan.run_id,
        hosts,
        &out,
        &plan.fold.select(Window::default()),
        progress,
    )
    .await;
    outcomes.sort_by(|a, b| a.host.cmp(&b.host));
    let folded: Vec<Folded> = rendered.iter().map(|(_, f)| f.clone()).collect();
    let merged_svg = merge(&folded, &out.join("fleet.svg"), &plan.run_id)?;
    fleet_pprof(&rendered, &infos, merged_svg.as_deref(), progress);
    let record = record.unwrap_or_default();
    let mut params = vec![Param::new(
        "run",
        format!("s3://{}/{}{}/", loc.bucket, loc.prefix, plan.run_id),
    )];
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
        run_id: plan.run_id.clone(),
        command: "fetch".into(),
        params,
        out,
        merged_svg,
        hosts: outcomes,
        diff: None,
        report: None,
    };
    finish(report, progress, plan.json, plan.open).await
}

async fn deploy(args: DeployArgs, progress: &Progress) -> Result<u8> {
    check_document_name(&args.document)?;
    document::embedded()?;
    let aws = Aws::load(
        args.profile.as_deref(),
        args.region.as_deref(),
        args.mfa_code.as_deref(),
    )
    .await?;
    let (version, changed) = aws.deploy_document(&args.document, document::YAML).await?;
    let what = if changed {
        "deployed"
    } else {
        "already up to date:"
    };
    progress.info(&format!(
        "{what} {} in {} (default version {version})",
        args.document,
        aws.region()
    ));
    report::print_stdout(&format!("{}\n", args.document));
    Ok(exit::OK)
}

async fn local(mut plan: LocalPlan, progress: &Progress) -> Result<u8> {
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
    let folded = tokio::task::spawn_blocking(move || collapse::file_with(&stacks, &select))
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

/// `flamefire diff`: two profiles → differential flamegraphs, the biggest
/// changes, and each side's own flamegraph.
async fn diff(plan: DiffPlan, progress: &Progress) -> Result<u8> {
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
            let fetched = fetch::stacks(aws, &loc.bucket, &loc.prefix, run_id, vec![host], &dir)
                .await
                .remove(0)
                .map_err(|(_, cause)| {
                    Error::NoTargets(format!(
                        "{input}: {cause} (list runs and their hosts with `flamefire runs`)"
                    ))
                })?;
            fetched.perf
        }
    };
    let select = select.clone();
    let mut folded = tokio::task::spawn_blocking(move || collapse::file_with(&path, &select))
        .await
        .expect("collapse task does not panic")?;
    if let DiffInput::Run { .. } = input {
        folded.name = input.to_string();
    }
    Ok(folded)
}

/// Draws diff.svg and diff-negated.svg in `out` and ranks the changes.
fn compare(
    before: &Folded,
    after: &Folded,
    out: &Path,
    before_label: String,
    after_label: String,
) -> Result<DiffOutcome> {
    let svg = out.join("diff.svg");
    let negated_svg = out.join("diff-negated.svg");
    let normalised = format!(
        "normalised by sample count ({} before, {} after)",
        before.samples, after.samples
    );
    render::differential(
        &diff::growth(before, after),
        &Labels {
            title: format!("Differential flamegraph: {after_label} vs {before_label}"),
            subtitle: format!(
                "AFTER's stacks; red: larger share of samples than BEFORE, blue: smaller • {normalised}"
            ),
        },
        &svg,
    )?;
    render::differential(
        &diff::negated(before, after),
        &Labels {
            title: format!("Negated differential: {before_label} (what shrank or vanished)"),
            subtitle: format!(
                "BEFORE's stacks; red: larger share in AFTER, blue: smaller or gone • {normalised}"
            ),
        },
        &negated_svg,
    )?;
    Ok(DiffOutcome {
        before: before_label,
        after: after_label,
        before_samples: before.samples,
        after_samples: after.samples,
        svg,
        negated_svg,
        changes: diff::changes(before, after, CHANGES_SHOWN),
    })
}

async fn render_files(plan: RenderPlan, progress: &Progress) -> Result<u8> {
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
    let merged_svg = merge(&rendered, &out.join("merged.svg"), "inputs")?;
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

async fn ssm(plan: SsmPlan, progress: &Progress) -> Result<u8> {
    let aws = Aws::load(
        plan.profile.as_deref(),
        plan.region.as_deref(),
        plan.mfa_code.as_deref(),
    )
    .await?;
    progress.info(&format!("resolving {} in {}…", plan.target, aws.region()));
    let mut resolved = targets::resolve(&aws, &plan.target, &plan.opt_in).await?;
    // The baseline is a second target, dispatched with the first so that
    // both record the same window.
    let baseline_ids = match &plan.baseline {
        Some(baseline) => {
            progress.info(&format!("resolving baseline {baseline}…"));
            let extra = targets::resolve(&aws, baseline, &plan.opt_in)
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
    // S3 calls go to the bucket's own region; SSM and EC2 stay in the hosts'.
    let s3 = aws.for_bucket(&plan.bucket, &plan.prefix).await;
    s3.check_bucket(&plan.bucket, &plan.prefix).await?;
    if s3.s3_region() != aws.region() {
        progress.info(&format!(
            "bucket {} is in {}: uploads are signed for that region",
            plan.bucket,
            s3.s3_region()
        ));
    }
    let mut params = plan.record.params.clone();
    // Plus a second per round of parallel SendCommand batches.
    let send_rounds = dispatch::batches(&resolved.hosts)
        .len()
        .div_ceil(dispatch::PARALLEL) as u64;
    let start_delay = START_DELAY_S + send_rounds;
    let who = aws.caller_identity().await.map(|(_, arn)| arn).ok();
    params.upload = Some(upload_fields(&s3, &plan, &params, start_delay)?);
    // After signing (which may have waited for an MFA code), so that the
    // hosts get the full delay.
    params.start_at = now_epoch() + start_delay;
    params.validate(document::embedded()?)?;
    // The same PutObject as the hosts' uploads: a refusal ends the run
    // here, before anything records.
    record_run(&s3, &plan, &params, &resolved.hosts, &who, false).await?;

    progress.info(&format!(
        "run {}: sending {} to {} host(s){}; recording {}s from {}",
        params.run_id,
        plan.document,
        resolved.hosts.len(),
        if baseline_ids.is_empty() {
            String::new()
        } else {
            format!(" ({} baseline)", baseline_ids.len())
        },
        params.duration_s,
        iso_utc(params.start_at)
    ));
    let dispatch_plan = DispatchPlan {
        document: plan.document.clone(),
        params: params.clone(),
        delivery_timeout_s: 600,
        comment: format!("flamefire run {}", params.run_id),
    };
    let (sent, not_sent) = dispatch::send(&aws, &dispatch_plan, &resolved.hosts).await;
    let hosts: Vec<_> = sent.iter().flat_map(|s| s.hosts.clone()).collect();
    if !not_sent.is_empty() {
        // The record names the hosts that really got the command (best effort).
        let nothing_sent = sent.is_empty();
        if let Err(e) = record_run(&s3, &plan, &params, &hosts, &who, nothing_sent).await {
            tracing::warn!("could not update the run record: {e}");
        }
    }
    if sent.is_empty() {
        // Nothing went out (a missing document, denied access, …): the
        // cause is the same for every batch, so say it once, and leave no
        // output directory; the run record says that nothing was sent.
        if let Some(first) = not_sent.into_iter().next() {
            return Err(first.error);
        }
        return Err(Error::NoTargets("no host to send to".into()));
    }
    let mut outcomes: Vec<HostOutcome> = Vec::new();
    for batch in &not_sent {
        let cause = batch.error.to_string();
        for h in &batch.hosts {
            let mut o = HostOutcome::new(h.id.to_string(), h.name.clone(), Status::Failed);
            o.cause = Some(cause.clone());
            outcomes.push(o);
        }
    }
    let out = create_out(&plan.record.out)?;

    let recording_ends = params.start_at + params.duration_s as u64;
    let until_end = Duration::from_secs(recording_ends.saturating_sub(now_epoch()));
    let total = until_end + plan.timeout;
    let deadline = Instant::now() + total;
    let bars = progress.hosts(&hosts, total);
    let waited = wait::until_done(
        &aws,
        &sent,
        Instant::now() + until_end,
        deadline,
        &bars,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    bars.finish();
    let fleet = match waited {
        Waited::Done(fleet) => fleet,
        Waited::Interrupted(fleet) => {
            progress.note("interrupted: cancelling the remote commands…");
            for (command_id, ids) in fleet.in_flight() {
                let names: Vec<_> = ids.iter().map(|i| i.to_string()).collect();
                match aws.cancel_command(&command_id, &ids).await {
                    Ok(()) => progress.note(&format!("cancelled {}", names.join(", "))),
                    Err(e) => progress.note(&format!(
                        "could not cancel {} ({command_id}): {e}",
                        names.join(", ")
                    )),
                }
            }
            return Err(Error::Interrupted);
        }
    };

    let mut succeeded = Vec::new();
    for state in fleet.into_states() {
        if state.status == InvocationStatus::Success {
            succeeded.push(state.host);
            continue;
        }
        let mut o = HostOutcome::new(
            state.host.id.to_string(),
            state.host.name.clone(),
            Status::Failed,
        );
        o.ssm_status = Some(state.status.to_string());
        o.cause = Some(match &state.command_reason {
            Some(reason) => reason.clone(),
            None => failure_cause(state.status, state.response_code, &state.output),
        });
        o.next_step = Some(state.status.next_step().to_string());
        o.output_tail = Some(report::tail(&state.output, 6));
        outcomes.push(o);
    }

    // The wait stage installed a Ctrl-C handler, which would otherwise
    // swallow Ctrl-C from here on; the commands are done, so just stop.
    let select = Select::default();
    let fetched = fetch_and_render(
        &s3,
        &plan.bucket,
        &plan.prefix,
        &params.run_id,
        succeeded,
        &out,
        &select,
        progress,
    );
    let (fetched_outcomes, mut rendered, infos) = tokio::select! {
        done = fetched => done,
        _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted),
    };
    outcomes.extend(fetched_outcomes);
    outcomes.sort_by(|a, b| a.host.cmp(&b.host));
    for s in resolved.skipped {
        let mut o = HostOutcome::new(s.host.id.to_string(), s.host.name, Status::Skipped);
        o.cause = Some(s.reason.to_string());
        outcomes.push(o);
    }
    rendered.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let folded: Vec<Folded> = rendered.iter().map(|(_, f)| f.clone()).collect();
    let merged_svg = merge(&folded, &out.join("fleet.svg"), &params.run_id)?;
    fleet_pprof(&rendered, &infos, merged_svg.as_deref(), progress);
    let diff = match &plan.baseline {
        Some(_) => {
            for o in &mut outcomes {
                let baseline =
                    InstanceId::parse(&o.host).is_some_and(|id| baseline_ids.contains(&id));
                o.role = Some(if baseline {
                    Role::Baseline
                } else {
                    Role::Target
                });
            }
            compare_fleet(&rendered, &baseline_ids, &out, progress)?
        }
        None => None,
    };
    let mut report_params = vec![Param::new("target", &plan.target)];
    if let Some(b) = &plan.baseline {
        report_params.push(Param::new("baseline", b));
    }
    report_params.extend([
        Param::new("duration", format!("{} s", params.duration_s)),
        Param::new("frequency", format!("{} Hz", params.frequency_hz)),
        Param::new("processes", pids_text(&params)),
        Param::new("started at", iso_utc(params.start_at)),
        Param::new("region", aws.region()),
        Param::new("bucket region", s3.s3_region()),
        Param::new(
            "bucket",
            format!("s3://{}/{}{}/", plan.bucket, plan.prefix, params.run_id),
        ),
        Param::new("document", &plan.document),
    ]);
    let report = RunReport {
        run_id: params.run_id.clone(),
        command: "ssm".into(),
        params: report_params,
        out,
        merged_svg,
        hosts: outcomes,
        diff,
        report: None,
    };
    finish(report, progress, plan.record.json, plan.record.open).await
}

/// fetch → collapse → render for hosts whose invocation succeeded (or, for
/// `fetch`, whose upload completed). A host whose download, check or render
/// fails becomes a failed outcome; the others are drawn.
#[allow(clippy::too_many_arguments)] // the run's coordinates, the output and what to fold
async fn fetch_and_render(
    aws: &Aws,
    bucket: &str,
    prefix: &str,
    run_id: &str,
    hosts: Vec<Host>,
    out: &Path,
    select: &Select,
    progress: &Progress,
) -> (
    Vec<HostOutcome>,
    Vec<(Host, Folded)>,
    HashMap<InstanceId, pprof::HostInfo>,
) {
    progress.info(&format!("downloading {} host(s)…", hosts.len()));
    let fetched = fetch::stacks(aws, bucket, prefix, run_id, hosts, out).await;
    let mut outcomes = Vec::new();
    let mut ready = Vec::new();
    for f in fetched {
        match f {
            Ok(f) => ready.push(f),
            Err((host, cause)) => {
                let mut o = HostOutcome::new(host.id.to_string(), host.name, Status::Failed);
                o.ssm_status = Some("Success".into());
                o.cause = Some(cause);
                o.next_step = Some(
                    "rerun flamefire for this host; if it repeats, check the host's disk and curl"
                        .into(),
                );
                outcomes.push(o);
            }
        }
    }

    let paths: Vec<PathBuf> = ready.iter().map(|f| f.perf.clone()).collect();
    let select = select.clone();
    let collapsed = tokio::task::spawn_blocking(move || collapse::files_with(&paths, &select))
        .await
        .expect("collapse task does not panic");
    let mut rendered = Vec::new();
    let mut infos = HashMap::new();
    for (f, result) in ready.into_iter().zip(collapsed) {
        let id = f.host.id.to_string();
        let mut o = HostOutcome::new(id.clone(), f.host.name.clone(), Status::Failed);
        o.ssm_status = Some("Success".into());
        o.warnings = f.meta.warnings.clone();
        o.processes = f.meta.targets.clone();
        o.stacks = Some(f.perf.clone());
        let drawn = result.map_err(Error::from).and_then(|mut folded| {
            folded.name = f.host.label();
            let svg = out.join(format!("{id}.svg"));
            render::svg(&folded, &labels(&f.host.label(), &f.meta, &folded), &svg)?;
            Ok((folded, svg))
        });
        match drawn {
            Ok((folded, svg)) => {
                o.status = Status::Rendered;
                o.samples = Some(folded.samples);
                o.heatmap = heatmap::of(&folded);
                o.top_functions = hot(&folded);
                o.folded = Some(svg.with_extension("folded"));
                let info = pprof::HostInfo::from_meta(&f.meta, run_id, &id, f.host.name.as_deref());
                write_pprof(&[(&folded, &info)], &svg, progress);
                infos.insert(f.host.id.clone(), info);
                o.svg = Some(svg);
                rendered.push((f.host, folded));
            }
            Err(e) => o.cause = Some(e.to_string()),
        }
        outcomes.push(o);
    }
    (outcomes, rendered, infos)
}

/// Beside an SVG (`x.svg`), its stacks as a pprof profile (`x.pb.gz`), for
/// `go tool pprof`, Pyroscope or Parca. Best effort, like report.html.
fn write_pprof(parts: &[(&Folded, &pprof::HostInfo)], svg: &Path, progress: &Progress) {
    let path = svg.with_extension("pb.gz");
    if let Err(e) = pprof::write(parts, &path) {
        progress.note(&format!("warning: could not write {}: {e}", path.display()));
    }
}

/// `fleet.pb.gz` beside `fleet.svg`: every host's samples, labelled with the host.
fn fleet_pprof(
    rendered: &[(Host, Folded)],
    infos: &HashMap<InstanceId, pprof::HostInfo>,
    fleet_svg: Option<&Path>,
    progress: &Progress,
) {
    let Some(svg) = fleet_svg else { return };
    let fallback = pprof::HostInfo::default();
    let parts: Vec<_> = rendered
        .iter()
        .map(|(host, folded)| (folded, infos.get(&host.id).unwrap_or(&fallback)))
        .collect();
    write_pprof(&parts, svg, progress);
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

/// The diff of the merged baseline hosts (BEFORE) against the merged target
/// hosts (AFTER), when both sides have at least one flamegraph.
fn compare_fleet(
    rendered: &[(Host, Folded)],
    baseline_ids: &HashSet<InstanceId>,
    out: &Path,
    progress: &Progress,
) -> Result<Option<DiffOutcome>> {
    let (baseline, targets): (Vec<_>, Vec<_>) = rendered
        .iter()
        .partition(|(host, _)| baseline_ids.contains(&host.id));
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
    let side = |hosts: &[&(Host, Folded)], name: &str| {
        let folded = Folded::new(
            name,
            hosts.iter().flat_map(|(_, f)| f.stacks.iter().cloned()),
        );
        // Titles and the summary stay one line however big the fleet.
        const NAMED: usize = 3;
        let mut label = hosts
            .iter()
            .take(NAMED)
            .map(|(h, _)| h.label())
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
    let now = SystemTime::now();
    // The last upload flamefire waits for: the end of the recording plus --timeout.
    let last_upload = Duration::from_secs(start_delay + params.duration_s as u64) + plan.timeout;
    if let Some(expiry) = creds.expires {
        presign::check_expiry(expiry, now, last_upload, plan.timeout)?;
    }
    let expires_in = last_upload + Duration::from_secs(UPLOAD_MARGIN_S);
    let key_prefix = format!("{}{}/", plan.prefix, params.run_id);
    let region = s3.s3_region();
    let signed = presign::sign(&PostRequest {
        bucket: &plan.bucket,
        region,
        conditions: presign::run_conditions(&plan.bucket, &key_prefix, MAX_UPLOAD_BYTES),
        now,
        expires_in,
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: creds.session_token.as_deref(),
    });
    Ok(UploadFields {
        url: presign::post_url(
            &plan.bucket,
            region,
            presign::hosts_endpoint(s3.endpoint_url())?,
        )?,
        key_prefix,
        policy: signed.policy,
        credential: signed.credential,
        date: signed.date,
        signature: signed.signature,
        security_token: signed.security_token,
    })
}

/// `<prefix><run-id>/run.json`: what `flamefire runs` lists later. Written
/// before anything is sent (an error here ends the run), and again when
/// some hosts could not be sent to.
async fn record_run(
    s3: &Aws,
    plan: &SsmPlan,
    params: &document::RecordParams,
    hosts: &[targets::Host],
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
    let key = format!("{}{}/run.json", plan.prefix, params.run_id);
    let body = serde_json::to_vec(&record).expect("the run record serialises");
    s3.put_run_record(&plan.bucket, &key, body).await
}

/// One line saying why a host ended the way it did, from SSM's status and
/// the recorder's own last error line.
fn failure_cause(status: InvocationStatus, code: Option<i32>, output: &str) -> String {
    let said = crate::local::recorder_error(output);
    match (status, said) {
        (InvocationStatus::Failed, Some(line)) => line,
        (InvocationStatus::Failed, None) => {
            format!("the recorder failed (exit {})", code.unwrap_or(-1))
        }
        (InvocationStatus::GaveUp, _) => "no final status before the deadline".into(),
        (other, _) => format!("SSM reported {other}"),
    }
}

fn labels(host: &str, meta: &Meta, folded: &Folded) -> Labels {
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

/// The merged flamegraph with each part as a root frame, when there are several.
fn merge(parts: &[Folded], out: &Path, what: &str) -> Result<Option<PathBuf>> {
    if parts.len() < 2 {
        return Ok(None);
    }
    let refs: Vec<&Folded> = parts.iter().collect();
    let samples: u64 = parts.iter().map(|p| p.samples).sum();
    let labels = Labels {
        title: format!("CPU flamegraph: {} inputs merged", parts.len()),
        subtitle: format!("{what} • {samples} samples • {}", iso_utc(now_epoch())),
    };
    render::merged(&refs, &labels, out)?;
    Ok(Some(out.to_path_buf()))
}

fn create_out(out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io("create", out, e))?;
    Ok(out.to_path_buf())
}

/// The leaf functions with the most samples, for the report.
fn hot(folded: &Folded) -> Vec<HotFunction> {
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

fn pids_text(params: &document::RecordParams) -> String {
    match &params.pids {
        Pids::All => format!("every `{}` process", params.process_name),
        Pids::Listed(pids) => {
            let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
            format!("pids {}", pids.join(", "))
        }
    }
}

/// `2–3.5 s after the first sample`, for labels; `None` for the whole profile.
fn window_text(window: Window) -> Option<String> {
    match (window.from_s, window.to_s) {
        (None, None) => None,
        (Some(from), None) => Some(format!("from {from} s after the first sample")),
        (None, Some(to)) => Some(format!("the first {to} s")),
        (Some(from), Some(to)) => Some(format!("{from}–{to} s after the first sample")),
    }
}

/// `--event` and `--weight` as report parameters, when they are not the defaults.
fn fold_params(fold: &crate::cli::FoldPlan) -> Vec<Param> {
    let mut params = Vec::new();
    if let Some(event) = &fold.event {
        params.push(Param::new("event", event));
    }
    params.push(Param::new(
        "weight",
        match fold.weight {
            collapse::Weight::Sample => "1 per sample",
            collapse::Weight::Period => "sample period",
        },
    ));
    params
}

/// Says on stderr which event type was folded when an input holds several.
fn note_other_events(progress: &Progress, input: &str, folded: &Folded) {
    if folded.other_events.is_empty() {
        return;
    }
    let others: Vec<String> = folded
        .other_events
        .iter()
        .map(|(event, n)| format!("{event} ({n} samples)"))
        .collect();
    progress.note(&format!(
        "{input}: folded {} ({} samples); it also holds {} (pick one with --event)",
        folded.event.as_deref().unwrap_or("?"),
        folded.sample_count,
        others.join(", ")
    ));
}

/// Writes report.html, prints the summary and the results, opens the
/// report if asked, and gives the exit code.
async fn finish(mut report: RunReport, progress: &Progress, json: bool, open: bool) -> Result<u8> {
    let page = report.out.join("report.html");
    match html::write(&report, &page) {
        Ok(()) => report.report = Some(page),
        Err(e) => progress.note(&format!("warning: could not write {}: {e}", page.display())),
    }
    report::table(progress, &report);
    report::stdout(&report, json);
    if let Some(page) = report.report.as_ref().filter(|_| open) {
        open_in_browser(page, progress);
    }
    match report.exit_code() {
        exit::NOTHING => Err(Error::AllHostsFailed),
        code => Ok(code),
    }
}

fn open_in_browser(path: &Path, progress: &Progress) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        progress.note(&format!(
            "could not run {opener} to open {}: {e}",
            path.display()
        ));
    }
}
