//! Stage **html** (after report): a `RunReport` and its SVG files → one
//! self-contained `report.html`.
//!
//! The page holds the run's parameters, the hosts table, the differential
//! flamegraphs and the biggest changes when there are some, the merged
//! flamegraph, then each host's heat map and flamegraph, and the failed hosts
//! with their causes. It loads nothing: no network, no external script, font
//! or style, and its Content-Security-Policy forbids any fetch.
//!
//! Each flamegraph stays its own SVG document, in an `<iframe srcdoc>`, so
//! that inferno's script (search, zoom) works as in the standalone file.
//! `srcdoc` rather than a `data:` URL: no URL length limit, and the frame
//! keeps the page's origin. inferno's script records zoom and search in the
//! URL with `history.replaceState`, which throws in a `srcdoc` (or `data:`)
//! document, so a two-line shim in front of it ignores that failure.
//!
//! Everything that comes from hosts (names, tags, command lines, warnings,
//! causes, function names) is hostile: every text and attribute is escaped,
//! and the SVG is escaped as a whole into the `srcdoc` attribute.
//!
//! It must not collapse, render or decide the exit code.
//!
//! Here: the page top to bottom and the time view's data. Beside it:
//! `tables` (parameters, hosts, failures), `frame` (one flamegraph's
//! iframe), `heat` (a heat map as inline SVG), `csp` (the policy's hashes),
//! and the time view's own `report.js` and `report.css`.

mod csp;
mod frame;
mod heat;
mod tables;

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;

use crate::heatmap::Timeline;
use crate::model::{HostOutcome, Rendered};
use crate::report::RunReport;

use csp::{Csp, sha256};
use frame::flamegraph;
use heat::heatmap;
use tables::{failures, host_label, hosts_table, parameters};

