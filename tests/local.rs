//! `flamefire local` end to end: the embedded script, real perf, real Node.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::{NodeApp, flamefire, perf_processes, require, share_of, svg_titles};

#[test]
fn records_a_real_node_cluster_and_the_hot_function_dominates() {
    require("perf");
    let app = NodeApp::start("sick", 2, &["--perf-basic-prof"]);
    let out = tempfile::tempdir().unwrap();
    let assert = flamefire()
        .args(["local", "--duration", "3", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let svg = out.path().join("flamegraph.svg");
    assert_eq!(
        stdout.trim(),
        svg.display().to_string(),
        "stdout carries only the result"
    );

    let titles = svg_titles(&svg);
    assert!(
        titles.iter().any(|t| t.contains("tokenizeHtml")),
        "the hot JS function is named in the SVG"
    );
    let (hot, all) = share_of(&out.path().join("flamegraph.folded"), "tokenizeHtml");
    assert!(all > 100, "enough samples: {all}");
    // Two of three processes spin in tokenizeHtml; the primary idles.
    assert!(
        hot * 100 / all >= 40,
        "tokenizeHtml has {hot} of {all} samples"
    );
    assert!(out.path().join("meta.json").is_file());
    assert!(out.path().join("stacks.gz").is_file());
}

#[test]
fn demo_flag_profiles_the_bundled_cluster() {
    require("perf");
    require("node");
    // As the README's first command runs it: no --out, so the output goes
    // to a directory relative to where flamefire runs.
    let cwd = tempfile::tempdir().unwrap();
    flamefire()
        .current_dir(cwd.path())
        .args(["local", "--demo", "--duration", "2", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"status\": \"rendered\""));
    let out = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("flamefire-")
        })
        .expect("the default output directory flamefire-<run>/");
    let titles = svg_titles(&out.join("flamegraph.svg"));
    assert!(titles.iter().any(|t| t.contains("parseHtmlDocument")));
}

#[test]
fn no_matching_process_is_a_clear_error() {
    require("perf");
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args([
            "local",
            "--duration",
            "1",
            "--process",
            "flamefire-nothing",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("no running process"))
        .stderr(predicate::str::contains("flamefire-nothing"))
        .stderr(predicate::str::contains("next step"));
}

#[test]
fn a_dead_pid_is_named() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args([
            "local",
            "--duration",
            "1",
            "--pid",
            &pid.to_string(),
            "--out",
        ])
        .arg(out.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "process {pid} is not running"
        )));
}

#[test]
fn perf_missing_and_not_installable_fails_with_the_package_to_install() {
    // A PATH with the usual tools but no perf and no package manager.
    let bin = tempfile::tempdir().unwrap();
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let n = name.to_string_lossy();
            if n.starts_with("perf") || ["apt-get", "apt", "dnf", "yum", "zypper"].contains(&&*n) {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), bin.path().join(&name));
        }
    }
    let app = NodeApp::start("healthy", 1, &[]);
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .env("PATH", bin.path())
        .args(["local", "--duration", "1", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("perf"))
        .stderr(predicate::str::contains("linux-perf").or(predicate::str::contains("install")));
}

/// Regression guard: Ctrl-C mid-recording must leave no perf process and no temp files.
#[test]
fn ctrl_c_stops_perf_and_removes_temporary_files() {
    require("perf");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let out = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("flamefire");
    let mut child = Command::new(bin)
        .args(["local", "--duration", "60", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for *our* perf: the `perf record` that this flamefire started
    // (it records the whole machine, so its arguments name no pid).
    let started = Instant::now();
    let (perf_pid, work_dir) = loop {
        let ours = crate::agent::descendants(child.id());
        let found = perf_processes().into_iter().find_map(|p| {
            if !ours.contains(&p) {
                return None;
            }
            let cmdline = std::fs::read_to_string(format!("/proc/{p}/cmdline")).ok()?;
            let args: Vec<&str> = cmdline.split('\0').collect();
            if !args.contains(&"record") {
                return None;
            }
            let data = args.iter().position(|a| *a == "-o").map(|i| args[i + 1])?;
            Some((p, std::path::Path::new(data).parent()?.to_path_buf()))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "perf never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(work_dir.is_dir());
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code after Ctrl-C");
    assert!(
        !std::path::Path::new(&format!("/proc/{perf_pid}")).exists(),
        "perf {perf_pid} is still running"
    );
    assert!(!work_dir.exists(), "{} was not removed", work_dir.display());
    assert!(!out.path().join("stacks.gz").exists());
}

/// Every process under `pid` (its children, theirs, …), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() {
            if let Some(parent) = crate::support::parent_of(p) {
                parents.push((p, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let at = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == at).map(|(p, _)| *p));
        i += 1;
    }
    tree.remove(0);
    tree
}

/// Whether `pid` still runs (a zombie that nobody reaps does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

fn exe(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A flamefire killed outright (SIGKILL: no destructor runs) leaves neither
/// the demo cluster nor the recorder and its perf behind: both get a
/// parent-death signal (PR_SET_PDEATHSIG).
#[test]
fn a_killed_flamefire_leaves_no_demo_cluster_and_no_recorder_behind() {
    require("perf");
    require("node");
    let cwd = tempfile::tempdir().unwrap();
    let mut child = crate::support::flamefire_process()
        .current_dir(cwd.path())
        .args(["local", "--demo", "--duration", "300"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Until perf records under flamefire: an event, with a generous net.
    let started = Instant::now();
    let tree = loop {
        let tree = descendants(pid);
        if tree
            .iter()
            .any(|p| exe(*p).ends_with("/perf") || exe(*p).contains("/perf_"))
        {
            break tree;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "flamefire ended before recording"
        );
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "perf never started under flamefire: {tree:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let node = tree.iter().filter(|p| exe(**p).contains("node")).count();
    assert!(node >= 3, "the demo's primary and two workers: {tree:?}");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let left: Vec<_> = tree.iter().filter(|p| running(**p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "still running after flamefire was killed: {:?}",
            left.iter().map(|p| (p, exe(**p))).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Node killed with SIGKILL leaves its perf map: remove the demo's, so
    // that a later process with the same pid does not find a stale one.
    for pid in tree {
        let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    }
}
