//! report.html: written by every run, self-contained, and hostile text from
//! hosts (Name tags, warnings, command lines, causes) shown, never run.
//! The same page in a real browser: tests/browser/run.sh.

use std::path::{Path, PathBuf};

use flamefire::fetch::MetaTarget;
use flamefire::html;
use flamefire::model::{Failed, HostOutcome, Rendered, Who};
use flamefire::report::{Param, RunReport};

use crate::support::{Emulator, flamefire, repo, unique};

const HOSTILE: &str = "<script>alert(\"x\")</script><img src=x onerror='alert(1)'>";

/// Every `<script` in the page that is neither inferno's (escaped in a
/// srcdoc, inferno's own scripts never appear raw) nor the time view's own
/// two (its data, then its code).
fn raw_scripts(page: &str) -> usize {
    page.matches("<script").count()
        - page
            .matches("<script type=\"application/json\" id=\"flamefire-data\">")
            .count()
        - page.matches("<script id=\"flamefire-js\">").count()
}

#[test]
fn hostile_names_warnings_command_lines_and_causes_are_escaped() {
    let ok = HostOutcome::Rendered(Rendered {
        who: Who::new("i-0123456789abcdef0", Some(HOSTILE.into())),
        ssm_status: None,
        samples: 1,
        warnings: vec![format!("map missing for {HOSTILE}")],
        svg: PathBuf::from("/x/ok.svg"),
        folded: PathBuf::from("/x/ok.folded"),
        stacks: PathBuf::from("/x/raw/ok.perf"),
        top_functions: Vec::new(),
        processes: vec![MetaTarget {
            pid: 42,
            cmdline: format!("node {HOSTILE}"),
            node_version: HOSTILE.into(),
            map: "ok".into(),
            map_bytes: 1,
        }],
        heatmap: None,
    });
    // SSM's status is a type now, never the host's text: the rest is.
    let failed = HostOutcome::Failed(Failed {
        next_step: Some(HOSTILE.into()),
        output_tail: Some(HOSTILE.into()),
        ..Failed::new(Who::new(HOSTILE, Some(HOSTILE.into())), HOSTILE)
    });
    let report = RunReport {
        run_id: HOSTILE.into(),
        command: "ssm".into(),
        params: vec![Param::new(HOSTILE, HOSTILE)],
        out: PathBuf::from(HOSTILE),
        merged_svg: None,
        hosts: vec![ok, failed],
        diff: None,
        report: None,
    };
    let svg = "<svg height=\"100\"><title>&lt;script&gt;</title><script><![CDATA[var ok = 1 < 2;]]></script></svg>";
    let page = html::page(&report, &|_| Some(svg.to_string()));
    assert_eq!(
        raw_scripts(&page),
        0,
        "no script element outside the srcdoc:\n{page}"
    );
    assert!(!page.contains("<img"), "{page}");
    assert!(
        !page.contains("onerror='"),
        "attribute quotes are escaped too"
    );
    // every place shows the text, escaped: title, params, table, warnings,
    // command line, node version, failure section
    let shown = page
        .matches("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
        .count();
    assert!(shown >= 12, "hostile text shown {shown} times:\n{page}");
    // the SVG is inside srcdoc, escaped as a whole: its script runs in the
    // frame (it is inferno's), the title text stays text there
    assert!(
        page.contains("&lt;title&gt;&amp;lt;script&amp;gt;&lt;/title&gt;"),
        "{page}"
    );
}

#[test]
fn render_writes_a_self_contained_report_beside_the_svgs() {
    let out = tempfile::tempdir().unwrap();
    let captures = repo().join("tests/data/captures");
    let assert = flamefire()
        .args(["render", "--out"])
        .arg(out.path())
        .arg(captures.join("sick.perf.gz"))
        .arg(captures.join("burst.perf.gz"))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let report = out.path().join("report.html");
    assert!(
        stderr.contains(&format!("report: {}", report.display())),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.lines().all(|l| l.ends_with(".svg")),
        "report.html is not a result line: {stdout}"
    );
    let page = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        page.matches("<iframe class=\"flamegraph\"").count(),
        1,
        "merged; the inputs are drawn by the time view"
    );
    let data = &page[page.find("id=\"flamefire-data\">").unwrap()..];
    let data = &data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()];
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        data["hosts"].as_array().unwrap().len(),
        2,
        "one time line per input"
    );
    assert!(page.contains("Content-Security-Policy"));
    assert!(
        !page.contains("unsafe-inline"),
        "scripts and styles are allowed by hash"
    );
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "url(http",
        "@import",
    ] {
        assert!(!page.contains(external), "the report references {external}");
    }
    // top functions of the sick capture are in the hosts table
    let table = &page[page.find("<table class=\"hosts\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(table.contains("tokenizeHtml"), "{table}");
}

const ONLINE: (&str, &str) = ("flamefire-test:ssm", "online");

fn replay(capture: &Path) -> [(&'static str, String); 3] {
    [
        ("flamefire-test:ssm", "online".to_string()),
        ("flamefire-test:behaviour", "replay".to_string()),
        (
            "flamefire-test:replay-capture",
            capture.display().to_string(),
        ),
    ]
}

fn seed(emu: &Emulator, count: usize, tags: &[(&str, String)]) -> Vec<String> {
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    emu.seed(count, &tags)
}

#[test]
fn ssm_with_a_baseline_profiles_both_and_diffs_them_in_the_report() {
    let emu = Emulator::new();
    let captures = repo().join("tests/data/captures");
    // The sick host's warning names its capture file: make that hostile too.
    let dir = tempfile::tempdir().unwrap();
    let hostile_capture = dir.path().join("<script>alert(1).perf.gz");
    std::fs::copy(captures.join("sick.perf.gz"), &hostile_capture).unwrap();
    let mut sick_tags = replay(&hostile_capture).to_vec();
    sick_tags.push(("Name", "<script>alert(\"name\")</script>".into()));
    let sick = seed(&emu, 1, &sick_tags);
    let healthy = seed(&emu, 2, &replay(&captures.join("healthy.perf.gz")));
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .arg(&sick[0])
        .args(["--baseline", &healthy[0], "--baseline", &healthy[1]])
        .args(["--duration", "1", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let stdout: Vec<String> = String::from_utf8_lossy(&assert.get_output().stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stdout[0], out.path().join("diff.svg").display().to_string());
    assert_eq!(
        stdout[1],
        out.path().join("diff-negated.svg").display().to_string()
    );
    assert_eq!(
        stdout.len(),
        2 + 1 + 3,
        "diffs, fleet.svg and one per host: {stdout:?}"
    );
    let summary = stderr
        .lines()
        .skip_while(|l| !l.contains("CHANGE  FUNCTION"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        summary.contains("parseHtmlDocument") || summary.contains("tokenizeHtml"),
        "top change: {summary}\n{stderr}"
    );
    let sides = stderr
        .lines()
        .find(|l| l.contains(" → "))
        .unwrap_or_default();
    let (before, after) = sides.split_once(" → ").unwrap_or_default();
    assert!(
        before.starts_with("baseline ")
            && before.contains(&healthy[0])
            && before.contains(&healthy[1]),
        "{sides}"
    );
    assert!(
        after.starts_with("targets ") && after.contains(&sick[0]),
        "{sides}"
    );

    let page = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert_eq!(raw_scripts(&page), 0, "hostile Name tag or warning ran");
    assert!(
        page.contains("&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;"),
        "Name tag shown escaped"
    );
    assert!(
        page.contains("replayed capture &lt;script&gt;alert(1).perf.gz"),
        "warning shown escaped"
    );
    assert!(page.contains("id=\"diff\"") && page.contains("id=\"diff-negated\""));
    assert_eq!(page.matches("<small>(baseline)</small>").count(), 2);
    assert_eq!(page.matches("<small>(target)</small>").count(), 1);
}

#[test]
fn a_baseline_tag_selects_the_healthy_side() {
    let emu = Emulator::new();
    let captures = repo().join("tests/data/captures");
    let role = unique("canary");
    let mut healthy_tags = replay(&captures.join("healthy.perf.gz")).to_vec();
    healthy_tags.push(("Role", role.clone()));
    // Chosen by tag: it needs the opt-in tag (issue 9).
    healthy_tags.push(("flamefire", "enabled".to_string()));
    let healthy = seed(&emu, 1, &healthy_tags);
    let sick = seed(&emu, 1, &replay(&captures.join("sick.perf.gz")));
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .arg(&sick[0])
        .args([
            "--baseline-tag",
            &format!("Role={role}"),
            "--json",
            "--duration",
            "1",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let role_of = |id: &str| {
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == id)
            .unwrap()["role"]
            .clone()
    };
    assert_eq!(role_of(&healthy[0]), "baseline");
    assert_eq!(role_of(&sick[0]), "target");
    let top = &report["diff"]["changes"][0];
    assert!(
        top["function"]
            .as_str()
            .unwrap()
            .contains("parseHtmlDocument"),
        "{top}"
    );
    assert!(out.path().join("diff-negated.svg").is_file());
}

#[test]
fn a_baseline_that_matches_nothing_stops_before_dispatch() {
    let emu = Emulator::new();
    let sick = emu.seed(1, &[ONLINE]);
    let out = tempfile::tempdir().unwrap();
    emu.ssm()
        .arg(&sick[0])
        .args([
            "--baseline-tag",
            &format!("Role={}", unique("nobody")),
            "--out",
        ])
        .arg(out.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("baseline: no instance matches"));
    assert!(emu.invocations_of(&sick[0]).is_empty(), "nothing was sent");
}