/// The page's own script and style (the time view), embedded whole.
const REPORT_JS: &str = include_str!("report.js");
const REPORT_CSS: &str = include_str!("report.css");

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem;color:#222;background:#fff}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin:1.5rem 0 .4rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176f2c}.failed{color:#b00020;font-weight:600}.skipped,.cancelled{color:#777}
.grew{color:#b00020}.shrank{color:#1f4fb5}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem}
pre{background:#f6f6f6;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
iframe.flamegraph{width:100%;border:1px solid #ddd;display:block}
.note{color:#555;font-size:.85rem;margin:.25rem 0}
ul.warnings{margin:.2rem 0;padding-left:1.2rem}
svg.heatmap{display:block;margin:.3rem 0}
";

/// Writes the report of `report` to `out`, reading its SVG files. Hosts
/// past the first [`INLINE_HOSTS`] get a page of their own beside it
/// (`<svg name>.html`, the same time view), which report.html links.
pub fn write(report: &RunReport, out: &Path) -> io::Result<()> {
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    for o in rendered(report).into_iter().skip(INLINE_HOSTS) {
        if let Some(name) = own_page(o) {
            let alone = RunReport {
                hosts: vec![HostOutcome::Rendered(o.clone())],
                merged_svg: None,
                diff: None,
                ..report.clone()
            };
            write_atomically(&page(&alone, &read), &dir.join(name))?;
        }
    }
    write_atomically(&page(report, &read), out)
}

fn write_atomically(page: &str, out: &Path) -> io::Result<()> {
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(page.as_bytes())?;
    temp.flush()?;
    temp.persist(out).map_err(|e| e.error)?;
    Ok(())
}

/// The page of a host past the first [`INLINE_HOSTS`]: its SVG's name with
/// `.html`, when it has a time line to show.
fn own_page(o: &Rendered) -> Option<String> {
    o.heatmap.as_ref()?.timeline.as_ref()?;
    Some(format!("{}.html", o.svg.file_stem()?.to_string_lossy()))
}

fn rendered(report: &RunReport) -> Vec<&Rendered> {
    report
        .hosts
        .iter()
        .filter_map(HostOutcome::rendered)
        .collect()
}

/// Hosts whose flamegraph and time line are embedded in the page; the rest
/// are linked.
const INLINE_HOSTS: usize = 50;

/// What the time view's script reads: the embedded hosts' time lines.
#[derive(serde::Serialize)]
struct ScopeData<'a> {
    /// Cells per second.
    rows: usize,
    /// What the weights count: `samples`, or `period` with `--weight period`.
    unit: &'static str,
    hosts: Vec<ScopeHost<'a>>,
}

#[derive(serde::Serialize)]
struct ScopeHost<'a> {
    label: String,
    /// Its root frame in the fleet's flamegraph.
    root: String,
    t: &'a Timeline,
}

/// The whole page. `read` returns an SVG file's text (`None` if unreadable).
pub fn page(report: &RunReport, read: &dyn Fn(&Path) -> Option<String>) -> String {
    let mut csp = Csp::default();
    let mut h = String::with_capacity(64 * 1024);
    let title = match report.run_id.as_str() {
        "" => format!("flamefire {}", report.command),
        id => format!("flamefire {} {id}", report.command),
    };
    let _ = writeln!(h, "<h1>{}</h1>", escape(&title));
    parameters(&mut h, report);
    hosts_table(&mut h, report);
    let rendered = rendered(report);
    let timed: Vec<(usize, &Rendered, &Timeline)> = rendered
        .iter()
        .take(INLINE_HOSTS)
        .enumerate()
        .filter_map(|(i, o)| Some((i, *o, o.heatmap.as_ref()?.timeline.as_ref()?)))
        .collect();
    if !timed.is_empty() {
        scope(&mut h, &timed, &mut csp);
    }
    if let Some(diff) = &report.diff {
        let _ = write!(
            h,
            "<h2 id=\"diff\">Differential: {} → {}</h2>\n<p class=\"note\">Normalised by sample count \
             ({} samples before, {} after). Share of samples whose stack holds the function; \
             <span class=\"grew\">red grew</span>, <span class=\"shrank\">blue shrank</span>.</p>\n",
            escape(&diff.before),
            escape(&diff.after),
            diff.before_samples,
            diff.after_samples
        );
        h.push_str(
            "<table class=\"changes\"><tr><th>function</th><th>before</th><th>after</th><th>change</th></tr>\n",
        );
        for c in &diff.changes {
            let class = if c.delta() > 0.0 { "grew" } else { "shrank" };
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{:.1}%</td><td class=\"num\">{:.1}%</td>\
                 <td class=\"num {class}\">{:+.1}</td></tr>",
                escape(&c.function),
                100.0 * c.before,
                100.0 * c.after,
                100.0 * c.delta()
            );
        }
        h.push_str("</table>\n");
        flamegraph(
            &mut h,
            "diff",
            "AFTER's flamegraph, coloured by change since BEFORE",
            &diff.svg,
            read,
            &mut csp,
        );
        flamegraph(
            &mut h,
            "diff-negated",
            "BEFORE's flamegraph, same colours: frames that shrank or vanished",
            &diff.negated_svg,
            read,
            &mut csp,
        );
    }
    if let Some(merged) = &report.merged_svg {
        h.push_str("<h2 id=\"merged\">Merged flamegraph</h2>\n");
        flamegraph(&mut h, "merged", "", merged, read, &mut csp);
    }
    if !rendered.is_empty() {
        h.push_str("<h2 id=\"hosts\">Each host</h2>\n");
    }
    for (i, o) in rendered.iter().enumerate() {
        let _ = writeln!(
            h,
            "<section class=\"host\" data-host=\"{}\"><h3>{}</h3>",
            escape(&o.who.host),
            escape(&host_label(&o.who))
        );
        if !o.processes.is_empty() {
            h.push_str("<table class=\"processes\"><tr><th>pid</th><th>command line</th><th>node</th><th>JIT map</th></tr>\n");
            for p in &o.processes {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    p.pid,
                    escape(&p.cmdline),
                    escape(&p.node_version),
                    escape(&p.map)
                );
            }
            h.push_str("</table>\n");
        }
        let in_scope = timed.iter().position(|(j, _, _)| *j == i);
        let name = o
            .svg
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match in_scope {
            // its flamegraph is the time view's, whole profile first
            Some(_) => {
                let _ = writeln!(
                    h,
                    "<p class=\"note\"><a href=\"#sel={}:0.00:{}\">Open in the time view</a> \
                     (whole profile; pick a stretch on its heat map) · <a href=\"{}\">{}</a></p>",
                    in_scope.unwrap_or(0),
                    o.heatmap.as_ref().map_or(0, |m| m.counts.len()),
                    escape(&name),
                    escape(&name)
                );
            }
            None if i < INLINE_HOSTS => {
                if let Some(map) = &o.heatmap {
                    heatmap(&mut h, map);
                }
                flamegraph(&mut h, &format!("host-{i}"), "", &o.svg, read, &mut csp);
            }
            // A big fleet's page would otherwise carry every host's SVG
            // (about 100 KB each): link the files beside it instead.
            None => {
                let own = own_page(o);
                let target = own.as_deref().unwrap_or(&name);
                let _ = writeln!(
                    h,
                    "<p class=\"note\"><a href=\"{}\">{}</a> (hosts after the first {INLINE_HOSTS} are linked, not embedded{})</p>",
                    escape(target),
                    escape(target),
                    if own.is_some() {
                        ": its page has the same time view"
                    } else {
                        ""
                    }
                );
            }
        }
        h.push_str("</section>\n");
    }
    failures(&mut h, report);
    csp.styles.insert(sha256(&style()));
    let mut page = String::with_capacity(h.len() + 4096);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{}</style></head><body>\n",
        escape(&csp.policy()),
        escape(&title),
        style()
    );
    page.push_str(&h);
    page.push_str("</body></html>\n");
    page
}

