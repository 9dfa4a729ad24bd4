//! Time slices: the heat map of the burst capture shows its bursts, and
//! `--from/--to` folds exactly the samples of that window.

use std::io::Read;
use std::path::{Path, PathBuf};

use flamefire::heatmap;
use predicates::prelude::*;

use crate::support::{flamefire, repo};

fn capture(name: &str) -> PathBuf {
    repo().join(format!("tests/data/captures/{name}.perf.gz"))
}

/// Every event's timestamp, read independently of flamefire: the number
/// followed by a colon on each unindented, non-comment line.
fn timestamps(path: &Path) -> Vec<f64> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let time = regex::Regex::new(r"\s(\d+\.\d+):\s").unwrap();
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with(['\t', ' ', '#']))
        .map(|l| {
            time.captures(l).expect("event line has a time")[1]
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn the_burst_capture_shows_its_bursts_in_the_heat_map() {
    let map = heatmap::file(&capture("burst")).unwrap();
    assert_eq!(map.rows, 50, "20 ms slices");
    let totals = map.column_totals();
    let max = *totals.iter().max().unwrap();
    let busy: Vec<usize> = (0..totals.len()).filter(|&i| totals[i] * 3 > max).collect();
    assert_eq!(busy.len(), 2, "two bursts: {totals:?}");
    assert_eq!(busy[1] - busy[0], 3, "3 s apart: {totals:?}");
    assert_eq!(
        totals[busy[0] + 1],
        0,
        "idle between the bursts: {totals:?}"
    );
    for &column in &busy {
        // a burst lasts about a second: it fills most of its column's slices
        let lit = map.counts[column].iter().filter(|&&c| c > 0).count();
        assert!(
            lit >= 20,
            "second {column} has only {lit} busy slices of 50"
        );
    }
    // the sick capture is busy all the time: no idle second
    let sick = heatmap::file(&capture("sick")).unwrap().column_totals();
    assert!(sick.iter().all(|&t| t > 0), "{sick:?}");
}

#[test]
fn heat_maps_count_the_samples_that_collapse_folds() {
    for name in ["burst", "sick", "healthy", "no-map", "cluster-basic-prof"] {
        let path = capture(name);
        let map = heatmap::file(&path).unwrap();
        assert_eq!(
            map.samples,
            flamefire::stacks::file(&path).unwrap().samples,
            "{name}"
        );
        assert_eq!(map.samples, timestamps(&path).len() as u64, "{name}");
    }
}

/// Samples in the `.folded` file that `render` wrote.
fn folded_samples(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum()
}

#[test]
fn from_to_selects_exactly_the_events_in_the_window() {
    let path = capture("burst");
    let times = timestamps(&path);
    let origin = times[0];
    for (from, to) in [(3.0, 4.5), (0.0, 1.0), (0.25, 3.25), (2.9, 6.0)] {
        let expected = times
            .iter()
            .filter(|&&t| t - origin >= from && t - origin < to)
            .count() as u64;
        assert!(expected > 0, "window {from}–{to} is empty");
        let out = tempfile::tempdir().unwrap();
        flamefire()
            .args([
                "render",
                "--from",
                &from.to_string(),
                "--to",
                &to.to_string(),
                "--out",
            ])
            .arg(out.path())
            .arg(&path)
            .assert()
            .success();
        let samples = folded_samples(&out.path().join("burst.folded"));
        assert_eq!(samples, expected, "window {from}–{to}");
        assert!(samples < times.len() as u64);
        let svg = std::fs::read_to_string(out.path().join("burst.svg")).unwrap();
        assert!(
            svg.contains(&format!("{from}–{to} s after the first sample")),
            "the subtitle names the window"
        );
    }
}

#[test]
fn an_idle_window_has_nothing_to_draw() {
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args(["render", "--from", "1.2", "--to", "2.5", "--out"])
        .arg(out.path())
        .arg(capture("burst"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds no samples"));
}

#[test]
fn windows_need_timestamps_and_an_order() {
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args(["render", "--from", "1", "--out"])
        .arg(out.path())
        .arg(repo().join("tests/data/expected/burst.folded"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no timestamps"));
    flamefire()
        .args(["diff", "--from", "3", "--to", "1"])
        .arg(capture("healthy"))
        .arg(capture("sick"))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("--to 1 must be after --from 3"));
}

#[test]
fn diff_of_a_window_compares_only_those_samples() {
    // Each side's window is taken from its own first sample: here the
    // first second of each, which in the burst capture is its first burst.
    let out = tempfile::tempdir().unwrap();
    let assert = flamefire()
        .args(["diff", "--json", "--from", "0", "--to", "1", "--out"])
        .arg(out.path())
        .arg(capture("healthy"))
        .arg(capture("burst"))
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let times = timestamps(&capture("burst"));
    let in_window = times.iter().filter(|&&t| t - times[0] < 1.0).count() as u64;
    assert_eq!(report["diff"]["after_samples"].as_u64(), Some(in_window));
    assert!(
        report["params"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "window")
    );
}
