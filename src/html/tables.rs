//! The page's text sections: the run's parameters, the hosts table, and
//! the hosts without a flamegraph with their causes and next steps. All
//! host text is escaped.

use std::fmt::Write as _;

use super::escape;
use crate::report::{HostOutcome, Role, RunReport, Status};

pub(super) fn parameters(h: &mut String, report: &RunReport) {
    h.push_str("<table class=\"params\">\n");
    if !report.run_id.is_empty() {
        let _ = writeln!(
            h,
            "<tr><th>run</th><td><code>{}</code></td></tr>",
            escape(&report.run_id)
        );
    }
    for p in &report.params {
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(&p.name),
            escape(&p.value)
        );
    }
    let _ = writeln!(
        h,
        "<tr><th>output</th><td><code>{}</code></td></tr>\n</table>",
        escape(&report.out.display().to_string())
    );
}

pub(super) fn hosts_table(h: &mut String, report: &RunReport) {
    h.push_str(
        "<h2 id=\"summary\">Hosts</h2>\n<table class=\"hosts\"><tr><th>host</th><th>Name</th>\
         <th>status</th><th>samples</th><th>top functions (self)</th><th>warnings</th></tr>\n",
    );
    for o in &report.hosts {
        let (class, status) = status_text(o);
        let role = match o.role {
            Some(Role::Baseline) => " <small>(baseline)</small>",
            Some(Role::Target) => " <small>(target)</small>",
            None => "",
        };
        let _ = write!(
            h,
            "<tr><td><code>{}</code>{role}</td><td>{}</td><td class=\"{class}\">{}</td><td class=\"num\">{}</td><td>",
            escape(&o.host),
            escape(o.name.as_deref().unwrap_or("")),
            escape(status),
            o.samples.map(|s| s.to_string()).unwrap_or_default()
        );
        for f in o.top_functions.iter().take(5) {
            let _ = write!(
                h,
                "<div><code>{}</code> {:.1}%</div>",
                escape(&f.name),
                100.0 * f.share
            );
        }
        h.push_str("</td><td>");
        if !o.warnings.is_empty() {
            h.push_str("<ul class=\"warnings\">");
            for w in &o.warnings {
                let _ = write!(h, "<li>{}</li>", escape(w));
            }
            h.push_str("</ul>");
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str("</table>\n");
}

pub(super) fn failures(h: &mut String, report: &RunReport) {
    let failed: Vec<&HostOutcome> = report
        .hosts
        .iter()
        .filter(|o| !matches!(o.status, Status::Rendered))
        .collect();
    if failed.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"failed\">Hosts without a flamegraph</h2>\n");
    for o in failed {
        let (class, status) = status_text(o);
        let _ = writeln!(
            h,
            "<section class=\"failure\"><h3>{} <span class=\"{class}\">{}</span></h3>",
            escape(&host_label(o)),
            escape(status)
        );
        if let Some(s) = &o.ssm_status {
            let _ = writeln!(h, "<p>SSM status: <code>{}</code></p>", escape(s));
        }
        if let Some(c) = &o.cause {
            let _ = writeln!(h, "<p>cause: {}</p>", escape(c));
        }
        if let Some(n) = &o.next_step {
            let _ = writeln!(h, "<p>next step: {}</p>", escape(n));
        }
        if let Some(t) = o.output_tail.as_deref().filter(|t| !t.is_empty()) {
            let _ = writeln!(h, "<pre>{}</pre>", escape(t));
        }
        h.push_str("</section>\n");
    }
}

fn status_text(o: &HostOutcome) -> (&'static str, &'static str) {
    match o.status {
        Status::Rendered => ("ok", "ok"),
        Status::Failed => ("failed", "FAILED"),
        Status::Skipped => ("skipped", "skipped"),
        Status::Cancelled => ("cancelled", "cancelled"),
    }
}

pub(super) fn host_label(o: &HostOutcome) -> String {
    match &o.name {
        Some(name) => format!("{} ({name})", o.host),
        None => o.host.clone(),
    }
}