fn style() -> String {
    format!("{STYLE}{REPORT_CSS}")
}

/// The time view: the fleet's strips (one per host, on a shared time axis)
/// when there are several hosts, the chosen host's heat map, and the
/// flamegraph of the selected stretch beside them, drawn by [`REPORT_JS`]
/// from the time lines embedded as JSON.
fn scope(h: &mut String, timed: &[(usize, &Rendered, &Timeline)], csp: &mut Csp) {
    // One run folds every host with the same --weight.
    let weight = timed.first().map(|(_, _, t)| t.weight).unwrap_or_default();
    let data = ScopeData {
        rows: crate::heatmap::ROWS,
        unit: weight.unit(),
        hosts: timed
            .iter()
            .map(|(_, o, t)| ScopeHost {
                label: host_label(&o.who),
                root: o.who.host.clone(),
                t,
            })
            .collect(),
    };
    h.push_str(
        "<h2 id=\"time\">Time view</h2>\n<p class=\"note\">Drag across the heat map (or click a cell) to draw \
         the flamegraph of exactly that stretch, as <code>flamefire render --from S --to S</code> would. \
         Shift-drag (or tick <em>compare</em>) a second stretch to see it against the first, as \
         <code>flamefire diff</code> does. Arrows move the selection, Escape resets; the address keeps the stretch.</p>\n\
         <div class=\"scope\" id=\"scope\"><div class=\"maps\">",
    );
    if timed.len() > 1 {
        h.push_str(
            "<p class=\"legend\">One row per host on a shared time axis (100 ms per column): drag on a host's row \
             for that host, on the bottom row for the whole fleet; click a name to see its heat map.</p>\
             <canvas class=\"fleet\" id=\"fleet\"></canvas>",
        );
    }
    h.push_str(
        "<p class=\"legend\" id=\"heat-title\"></p><canvas class=\"heat\" id=\"heat\" tabindex=\"0\" \
         aria-label=\"heat map: drag to select a stretch\"></canvas></div>\
         <div class=\"viewer\"><div class=\"bar\"><label>search <input type=\"search\" id=\"search\" \
         placeholder=\"regex\"></label><span id=\"matched\"></span>\
         <label><input type=\"checkbox\" id=\"compare\"> compare (next stretch against this one)</label>\
         <button type=\"button\" id=\"unzoom\">unzoom</button><button type=\"button\" id=\"reset\">reset</button>\
         <button type=\"button\" id=\"save\">save .folded</button></div>\
         <p id=\"selection\" aria-live=\"polite\"></p><canvas id=\"flame\"></canvas>\
         <div class=\"tip\" id=\"tip\" hidden></div></div></div>\n",
    );
    let json = serde_json::to_string(&data)
        .expect("time lines serialise")
        .replace('<', "\\u003c");
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"flamefire-data\">{json}</script>"
    );
    let _ = writeln!(h, "<script id=\"flamefire-js\">{REPORT_JS}</script>");
    csp.scripts.insert(sha256(REPORT_JS));
}

