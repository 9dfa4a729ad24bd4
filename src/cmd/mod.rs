//! One module per subcommand. Each reads top to bottom as its stages
//! run; the stages themselves live in their own modules (see `lib.rs`).
//! Nothing here exits the process: `main` turns the returned code or
//! `Error` into an exit status. This file holds what several share.

pub mod admin;
pub mod diff;
pub mod fetch;
mod fleet;
pub mod local;
pub mod render;
pub mod ssm;

use std::path::{Path, PathBuf};

use crate::aws::Aws;
use crate::cli::BucketPlan;
use crate::collapse::{self, Folded, Window};
use crate::document::{self, Pids};
use crate::error::{Error, Result, exit};
use crate::html;
use crate::progress::Progress;
use crate::render::Labels;
use crate::report::{self, CHANGES_SHOWN, DiffOutcome, Param, RunReport};
use crate::time::{iso_utc, now_epoch};

/// The AWS clients for a bucket command, S3 in the bucket's own region.
pub async fn load(loc: &BucketPlan) -> Result<Aws> {
    let aws = Aws::load(&loc.aws).await?;
    Ok(aws.for_bucket(&loc.bucket, &loc.prefix).await)
}

/// Draws diff.svg and diff-negated.svg in `out` and ranks the changes.
pub fn compare(
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
    crate::render::differential(
        &crate::diff::growth(before, after),
        &Labels {
            title: format!("Differential flamegraph: {after_label} vs {before_label}"),
            subtitle: format!(
                "AFTER's stacks; red: larger share of samples than BEFORE, blue: smaller • {normalised}"
            ),
        },
        &svg,
    )?;
    crate::render::differential(
        &crate::diff::negated(before, after),
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
        changes: crate::diff::changes(before, after, CHANGES_SHOWN),
    })
}

/// The merged flamegraph with each part as a root frame, when there are several.
pub fn merge(parts: &[&Folded], out: &Path, what: &str) -> Result<Option<PathBuf>> {
    if parts.len() < 2 {
        return Ok(None);
    }
    let samples: u64 = parts.iter().map(|p| p.samples).sum();
    let labels = Labels {
        title: format!("CPU flamegraph: {} inputs merged", parts.len()),
        subtitle: format!("{what} • {samples} samples • {}", iso_utc(now_epoch())),
    };
    crate::render::merged(parts, &labels, out)?;
    Ok(Some(out.to_path_buf()))
}

pub fn create_out(out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io("create", out, e))?;
    Ok(out.to_path_buf())
}

pub fn pids_text(params: &document::RecordParams) -> String {
    match &params.pids {
        Pids::All => format!("every `{}` process", params.process_name),
        Pids::Listed(pids) => {
            let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
            format!("pids {}", pids.join(", "))
        }
    }
}

/// `2–3.5 s after the first sample`, for labels; `None` for the whole profile.
pub fn window_text(window: Window) -> Option<String> {
    match (window.from_s, window.to_s) {
        (None, None) => None,
        (Some(from), None) => Some(format!("from {from} s after the first sample")),
        (None, Some(to)) => Some(format!("the first {to} s")),
        (Some(from), Some(to)) => Some(format!("{from}–{to} s after the first sample")),
    }
}

/// `--event` and `--weight` as report parameters, when they are not the defaults.
pub fn fold_params(fold: &crate::cli::FoldPlan) -> Vec<Param> {
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
pub fn note_other_events(progress: &Progress, input: &str, folded: &Folded) {
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
pub async fn finish(
    mut report: RunReport,
    progress: &Progress,
    json: bool,
    open: bool,
) -> Result<u8> {
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

pub fn open_in_browser(path: &Path, progress: &Progress) {
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
