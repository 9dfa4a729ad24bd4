//! pprof export, read back by a real client: `go tool pprof` (Debian's
//! golang-go, installed by scripts/bootstrap.sh). Its `-top` and `-traces`
//! must show the same functions and sample totals as the folded output
//! flamefire wrote beside it.
//!
//! The expected per-function counts are derived here from the `.folded`
//! file, with pprof's rules (a function is its name; V8's tier marks and
//! inferno's annotations are not part of it), not with `src/pprof.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{flamefire, repo};

/// `go tool pprof ARGS FILE`, offline: no toolchain download, no module
/// proxy, a throwaway HOME.
fn go_pprof(args: &[&str], file: &Path) -> String {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`go` is missing: run scripts/test.sh (scripts/bootstrap.sh installs Debian's golang-go, which ships `go tool pprof`)"
    );
    let home = tempfile::tempdir().expect("temp dir");
    let out = Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .env("HOME", home.path())
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("PPROF_TMPDIR", home.path())
        .env_remove("PPROF_BINARY_PATH")
        .output()
        .expect("go tool pprof runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof {args:?} {} failed: {}{stdout}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A folded frame as pprof names the function.
fn function_name(frame: &str) -> String {
    let frame = ["_[j]", "_[k]", "_[i]"]
        .iter()
        .find_map(|a| frame.strip_suffix(a))
        .unwrap_or(frame);
    match frame.strip_prefix("JS:") {
        Some(js) if js.contains(' ') => {
            let js = js.trim_start_matches(['*', '^', '~', '+']);
            let name = js.split(' ').next().unwrap_or("");
            if name.is_empty() {
                "(anonymous)".into()
            } else {
                name.into()
            }
        }
        _ => frame.to_string(),
    }
}

/// Self samples per function and the total, from a `.folded` file.
fn expected(folded: &Path) -> (BTreeMap<String, i64>, i64) {
    let text = std::fs::read_to_string(folded).expect("folded file");
    let mut flat = BTreeMap::new();
    let mut total = 0;
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("stack count");
        let count: i64 = count.parse().expect("count");
        let leaf = stack.rsplit(';').next().unwrap();
        *flat.entry(function_name(leaf)).or_insert(0) += count;
        total += count;
    }
    (flat, total)
}

/// `-top` rows: function → flat, and the "of N total" figure.
fn top(output: &str) -> (BTreeMap<String, i64>, i64) {
    let total = output
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("% of ")?;
            rest.strip_suffix(" total")?.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no total in:\n{output}"));
    let mut flat = BTreeMap::new();
    for line in output.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[1].ends_with('%') {
            continue;
        }
        let Ok(count) = fields[0].parse::<i64>() else {
            continue;
        };
        // The name is what follows the five figures (it may hold spaces).
        let mut rest = line.trim_start();
        for _ in 0..5 {
            rest = rest.split_once(char::is_whitespace).unwrap().1.trim_start();
        }
        if count > 0 {
            flat.insert(rest.to_string(), count);
        }
    }
    (flat, total)
}

/// `-traces`: (labels, count) per sample.
fn traces(output: &str) -> Vec<(BTreeMap<String, String>, i64)> {
    let mut samples = Vec::new();
    for block in output
        .split("-----------+-------------------------------------------------------")
        .skip(1)
    {
        let mut labels = BTreeMap::new();
        let mut count = None;
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            if count.is_none() {
                if let Some((k, v)) = line.split_once(":  ") {
                    labels.insert(k.trim().to_string(), v.trim().to_string());
                    continue;
                }
                count = line
                    .split_whitespace()
                    .next()
                    .and_then(|c| c.parse::<i64>().ok());
            }
        }
        if let Some(count) = count {
            samples.push((labels, count));
        }
    }
    samples
}

fn render(inputs: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().expect("temp dir");
    let captures = repo().join("tests/data/captures");
    let mut cmd = flamefire();
    cmd.arg("render").arg("--out").arg(out.path());
    for i in inputs {
        cmd.arg(captures.join(i));
    }
    cmd.assert().success();
    let path = out.path().to_path_buf();
    (out, path)
}

