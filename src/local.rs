//! Stages 2–4 on this machine: the embedded document's script, run locally.
//!
//! Input: validated `RecordParams`. Output: `stacks.gz` and `meta.json` in the
//! output directory, exactly as a host would upload them. The script gets the
//! same `SSM_*` variables the SSM agent would export, so `flamefire local`
//! exercises the very text that runs on instances. This module never
//! collapses or renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::document::{self, RecordParams};
use crate::error::{Error, Result};
use crate::model::RecorderExit;
use crate::progress::Progress;

/// The demo app, embedded so `--demo` works from an installed binary.
pub const DEMO_APP: &str = include_str!("../demo/cluster.js");

/// How long the script gets to clean up (kill perf, remove temp files) after SIGTERM.
const GRACE: Duration = Duration::from_secs(15);

/// The `SSM_<Name>` environment the SSM agent exports for ENV_VAR parameters.
pub fn ssm_env(params: &RecordParams) -> BTreeMap<String, String> {
    params
        .to_parameters()
        .into_iter()
        .map(|(k, v)| (format!("SSM_{k}"), v))
        .collect()
}

/// Runs the recorder script with `--out OUT` (and `out` as its working
/// directory), so that it leaves `stacks.gz` and `meta.json` there. Ctrl-C
/// stops it cleanly.
pub async fn record(params: &RecordParams, out: &Path, progress: &Progress) -> Result<()> {
    let doc = document::embedded()?;
    let scratch = tempfile::Builder::new()
        .prefix("flamefire-")
        .tempdir()
        .map_err(|e| Error::io("create a temporary directory in", std::env::temp_dir(), e))?;
    let script = scratch.path().join("_script.sh");
    std::fs::write(&script, &doc.script).map_err(|e| Error::io("write", &script, e))?;

    // Absolute: `out` may be relative to flamefire's own directory (the
    // default flamefire-<run>/), and the script runs inside it.
    let out_abs = std::path::absolute(out).map_err(|e| Error::io("resolve", out, e))?;
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--out")
        .arg(&out_abs)
        .current_dir(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: Ctrl-C reaches flamefire, which then asks
        // the script to stop, so the script's trap always runs to completion.
        .process_group(0)
        .kill_on_drop(true);
    // A flamefire killed outright runs no Drop: the script gets SIGTERM
    // then, and its trap stops perf and removes its files.
    die_with_parent(cmd.as_std_mut(), Signal::SIGTERM);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SSM_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(ssm_env(params));
    let mut child = cmd.spawn().map_err(|e| Error::Spawn {
        program: "bash".into(),
        next: "install bash".into(),
        source: e,
    })?;

    let stderr_tail = forward_output(&mut child, progress);
    let bar = progress.recording(
        &format!("recording at {} Hz", params.frequency_hz),
        Duration::from_secs(params.duration_s as u64),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let status = loop {
        tokio::select! {
            s = child.wait() => break s,
            _ = tick.tick() => bar.tick(),
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                progress.note("interrupted: stopping perf and removing temporary files…");
                stop(&mut child).await;
                return Err(Error::Interrupted);
            }
        }
    };
    bar.finish();
    let status = status.map_err(|e| Error::io("wait for the recorder in", out, e))?;
    let tail = stderr_tail.await.unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let cause = crate::model::recorder::error_line(&tail.join("\n"))
        .or_else(|| tail.last().cloned())
        .unwrap_or_else(|| format!("the script exited with {status}"));
    Err(Error::LocalRecord {
        cause,
        next: recorder_exit(status).local_next_step().into(),
    })
}

/// How the recorder exited, by its documented exit codes.
fn recorder_exit(status: std::process::ExitStatus) -> RecorderExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => RecorderExit::from_code(code),
        (None, Some(signal)) => RecorderExit::Signal(signal),
        (None, None) => RecorderExit::Unexpected,
    }
}