/// Escapes text for HTML content and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heatmap::Heatmap;
    use crate::model::{Failed, Weight, Who};
    use crate::report::Param;
    use std::path::PathBuf;

    /// A host drawn to `svg`, with nothing else to show.
    fn drawn(host: &str, name: Option<&str>, svg: &str) -> Rendered {
        Rendered {
            who: Who::new(host, name.map(str::to_string)),
            ssm_status: None,
            samples: 1,
            warnings: Vec::new(),
            svg: PathBuf::from(svg),
            folded: PathBuf::from(svg).with_extension("folded"),
            stacks: PathBuf::from("/tmp/out/raw/x.perf"),
            top_functions: Vec::new(),
            processes: Vec::new(),
            heatmap: None,
        }
    }

    const SVG: &str = "<?xml version=\"1.0\"?><svg version=\"1.1\" width=\"1200\" height=\"326\" onload=\"init(evt)\"><script>var a = 1 < 2 && \"x\";</script><title>f</title></svg>";

    fn report(hosts: Vec<HostOutcome>) -> RunReport {
        RunReport {
            run_id: "20261127T080000Z-abcd".into(),
            command: "ssm".into(),
            params: vec![Param::new("target", "tag Role=api")],
            out: PathBuf::from("/tmp/out"),
            merged_svg: None,
            hosts,
            diff: None,
            report: None,
        }
    }

    fn read(_: &Path) -> Option<String> {
        Some(SVG.to_string())
    }

    #[test]
    fn escape_covers_text_and_both_quotes() {
        assert_eq!(
            escape("<a href='x' title=\"y\">&</a>"),
            "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn svgs_are_escaped_whole_into_srcdoc_with_the_shim_first() {
        let o = HostOutcome::Rendered(drawn("i-0abc", None, "/tmp/out/i-0abc.svg"));
        let page = page(&report(vec![o]), &read);
        let start = page.find("srcdoc=\"").unwrap() + 8;
        let srcdoc = &page[start..start + page[start..].find('"').unwrap()];
        assert!(!srcdoc.contains('<') && !srcdoc.contains('"'), "{srcdoc}");
        let shim = srcdoc.find("history.replaceState=").unwrap();
        assert!(shim < srcdoc.find("var a = 1").unwrap());
        assert!(srcdoc.contains("1 &lt; 2 &amp;&amp; &quot;x&quot;"));
        assert!(page.contains("height=\"330\""), "height from the SVG");
    }

    #[test]
    fn a_big_fleet_links_the_flamegraphs_past_the_first_fifty() {
        let hosts = (0..INLINE_HOSTS + 2)
            .map(|i| {
                let host = format!("i-{i:017x}");
                HostOutcome::Rendered(drawn(&host, None, &format!("/tmp/out/{host}.svg")))
            })
            .collect();
        let page = page(&report(hosts), &read);
        assert_eq!(page.matches("<iframe").count(), INLINE_HOSTS);
        let last = format!("i-{:017x}.svg", INLINE_HOSTS + 1);
        assert!(page.contains(&format!("<a href=\"{last}\">{last}</a>")));
    }

    #[test]
    fn missing_svgs_are_named_not_fatal() {
        let o = HostOutcome::Rendered(drawn("i-0abc", None, "/tmp/out/<gone>.svg"));
        let page = page(&report(vec![o]), &|_| None);
        assert!(page.contains("could not read /tmp/out/&lt;gone&gt;.svg"));
    }

    #[test]
    fn failures_show_cause_next_step_and_output() {
        let o = HostOutcome::Failed(Failed {
            next_step: Some("install perf".into()),
            output_tail: Some("line 1\nline 2".into()),
            ..Failed::new(Who::new("i-0def", Some("api-2".into())), "perf: not found")
        });
        let page = page(&report(vec![o]), &read);
        let failed = &page[page.find("id=\"failed\"").unwrap()..];
        for text in [
            "i-0def (api-2)",
            "FAILED",
            "perf: not found",
            "install perf",
            "line 1\nline 2",
        ] {
            assert!(failed.contains(text), "{text}");
        }
    }

    #[test]
    fn the_page_loads_nothing_from_outside() {
        let page = page(&report(vec![]), &read);
        assert!(page.contains("default-src &#39;none&#39;"));
        for external in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn frame_names_are_json_data_and_scripts_are_allowed_by_hash() {
        let hostile = "</script><script>alert(1)</script><!--";
        let stacks = vec![(format!("node;{hostile}"), 2)];
        let mut map = Heatmap::from_offsets([0.0, 0.5], 50);
        map.timeline = Some(Timeline::new(
            &stacks,
            &[(0, 0, 1), (500_000_000, 0, 1)],
            Weight::Sample,
        ));
        let o = HostOutcome::Rendered(Rendered {
            heatmap: Some(map),
            ..drawn("i-0abc", Some(hostile), "/tmp/out/i-0abc.svg")
        });
        let page = page(&report(vec![o]), &read);
        let json = embedded_data(&page);
        assert_eq!(json["hosts"][0]["t"]["frames"][1], hostile);
        assert_eq!(page.matches("<script").count(), 2, "data and code only");
        for end in ["</script", "<script", "<!--"] {
            assert!(!REPORT_JS.contains(end), "report.js would end early: {end}");
        }
        assert!(page.contains(&format!("&#39;{}&#39;", sha256(REPORT_JS))));
        assert!(!page.contains("unsafe-inline"));
    }

    /// The JSON the time view's script reads; no `<` may end it early.
    fn embedded_data(page: &str) -> serde_json::Value {
        let open = "<script type=\"application/json\" id=\"flamefire-data\">";
        let data = &page[page.find(open).unwrap() + open.len()..];
        let data = &data[..data.find("</script>").unwrap()];
        assert!(!data.contains('<'), "{data}");
        serde_json::from_str(data).unwrap()
    }

    /// The time view names what its numbers count from the time line's type
    /// (`--weight period` sums periods), whatever the report's labels say.
    #[test]
    fn the_time_views_unit_comes_from_the_time_lines_weight() {
        let unit_of = |weight| {
            let stacks = vec![("node;a".to_string(), 2)];
            let mut map = Heatmap::from_offsets([0.0, 0.5], 50);
            map.timeline = Some(Timeline::new(
                &stacks,
                &[(0, 0, 7), (500_000_000, 0, 9)],
                weight,
            ));
            let o = HostOutcome::Rendered(Rendered {
                heatmap: Some(map),
                ..drawn("i-0abc", None, "/tmp/out/i-0abc.svg")
            });
            let page = page(&report(vec![o]), &read);
            embedded_data(&page)["unit"].as_str().unwrap().to_string()
        };
        assert_eq!(unit_of(Weight::Sample), "samples");
        assert_eq!(unit_of(Weight::Period), "period");
    }
}