#[test]
fn go_tool_pprof_top_shows_the_folded_functions_and_totals() {
    let (_guard, out) = render(&["sick.perf.gz"]);
    let profile = out.join("sick.pb.gz");
    assert!(
        profile.is_file(),
        "render writes sick.pb.gz beside sick.svg"
    );
    let (want, want_total) = expected(&out.join("sick.folded"));
    assert!(want_total > 100);

    let all = ["-nodecount=100000", "-nodefraction=0", "-edgefraction=0"];
    let text = go_pprof(
        &[&["-top", "-sample_index=samples"][..], &all].concat(),
        &profile,
    );
    let (got, got_total) = top(&text);
    assert_eq!(got_total, want_total, "{text}");
    assert_eq!(got, want, "per-function self samples differ:\n{text}");

    // The default sample type is CPU time: samples × 1e9/99 ns (meta.json: 99 Hz, 5 s).
    let text = go_pprof(&["-top", "-nodecount=5"], &profile);
    assert!(text.contains("Type: cpu"), "{text}");
    assert!(text.contains("Duration: 5s"), "{text}");
    let want_ns = want_total as f64 * (1_000_000_000 / 99) as f64;
    let total = text
        .lines()
        .find_map(|l| {
            l.split_once("Total samples = ")?
                .1
                .split_whitespace()
                .next()
        })
        .unwrap_or_else(|| panic!("no total in:\n{text}"));
    let got_ns = match total.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().unwrap() * 1e6,
        None => total.strip_suffix('s').unwrap().parse::<f64>().unwrap() * 1e9,
    };
    assert!(
        (got_ns - want_ns).abs() < 0.01 * 1e6,
        "{want_ns} ns expected, pprof says {total}:\n{text}"
    );
    let hottest = want
        .iter()
        .max_by_key(|(name, n)| (**n, std::cmp::Reverse(*name)))
        .unwrap()
        .0;
    let first_row = text
        .lines()
        .skip_while(|l| !l.contains("flat%"))
        .nth(1)
        .unwrap();
    assert!(
        first_row.ends_with(hottest.as_str()),
        "{hottest} first:\n{text}"
    );

    // JS frames carry their file and line.
    let text = go_pprof(&["-top", "-lines", "-nodecount=100000"], &profile);
    assert!(
        text.contains("tokenizeHtml /work/main/demo/cluster.js:100"),
        "{text}"
    );
}

#[test]
fn go_tool_pprof_traces_carry_each_inputs_labels_and_samples() {
    let (_guard, out) = render(&["sick.perf.gz", "healthy.perf.gz"]);
    let merged = out.join("merged.pb.gz");
    assert!(merged.is_file(), "render of two inputs writes merged.pb.gz");
    let text = go_pprof(&["-traces", "-sample_index=samples"], &merged);
    let samples = traces(&text);
    for input in ["sick", "healthy"] {
        let (_, want_total) = expected(&out.join(format!("{input}.folded")));
        let got: i64 = samples
            .iter()
            .filter(|(labels, _)| labels.get("input").map(String::as_str) == Some(input))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(got, want_total, "{input}: samples in -traces vs .folded");
    }
    let (labels, _) = &samples[0];
    for key in ["input", "host", "run_id"] {
        assert!(labels.contains_key(key), "label {key} missing: {labels:?}");
    }

    // Slicing by label works as teams would use it.
    let (_, sick_total) = expected(&out.join("sick.folded"));
    let text = go_pprof(
        &["-top", "-sample_index=samples", "-tagfocus=input=sick"],
        &merged,
    );
    let focused: i64 = text
        .lines()
        .find_map(|l| {
            l.split_once("accounting for ")?
                .1
                .split(',')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no focused total in:\n{text}"));
    assert_eq!(focused, sick_total, "{text}");
}

#[test]
fn ssm_writes_a_profile_per_host_and_a_fleet_profile_labelled_by_host() {
    crate::support::require("perf");
    let emu = crate::support::Emulator::new();
    let app = crate::support::NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let ids = emu.seed(2, &[("flamefire-test:ssm", "online"), ("Name", "api")]);
    let out = tempfile::tempdir().unwrap();
    emu.ssm()
        .args(&ids)
        .args(["--duration", "2", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .success();
    let fleet = out.path().join("fleet.pb.gz");
    let samples = traces(&go_pprof(&["-traces", "-sample_index=samples"], &fleet));
    let run_id = samples[0].0.get("run_id").cloned().expect("run_id label");
    for id in &ids {
        let host_profile = out.path().join(format!("{id}.pb.gz"));
        assert!(host_profile.is_file(), "{} missing", host_profile.display());
        let (_, want) = expected(&out.path().join(format!("{id}.folded")));
        let got: i64 = samples
            .iter()
            .filter(|(labels, _)| labels.get("instance_id") == Some(id))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(got, want, "{id}: fleet.pb.gz samples vs {id}.folded");
        let (_, total) = top(&go_pprof(&["-top", "-sample_index=samples"], &host_profile));
        assert_eq!(total, want, "{id}.pb.gz total vs {id}.folded");
    }
    for (labels, _) in &samples {
        assert_eq!(
            labels.get("name").map(String::as_str),
            Some("api"),
            "{labels:?}"
        );
        assert_eq!(labels.get("run_id"), Some(&run_id));
        assert!(labels.contains_key("host"), "{labels:?}");
    }
    let text = go_pprof(&["-top", "-nodecount=3"], &fleet);
    assert!(text.contains("Type: cpu"), "{text}");
}
