//! Cancel and timeout as the SSM agent does them: SIGKILL to the script's
//! process group, nothing else (amazon-ssm-agent
//! agent/executers/executers_unix.go, killProcess). The script's traps never
//! run, so it must be safe without them.
//!
//! Regression (issue 8 §2): `timeout … perf record` and `timeout … perf
//! script` put perf in timeout(1)'s own process group, so both survived the
//! agent's kill and perf kept recording on a host the operator wanted left
//! alone.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{AgentRun, Shells, descendants, group_members, owner};
use crate::support::{children, repo, require};

/// The demo cluster run as `nobody`, so that its perf maps are not root's:
/// a chown by the script would show.
struct NobodyApp {
    child: Child,
    pids: Vec<u32>,
    _cwd: tempfile::TempDir,
}

impl NobodyApp {
    fn start(workers: usize) -> NobodyApp {
        require("node");
        let cwd = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            cwd.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let child = Command::new("node")
            .arg("--perf-basic-prof")
            .arg(repo().join("demo/cluster.js"))
            .current_dir(cwd.path())
            .env("FLAMEFIRE_DEMO_WORKERS", workers.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .uid(65534)
            .gid(65534)
            .process_group(0)
            .spawn()
            .expect("node starts as nobody");
        let primary = child.id();
        let mut app = NobodyApp {
            child,
            pids: vec![primary],
            _cwd: cwd,
        };
        let started = Instant::now();
        while children(primary).len() < workers {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the demo workers did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(800));
        app.pids.extend(children(primary));
        app
    }

    fn maps(&self) -> Vec<PathBuf> {
        self.pids
            .iter()
            .map(|p| PathBuf::from(format!("/tmp/perf-{p}.map")))
            .collect()
    }
}

impl Drop for NobodyApp {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Waits until a descendant of `root` runs `perf <sub>`; returns its pid.
fn wait_for_perf(root: u32, sub: &str, limit: Duration) -> Option<u32> {
    let started = Instant::now();
    while started.elapsed() < limit {
        for pid in descendants(root) {
            let line = cmdline(pid);
            if line.contains("perf ") && line.split(' ').any(|w| w == sub) {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// SIGKILLs the group as the agent does, then checks that within 2 s nothing
/// the script started is left and no map changed owner.
fn kill_like_the_agent(child: &mut Child, started: &[u32], maps: &[(PathBuf, Option<u32>)]) {
    let pgid = child.id();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let group = group_members(pgid);
        let alive: Vec<u32> = started
            .iter()
            .copied()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists() && !cmdline(*p).is_empty())
            .collect();
        if group.is_empty() && alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "2 s after SIGKILL of group {pgid}, still alive: group {group:?}, started {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (map, before) in maps {
        assert_eq!(
            owner(map),
            *before,
            "{} changed owner after the kill",
            map.display()
        );
    }
}

/// The maps that exist (the idle primary may not have written one yet),
/// with their owner: nobody.
fn owners(app: &NobodyApp) -> Vec<(PathBuf, Option<u32>)> {
    let maps: Vec<_> = app
        .maps()
        .into_iter()
        .map(|m| (owner(&m), m))
        .filter(|(o, _)| o.is_some())
        .collect();
    assert!(!maps.is_empty(), "no perf map was written by the demo");
    for (o, m) in &maps {
        assert_eq!(*o, Some(65534), "{} is nobody's", m.display());
    }
    maps.into_iter().map(|(o, m)| (m, o)).collect()
}

#[test]
fn cancel_while_perf_records_leaves_nothing_running() {
    require("perf");
    let app = NobodyApp::start(2);
    let maps = owners(&app);
    let run = AgentRun::local(Shells::same(PathBuf::from("/bin/bash")), &app.pids, 60);
    let mut child = run.spawn();
    let perf = wait_for_perf(child.id(), "record", Duration::from_secs(60))
        .expect("perf record never started");
    std::thread::sleep(Duration::from_millis(300));
    let started = descendants(child.id());
    assert!(started.contains(&perf));
    kill_like_the_agent(&mut child, &started, &maps);
}

#[test]
fn cancel_while_perf_script_runs_leaves_nothing_running() {
    require("perf");
    let app = NobodyApp::start(2);
    let maps = owners(&app);
    let mut run = AgentRun::local(Shells::debian(), &app.pids, 6);
    // Many samples, so that perf script takes long enough to be caught.
    run.env.insert("SSM_Frequency".into(), "999".into());
    let mut child = run.spawn();
    let perf = wait_for_perf(child.id(), "script", Duration::from_secs(90))
        .expect("perf script was never seen running (it finished too fast?)");
    let started = descendants(child.id());
    assert!(started.contains(&perf));
    kill_like_the_agent(&mut child, &started, &maps);
}