/// Copies the script's stdout and stderr to our stderr line by line (stdout
/// is reserved for results) and keeps stderr's last lines for the error.
fn forward_output(child: &mut Child, progress: &Progress) -> tokio::task::JoinHandle<Vec<String>> {
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let p = progress.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            p.info(&format!("  {line}"));
        }
    });
    let p = progress.clone();
    tokio::spawn(async move {
        let mut tail = Vec::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            p.note(&format!("  {line}"));
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        tail
    })
}

/// SIGTERM to the script's process group, then SIGKILL after the grace period.
pub async fn stop(child: &mut Child) {
    let Some(pid) = child.id() else { return };
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// The demo cluster, running until dropped.
pub struct Demo {
    child: Child,
    _dir: tempfile::TempDir,
    pub pids: Vec<u32>,
}

impl Demo {
    /// Starts `node --perf-basic-prof cluster.js` with two workers and waits
    /// until the workers exist and have had a moment to JIT their hot code.
    pub async fn start(progress: &Progress) -> Result<Demo> {
        let dir = tempfile::Builder::new()
            .prefix("flamefire-demo-")
            .tempdir()
            .map_err(|e| Error::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let app = dir.path().join("cluster.js");
        std::fs::write(&app, DEMO_APP).map_err(|e| Error::io("write", &app, e))?;
        let mut node = Command::new("node");
        // A flamefire killed outright runs no Drop: the primary is killed
        // with it, and Node's cluster workers exit when their primary's IPC
        // channel closes.
        die_with_parent(node.as_std_mut(), Signal::SIGKILL);
        let child = node
            .arg("--perf-basic-prof")
            .arg(&app)
            // Node 20's --perf-basic-prof also writes isolate-*-v8.log into
            // its working directory: keep that out of the user's.
            .current_dir(dir.path())
            .env("FLAMEFIRE_DEMO_WORKERS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Spawn {
                program: "node".into(),
                next: "install Node.js (Debian: apt-get install nodejs), or run the README's first command".into(),
                source: e,
            })?;
        let primary = child.id().unwrap_or_default();
        let mut demo = Demo {
            child,
            _dir: dir,
            pids: vec![primary],
        };
        progress.info("started the demo cluster (2 workers, perf maps on)");
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(Some(status)) = demo.child.try_wait() {
                return Err(Error::LocalRecord {
                    cause: format!("the demo app exited at once ({status})"),
                    next: "check that `node --version` works".into(),
                });
            }
            let workers = children_of(primary);
            if workers.len() >= 2 {
                demo.pids.extend(workers);
                // Let the workers' hot functions get compiled and mapped.
                tokio::time::sleep(Duration::from_millis(700)).await;
                return Ok(demo);
            }
        }
        Err(Error::LocalRecord {
            cause: "the demo cluster's workers did not start within 5 s".into(),
            next: "check that `node --version` works".into(),
        })
    }

    pub async fn stop(mut self) {
        stop(&mut self.child).await;
    }
}

/// The child gets `signal` when flamefire dies, however it dies
/// (PR_SET_PDEATHSIG, prctl(2)): SIGKILL (the OOM killer, `kill -9`) runs no
/// destructor, and `kill_on_drop` alone would leave the child running. The
/// kernel ties this to the thread that forked; Tokio's worker threads live
/// as long as the runtime, which is as long as flamefire.
fn die_with_parent(cmd: &mut std::process::Command, signal: Signal) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure makes one async-signal-safe
    // system call (prctl) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from));
    }
}

/// Child process ids of `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let path = PathBuf::from(format!("/proc/{pid}/task/{pid}/children"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Pids;

    #[test]
    fn env_is_ssm_prefixed_and_complete() {
        let params = RecordParams {
            duration_s: 3,
            frequency_hz: 99,
            pids: Pids::Listed(vec![1, 2]),
            process_name: "node".into(),
            start_at: 0,
            run_id: "r1".into(),
            upload: None,
            no_install: true,
            probe: false,
        };
        let env = ssm_env(&params);
        assert_eq!(env["SSM_Duration"], "3");
        assert_eq!(env["SSM_Pids"], "1,2");
        assert_eq!(env["SSM_UploadUrl"], "");
        assert_eq!(env["SSM_NoInstall"], "true");
        assert_eq!(env.len(), document::embedded().unwrap().parameters.len());
    }
}
