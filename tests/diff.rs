//! `flamefire diff` on the real captures: the healthy/sick pair must point
//! at the HTML parser, in the terminal summary and in the SVG colours.

use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::support::{flamefire, repo};

fn capture(name: &str) -> PathBuf {
    repo().join(format!("tests/data/captures/{name}.perf.gz"))
}

/// Every frame of an inferno SVG: (title, fill colour as r, g, b).
pub fn frames(svg: &Path) -> Vec<(String, (u8, u8, u8))> {
    let text = std::fs::read_to_string(svg).expect("svg exists");
    let frame =
        regex::Regex::new(r#"<title>([^<]*)</title><rect [^>]*fill="rgb\((\d+),(\d+),(\d+)\)""#)
            .unwrap();
    frame
        .captures_iter(&text)
        .map(|c| {
            let n = |i: usize| c[i].parse::<u8>().unwrap();
            (c[1].to_string(), (n(2), n(3), n(4)))
        })
        .collect()
}

/// Samples in an inferno frame title: `name (1,234 samples, 5.6%…)`.
fn samples_of(title: &str) -> u64 {
    let inner = title.rsplit_once(" (").unwrap().1;
    inner
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

/// The widest frame whose title contains `name`.
fn widest(frames: &[(String, (u8, u8, u8))], name: &str) -> (String, (u8, u8, u8)) {
    frames
        .iter()
        .filter(|(t, _)| t.contains(name))
        .max_by_key(|(t, _)| samples_of(t))
        .cloned()
        .unwrap_or_else(|| panic!("no frame named {name}"))
}

fn is_red((r, g, b): (u8, u8, u8)) -> bool {
    r == 255 && g == b && g < 250
}

fn is_blue((r, g, b): (u8, u8, u8)) -> bool {
    b == 255 && r == g && r < 250
}

/// The summary's rows: (before %, after %, change, function).
fn summary(stderr: &str) -> Vec<(f64, f64, f64, String)> {
    stderr
        .lines()
        .skip_while(|l| !l.contains("CHANGE  FUNCTION"))
        .skip(1)
        .take_while(|l| !l.starts_with("differential:"))
        .map(|l| {
            let mut words = l.split_whitespace();
            let mut pct = || {
                words
                    .next()
                    .unwrap()
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .unwrap()
            };
            let (before, after, change) = (pct(), pct(), pct());
            let function = words.collect::<Vec<_>>().join(" ");
            (before, after, change, function)
        })
        .collect()
}

#[test]
fn healthy_vs_sick_puts_the_html_parser_on_top_in_summary_and_svg() {
    let out = tempfile::tempdir().unwrap();
    let assert = flamefire()
        .args(["diff", "--out"])
        .arg(out.path())
        .arg(capture("healthy"))
        .arg(capture("sick"))
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let diff_svg = out.path().join("diff.svg");
    let negated_svg = out.path().join("diff-negated.svg");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            diff_svg.to_str().unwrap(),
            negated_svg.to_str().unwrap(),
            out.path().join("before.svg").to_str().unwrap(),
            out.path().join("after.svg").to_str().unwrap(),
        ],
        "stdout carries only the SVG paths"
    );
    assert!(out.path().join("report.html").is_file());

    // The terminal summary: top 10 by |change|, the HTML parser the top growth.
    let rows = summary(&stderr);
    assert!(!rows.is_empty() && rows.len() <= 10, "{stderr}");
    let top_growth = rows.iter().find(|r| r.2 > 0.0).unwrap();
    assert!(
        top_growth.3.contains("parseHtmlDocument") || top_growth.3.contains("tokenizeHtml"),
        "top growth is {top_growth:?}:\n{stderr}"
    );
    assert!(top_growth.0 < 1.0 && top_growth.1 > 50.0, "{top_growth:?}");
    let changes: Vec<f64> = rows.iter().map(|r| r.2.abs()).collect();
    assert!(
        changes.windows(2).all(|w| w[0] >= w[1]),
        "sorted by |change|: {changes:?}"
    );
    let serve = rows
        .iter()
        .find(|r| r.3.contains("serveJson"))
        .expect("serveJson listed");
    assert!(serve.2 < -50.0, "serveJson shrank: {serve:?}");

    // diff.svg: AFTER's shape, the parser's frames coloured as growth.
    let grown = frames(&diff_svg);
    for name in ["tokenizeHtml", "parseHtmlDocument"] {
        let (title, fill) = widest(&grown, name);
        assert!(is_red(fill), "{title} is {fill:?}, not red");
    }
    assert!(
        !grown.iter().any(|(t, _)| t.contains("serveJson")),
        "sick has no serveJson"
    );

    // diff-negated.svg: BEFORE's shape; what vanished shows as shrinkage.
    let negated = frames(&negated_svg);
    let (title, fill) = widest(&negated, "serveJson");
    assert!(is_blue(fill), "{title} is {fill:?}, not blue");
    assert!(
        title.contains("; -"),
        "the title gives the negative change: {title}"
    );
    assert!(!negated.iter().any(|(t, _)| t.contains("tokenizeHtml")));
}

#[test]
fn swapping_the_inputs_swaps_growth_and_shrinkage() {
    let out = tempfile::tempdir().unwrap();
    let assert = flamefire()
        .args(["diff", "--json", "--out"])
        .arg(out.path())
        .arg(capture("sick"))
        .arg(capture("healthy"))
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let changes = report["diff"]["changes"].as_array().unwrap();
    let first_growth = changes
        .iter()
        .find(|c| c["after"].as_f64() > c["before"].as_f64())
        .unwrap();
    assert!(
        first_growth["function"]
            .as_str()
            .unwrap()
            .contains("serveJson"),
        "{changes:?}"
    );
    let (title, fill) = widest(&frames(&out.path().join("diff.svg")), "serveJson");
    assert!(is_red(fill), "{title} is {fill:?}");
    let (title, fill) = widest(
        &frames(&out.path().join("diff-negated.svg")),
        "tokenizeHtml",
    );
    assert!(is_blue(fill), "{title} is {fill:?}");
    assert_eq!(report["command"], "diff");
    assert_eq!(report["hosts"][0]["role"], "baseline");
    assert_eq!(report["hosts"][1]["role"], "target");
    assert_eq!(
        report["report"].as_str(),
        Some(out.path().join("report.html").to_str().unwrap())
    );
}

#[test]
fn a_missing_input_is_exit_2_naming_it() {
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args(["diff", "--out"])
        .arg(out.path())
        .arg(capture("healthy"))
        .arg("/nonexistent/sick.perf.gz")
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("/nonexistent/sick.perf.gz"));
}

#[test]
fn folded_inputs_are_compared_too() {
    let out = tempfile::tempdir().unwrap();
    let expected = repo().join("tests/data/expected");
    let assert = flamefire()
        .args(["diff", "--out"])
        .arg(out.path())
        .arg(expected.join("healthy.folded"))
        .arg(expected.join("sick.folded"))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let rows = summary(&stderr);
    assert!(rows[0].3.contains("parseHtmlDocument"), "{stderr}");
}
