//! The pipeline, one readable function per subcommand.
//!
//! Each function reads top to bottom as the stages run; the stages
//! themselves live in their own modules. Nothing here exits the process:
//! `main` turns the returned code or `Error` into an exit status.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::aws::Aws;
use crate::cli::{
    Cli, Command, DeployArgs, DocumentCommand, LocalPlan, RenderPlan, SsmPlan, check_document_name,
    new_run_id,
};
use crate::collapse::{self, Folded};
use crate::dispatch::{self, DispatchPlan};
use crate::document::{self, Pids, UploadFields};
use crate::error::{Error, Result, exit};
use crate::fetch::{self, Meta};
use crate::local;
use crate::presign::{self, PostRequest};
use crate::progress::Progress;
use crate::render::{self, Labels};
use crate::report::{self, HostOutcome, RunReport, Status};
use crate::targets;
use crate::time::{iso_utc, now_epoch};
use crate::wait::{self, InvocationStatus, Waited};

/// Hosts get this long after SendCommand before the shared start, so that
/// delivery (and a perf install) does not eat into the recorded window.
const START_DELAY_S: u64 = 5;
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
        Command::Ssm(args) => ssm(args.plan(run_id)?, &progress).await,
        Command::Document(DocumentCommand::Print) => {
            report::print_stdout(document::YAML);
            Ok(exit::OK)
        }
        Command::Document(DocumentCommand::Deploy(args)) => deploy(args, &progress).await,
    }
}

