//! Stage 7: host outcomes → the summary on stderr, the results on stdout.
//!
//! Input: one `HostOutcome` per host (rendered, failed or skipped), and the
//! diff when there is one. Output: a table on stderr (host, Name, status,
//! samples, warnings, SVG or cause and next step, then the biggest changes of
//! a diff), the SVG paths (or `--json`) on stdout, and the exit code. A
//! broken pipe on stdout is not an error. `html` turns the same `RunReport`
//! into report.html.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::diff::Change;
use crate::error::exit;
use crate::progress::Progress;

use crate::model::{HostOutcome, Status};

/// A differential comparison's results.
#[derive(Debug, Clone, Serialize)]
pub struct DiffOutcome {
    /// What was compared, for display: input paths or host lists.
    pub before: String,
    pub after: String,
    pub before_samples: u64,
    pub after_samples: u64,
    /// AFTER's shape, red where it grew.
    pub svg: PathBuf,
    /// BEFORE's shape with the same colours: what shrank or vanished.
    pub negated_svg: PathBuf,
    /// The functions whose inclusive share changed the most.
    pub changes: Vec<Change>,
}

/// One line of the run's parameters (`duration`, `30 s`), for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: String,
    pub value: String,
}

impl Param {
    pub fn new(name: &str, value: impl ToString) -> Param {
        Param {
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    /// The subcommand: `ssm`, `local`, `render` or `diff`.
    pub command: String,
    /// What the run was asked to do, in display form.
    pub params: Vec<Param>,
    pub out: PathBuf,
    /// The merged flamegraph of every rendered host, when there are several.
    pub merged_svg: Option<PathBuf>,
    pub hosts: Vec<HostOutcome>,
    pub diff: Option<DiffOutcome>,
    /// report.html, once written.
    pub report: Option<PathBuf>,
}

impl RunReport {
    /// A run's report before any host has ended.
    pub fn new(run_id: &str, command: &str, params: Vec<Param>, out: &std::path::Path) -> Self {
        RunReport {
            run_id: run_id.to_string(),
            command: command.to_string(),
            params,
            out: out.to_path_buf(),
            merged_svg: None,
            hosts: Vec::new(),
            diff: None,
            report: None,
        }
    }

    /// 0 all rendered, 1 some failed, 2 none rendered. Skipped hosts were
    /// reported before dispatch and do not make a run partial.
    pub fn exit_code(&self) -> u8 {
        let count = |status| self.hosts.iter().filter(|h| h.status() == status).count();
        let (rendered, failed) = (count(Status::Rendered), count(Status::Failed));
        match (rendered, failed) {
            (0, _) => exit::NOTHING,
            (_, 0) => exit::OK,
            _ => exit::PARTIAL,
        }
    }
}

/// The last `lines` non-empty lines of a host's output.
pub fn tail(output: &str, lines: usize) -> String {
    let kept: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

/// The summary table, on stderr.
/// The rendered hosts' warnings, one line per distinct text: a fleet whose
/// hosts all say the same thing says it once, with how many hosts did.
fn warning_lines(report: &RunReport) -> Vec<String> {
    let mut by_text: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for h in report.hosts.iter().filter_map(HostOutcome::rendered) {
        for w in &h.warnings {
            let i = *index.entry(w.as_str()).or_insert_with(|| {
                by_text.push((w, Vec::new()));
                by_text.len() - 1
            });
            by_text[i].1.push(&h.who.host);
        }
    }
    by_text
        .into_iter()
        .map(|(text, hosts)| match hosts.as_slice() {
            [one] => format!("warning: {one}: {text}"),
            [a, b, c] => format!("warning: {a}, {b}, {c}: {text}"),
            [a, b] => format!("warning: {a}, {b}: {text}"),
            [a, b, c, ..] => format!(
                "warning: {a}, {b}, {c} and {} more hosts: {text}",
                hosts.len() - 3
            ),
            [] => unreachable!("a warning comes with its host"),
        })
        .collect()
}

pub fn table(progress: &Progress, report: &RunReport) {
    let mut lines = vec![format!(
        "{:<21} {:<18} {:<10} {:>8} {:>5}  {}",
        "HOST", "NAME", "STATUS", "SAMPLES", "WARN", "RESULT"
    )];
    for h in &report.hosts {
        let status = match h.status() {
            Status::Rendered => "ok",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        let result = match (h.svg(), h.cause()) {
            (Some(svg), _) => svg.display().to_string(),
            (None, Some(cause)) => cause.lines().next().unwrap_or_default().to_string(),
            _ => String::new(),
        };
        lines.push(format!(
            "{:<21} {:<18} {:<10} {:>8} {:>5}  {}",
            h.host(),
            truncate(h.who().name.as_deref().unwrap_or("-"), 18),
            status,
            h.samples()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            h.warnings().len(),
            result
        ));
    }
    lines.extend(warning_lines(report));
    for h in &report.hosts {
        let HostOutcome::Failed(h) = h else {
            continue;
        };
        lines.push(String::new());
        lines.push(format!("{} failed: {}", h.who.host, h.cause));
        if let Some(t) = h.output_tail.as_deref().filter(|t| !t.is_empty()) {
            for l in t.lines() {
                lines.push(format!("  | {l}"));
            }
        }
        if let Some(n) = h.next_step.as_deref().filter(|n| !n.is_empty()) {
            lines.push(format!("  next step: {n}"));
        }
    }
    if let Some(m) = &report.merged_svg {
        lines.push(format!("merged flamegraph: {}", m.display()));
    }
    if let Some(diff) = &report.diff {
        lines.push(String::new());
        lines.push(changes(diff));
    }
    if let Some(r) = &report.report {
        lines.push(format!("report: {}", r.display()));
    }
    progress.note(&lines.join("\n"));
}

/// The biggest changes of a diff, one function a line, in percentage points
/// of inclusive share (the share of samples whose stack holds the function).
pub fn changes(diff: &DiffOutcome) -> String {
    let mut lines = vec![
        format!("{} → {}", diff.before, diff.after),
        format!(
            "{:>8} {:>8} {:>8}  FUNCTION (share of samples on stack; top {} by change)",
            "BEFORE", "AFTER", "CHANGE", CHANGES_SHOWN
        ),
    ];
    if diff.changes.is_empty() {
        lines.push("  (no function's share changed)".into());
    }
    for c in &diff.changes {
        lines.push(format!(
            "{:>7.1}% {:>7.1}% {:>+8.1}  {}",
            100.0 * c.before,
            100.0 * c.after,
            100.0 * c.delta(),
            c.function
        ));
    }
    lines.push(format!(
        "differential: {} (red grew), {} (blue shrank or vanished)",
        diff.svg.display(),
        diff.negated_svg.display()
    ));
    lines.join("\n")
}

/// How many changed functions a diff summary lists.
pub const CHANGES_SHOWN: usize = 10;

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// Results on stdout: one SVG path per line (differentials first, then the
/// merged one, then each host's), or JSON.
pub fn stdout(report: &RunReport, json: bool) {
    let text = if json {
        let mut s = serde_json::to_string_pretty(report).expect("report serialises");
        s.push('\n');
        s
    } else {
        let mut s = String::new();
        if let Some(d) = &report.diff {
            s.push_str(&format!(
                "{}\n{}\n",
                d.svg.display(),
                d.negated_svg.display()
            ));
        }
        if let Some(m) = &report.merged_svg {
            s.push_str(&format!("{}\n", m.display()));
        }
        for svg in report.hosts.iter().filter_map(HostOutcome::svg) {
            s.push_str(&format!("{}\n", svg.display()));
        }
        s
    };
    print_stdout(&text);
}

/// Writes results to stdout. A closed pipe (`flamefire … | head -1`) is the
/// reader's choice, not an error.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_warning_many_hosts_share_is_one_line() {
        let hosts = (0..5)
            .map(|i| {
                let mut o = rendered(&format!("i-{i}"));
                o.warnings = vec!["same on all".into()];
                if i == 2 {
                    o.warnings.push("only here".into());
                }
                HostOutcome::Rendered(o)
            })
            .chain([HostOutcome::Failed(Failed {
                upload: Some(Upload {
                    stacks: "/raw/i-9.perf".into(),
                    warnings: vec!["a failed host's warning is its own".into()],
                    processes: Vec::new(),
                }),
                ..Failed::new(Who::new("i-9", None), "collapse failed")
            })])
            .collect();
        let report = RunReport {
            hosts,
            ..RunReport::new("r", "ssm", Vec::new(), std::path::Path::new("/tmp"))
        };
        assert_eq!(
            warning_lines(&report),
            vec![
                "warning: i-0, i-1, i-2 and 2 more hosts: same on all".to_string(),
                "warning: i-2: only here".to_string(),
            ]
        );
    }

    use super::*;
    use crate::model::{Failed, Rendered, Upload, Who};

    fn rendered(host: &str) -> Rendered {
        Rendered {
            who: Who::new(host, None),
            ssm_status: None,
            samples: 1,
            warnings: Vec::new(),
            svg: format!("/out/{host}.svg").into(),
            folded: format!("/out/{host}.folded").into(),
            stacks: format!("/out/raw/{host}.perf").into(),
            top_functions: Vec::new(),
            processes: Vec::new(),
            heatmap: None,
        }
    }

    fn outcome(status: Status) -> HostOutcome {
        let who = Who::new("i-01234567", None);
        match status {
            Status::Rendered => HostOutcome::Rendered(rendered("i-01234567")),
            Status::Failed => HostOutcome::failed(who, "failed"),
            Status::Skipped => HostOutcome::skipped(who, "stopped"),
        }
    }

    fn report(statuses: Vec<Status>) -> RunReport {
        RunReport {
            run_id: "r".into(),
            command: "ssm".into(),
            params: Vec::new(),
            out: PathBuf::from("."),
            merged_svg: None,
            hosts: statuses.into_iter().map(outcome).collect(),
            diff: None,
            report: None,
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            report(vec![Status::Rendered, Status::Skipped]).exit_code(),
            0
        );
        assert_eq!(
            report(vec![Status::Rendered, Status::Failed]).exit_code(),
            1
        );
        assert_eq!(report(vec![Status::Failed, Status::Skipped]).exit_code(), 2);
        assert_eq!(report(vec![]).exit_code(), 2);
    }

    #[test]
    fn tail_keeps_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n\n", 2), "b\nc");
        assert_eq!(tail("", 3), "");
    }
}