async fn deploy(args: DeployArgs, progress: &Progress) -> Result<u8> {
    check_document_name(&args.document)?;
    document::embedded()?;
    let aws = Aws::load(args.profile.as_deref(), args.region.as_deref()).await?;
    let version = aws.deploy_document(&args.document, document::YAML).await?;
    progress.info(&format!(
        "deployed {} in {} (default version {version})",
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
    let folded = tokio::task::spawn_blocking(move || collapse::file(&stacks))
        .await
        .expect("collapse task does not panic")?;
    let host = if meta.hostname.is_empty() {
        "this machine".to_string()
    } else {
        meta.hostname.clone()
    };
    let svg = out.join("flamegraph.svg");
    render::svg(&folded, &labels(&host, &meta, &folded), &svg)?;
    let mut outcome = HostOutcome::new(host, None, Status::Rendered);
    outcome.samples = Some(folded.samples);
    outcome.warnings = meta.warnings.clone();
    outcome.folded = Some(svg.with_extension("folded"));
    outcome.stacks = Some(out.join("stacks.gz"));
    outcome.svg = Some(svg.clone());
    let report = RunReport {
        run_id: plan.record.params.run_id.clone(),
        out: out.clone(),
        merged_svg: None,
        hosts: vec![outcome],
    };
    finish(
        &report,
        progress,
        plan.record.json,
        plan.record.open.then_some(&svg),
    )
}

async fn render_files(plan: RenderPlan, progress: &Progress) -> Result<u8> {
    let out = create_out(&plan.out)?;
    let files = plan.files.clone();
    let results = tokio::task::spawn_blocking(move || collapse::files(&files))
        .await
        .expect("collapse task does not panic");
    let mut outcomes = Vec::new();
    let mut rendered: Vec<Folded> = Vec::new();
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
            subtitle: format!("{} samples • {}", folded.samples, path.display()),
        };
        let mut o = HostOutcome::new(label, None, Status::Rendered);
        match render::svg(&folded, &labels, &svg) {
            Ok(()) => {
                o.samples = Some(folded.samples);
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
    let report = RunReport {
        run_id: String::new(),
        out,
        merged_svg: merged_svg.clone(),
        hosts: outcomes,
    };
    let open = merged_svg.or_else(|| report.hosts.iter().find_map(|h| h.svg.clone()));
    finish(
        &report,
        progress,
        false,
        open.as_ref().filter(|_| plan.open),
    )
}

async fn ssm(plan: SsmPlan, progress: &Progress) -> Result<u8> {
    let aws = Aws::load(plan.profile.as_deref(), plan.region.as_deref()).await?;
    progress.info(&format!("resolving {} in {}…", plan.target, aws.region()));
    let resolved = targets::resolve(&aws, &plan.target).await?;
    for s in &resolved.skipped {
        progress.note(&format!("skipped {}: {}", s.host.label(), s.reason));
    }
    aws.check_bucket(&plan.bucket).await?;
    let mut params = plan.record.params.clone();
    params.start_at = now_epoch() + START_DELAY_S + dispatch::batches(&resolved.hosts).len() as u64;
    params.upload = Some(upload_fields(&aws, &plan, &params).await?);
    params.validate(document::embedded()?)?;
    let out = create_out(&plan.record.out)?;
    record_run(&aws, &plan, &params, &resolved.hosts).await;

    progress.info(&format!(
        "run {}: sending {} to {} host(s); recording {}s from {}",
        params.run_id,
        plan.document,
        resolved.hosts.len(),
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
    let mut outcomes: Vec<HostOutcome> = Vec::new();
    for batch in &not_sent {
        for h in &batch.hosts {
            let mut o = HostOutcome::new(h.id.to_string(), h.name.clone(), Status::Failed);
            o.cause = Some(format!("SendCommand failed: {}", batch.cause));
            outcomes.push(o);
        }
    }
    if sent.is_empty() {
        // Nothing went out: the cause is the same for every batch, say it once.
        let cause = not_sent
            .first()
            .map(|n| n.cause.clone())
            .unwrap_or_default();
        return Err(Error::Aws {
            call: "ssm:SendCommand",
            message: cause,
            next: "see above".into(),
        });
    }

    let hosts: Vec<_> = sent.iter().flat_map(|s| s.hosts.clone()).collect();
    let recording_ends = params.start_at + params.duration_s as u64;
    let total = Duration::from_secs(recording_ends.saturating_sub(now_epoch())) + plan.timeout;
    let deadline = Instant::now() + total;
    let bars = progress.hosts(&hosts, total);
    let waited = wait::until_done(&aws, &sent, deadline, &bars, async {
        let _ = tokio::signal::ctrl_c().await;
    })
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
        o.cause = Some(failure_cause(
            state.status,
            state.response_code,
            &state.output,
        ));
        o.next_step = Some(state.status.next_step().to_string());
        o.output_tail = Some(report::tail(&state.output, 6));
        outcomes.push(o);
    }

    progress.info(&format!("downloading {} host(s)…", succeeded.len()));
    let fetched = fetch::stacks(
        &aws,
        &plan.bucket,
        &plan.prefix,
        &params.run_id,
        succeeded,
        &out,
    )
    .await;
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
    let collapsed = tokio::task::spawn_blocking(move || collapse::files(&paths))
        .await
        .expect("collapse task does not panic");
    let mut rendered = Vec::new();
    for (f, result) in ready.into_iter().zip(collapsed) {
        let id = f.host.id.to_string();
        let mut o = HostOutcome::new(id.clone(), f.host.name.clone(), Status::Failed);
        o.ssm_status = Some("Success".into());
        o.warnings = f.meta.warnings.clone();
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
                o.folded = Some(svg.with_extension("folded"));
                o.svg = Some(svg);
                rendered.push(folded);
            }
            Err(e) => o.cause = Some(e.to_string()),
        }
        outcomes.push(o);
    }
    outcomes.sort_by(|a, b| a.host.cmp(&b.host));
    for s in resolved.skipped {
        let mut o = HostOutcome::new(s.host.id.to_string(), s.host.name, Status::Skipped);
        o.cause = Some(s.reason.to_string());
        outcomes.push(o);
    }
    let merged_svg = merge(&rendered, &out.join("fleet.svg"), &params.run_id)?;
    let report = RunReport {
        run_id: params.run_id.clone(),
        out,
        merged_svg: merged_svg.clone(),
        hosts: outcomes,
    };
    let open = merged_svg.or_else(|| report.hosts.iter().find_map(|h| h.svg.clone()));
    finish(
        &report,
        progress,
        plan.record.json,
        open.as_ref().filter(|_| plan.record.open),
    )
}

/// Signs the run's upload policy with the caller's credentials.
async fn upload_fields(
    aws: &Aws,
    plan: &SsmPlan,
    params: &document::RecordParams,
) -> Result<UploadFields> {
    let creds = aws.signing_credentials().await?;
    let now = SystemTime::now();
    let expires_in = Duration::from_secs(
        params.start_at.saturating_sub(now_epoch())
            + params.duration_s as u64
            + plan.timeout.as_secs()
            + UPLOAD_MARGIN_S,
    );
    if let Some(expiry) = creds.expires {
        if expiry < now + expires_in {
            tracing::warn!(
                "your session credentials expire before the upload window closes; uploads after that fail"
            );
        }
    }
    let key_prefix = format!("{}{}/", plan.prefix, params.run_id);
    let signed = presign::sign(&PostRequest {
        bucket: &plan.bucket,
        region: aws.region(),
        conditions: presign::run_conditions(&plan.bucket, &key_prefix, MAX_UPLOAD_BYTES),
        now,
        expires_in,
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: creds.session_token.as_deref(),
    });
    Ok(UploadFields {
        url: presign::post_url(&plan.bucket, aws.region(), aws.endpoint_url()),
        key_prefix,
        policy: signed.policy,
        credential: signed.credential,
        date: signed.date,
        signature: signed.signature,
        security_token: signed.security_token,
    })
}

/// `<prefix><run-id>/run.json`: what `flamefire runs` lists later. Best effort:
/// a run is still useful without it.
async fn record_run(
    aws: &Aws,
    plan: &SsmPlan,
    params: &document::RecordParams,
    hosts: &[targets::Host],
) {
    let who = aws.caller_identity().await.map(|(_, arn)| arn).ok();
    let run = serde_json::json!({
        "run_id": params.run_id,
        "started_at": params.start_at,
        "target": plan.target.to_string(),
        "hosts": hosts.iter().map(|h| h.id.to_string()).collect::<Vec<_>>(),
        "duration_s": params.duration_s,
        "frequency_hz": params.frequency_hz,
        "document": plan.document,
        "started_by": who,
    });
    let key = format!("{}{}/run.json", plan.prefix, params.run_id);
    if let Err(e) = aws
        .put(&plan.bucket, &key, run.to_string().into_bytes())
        .await
    {
        tracing::warn!("could not write {key}: {e}");
    }
}

/// One line saying why a host ended the way it did, from SSM's status and
/// the recorder's own last error line.
fn failure_cause(status: InvocationStatus, code: Option<i32>, output: &str) -> String {
    let said = output
        .lines()
        .rev()
        .find(|l| l.contains("flamefire:") || l.to_lowercase().contains("error"))
        .map(|l| l.trim().to_string());
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
            "{host} • {}s at {} Hz • {} samples • {date}",
            meta.duration_s, meta.frequency_hz, folded.samples
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

fn finish(
    report: &RunReport,
    progress: &Progress,
    json: bool,
    open: Option<&PathBuf>,
) -> Result<u8> {
    report::table(progress, report);
    report::stdout(report, json);
    if let Some(svg) = open {
        open_in_browser(svg, progress);
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
