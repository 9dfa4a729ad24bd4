//! Targets are not trusted: a perf map swapped for a FIFO or a symlink to
//! /dev/zero must not hang the script or fill the disk, and two runs on one
//! host at once must not corrupt each other (issue 8 §6, §7).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{AgentRun, Shells, describe};
use crate::support::{NodeApp, mkfifo, require};

/// An idle Node process (no perf map of its own), killed on drop, with
/// whatever we plant at its map path removed too.
struct Planted {
    child: Child,
}

impl Planted {
    fn start() -> Planted {
        require("node");
        let child = Command::new("node")
            .args(["-e", "setInterval(() => {}, 1000)"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("node starts");
        std::thread::sleep(Duration::from_millis(300));
        Planted { child }
    }

    fn map(&self) -> String {
        format!("/tmp/perf-{}.map", self.child.id())
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.map());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_with_planted(plant: impl Fn(&str)) -> (AgentRun, std::process::Output, Duration) {
    require("perf");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let planted = Planted::start();
    plant(&planted.map());
    let mut pids = app.pids.clone();
    pids.push(planted.child.id());
    let run = AgentRun::local(Shells::debian(), &pids, 2);
    let started = Instant::now();
    let out = run.run();
    (run, out, started.elapsed())
}

fn assert_planted_target_left_out(run: &AgentRun, out: &std::process::Output, took: Duration) {
    assert!(out.status.success(), "{}", describe(out));
    assert!(took < Duration::from_secs(120), "took {took:?}");
    let meta = run.meta();
    let warnings = meta["warnings"].to_string();
    assert!(
        warnings.contains("symlink or not a regular file"),
        "the planted map is named in a warning: {warnings}"
    );
    assert_eq!(
        meta["targets"].as_array().unwrap().len(),
        2,
        "the planted process is not recorded: {meta}"
    );
}

#[test]
fn a_fifo_as_perf_map_neither_hangs_nor_is_read() {
    let (run, out, took) = run_with_planted(|map| {
        mkfifo(map);
    });
    assert_planted_target_left_out(&run, &out, took);
}

#[test]
fn a_symlink_to_dev_zero_as_perf_map_is_not_read() {
    let (run, out, took) = run_with_planted(|map| {
        std::os::unix::fs::symlink("/dev/zero", map).unwrap();
    });
    assert_planted_target_left_out(&run, &out, took);
}

/// Two on-call engineers at once: the second run waits for the first, says
/// so, and both deliver intact files.
#[test]
fn a_second_concurrent_run_waits_and_both_deliver() {
    require("perf");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let first = AgentRun::local(Shells::same(PathBuf::from("/bin/bash")), &app.pids, 4);
    let mut second = AgentRun::local(Shells::debian(), &app.pids, 1);
    // The same host: the same instance id.
    second.env.insert(
        "AWS_SSM_INSTANCE_ID".into(),
        first.env["AWS_SSM_INSTANCE_ID"].clone(),
    );
    let a = first.spawn();
    // Let the first take the lock.
    let started = Instant::now();
    while !crate::agent::descendants(a.id()).iter().any(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "perf")
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run never started perf"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = second.run();
    let a = a.wait_with_output().unwrap();
    assert!(a.status.success(), "first: {}", describe(&a));
    assert!(b.status.success(), "second: {}", describe(&b));
    let said = String::from_utf8_lossy(&b.stderr);
    assert!(
        said.contains("another flamefire run is recording on this host; waiting"),
        "the second run says why it waits: {said}"
    );
    for run in [&first, &second] {
        assert!(run.meta()["samples"].as_u64().unwrap_or(0) > 0);
        assert!(run.stacks().contains("tokenizeHtml"));
    }
}

/// Credentials on a target's command line are masked in meta.json and in
/// the summary (both are read by more people than the host's ps).
#[test]
fn credentials_in_command_lines_are_masked() {
    require("perf");
    require("node");
    let mut child = Command::new("node")
        .args([
            "-e",
            "setInterval(() => {}, 1000)",
            "serve",
            "--password=hunter2",
            "postgres://app:s3cr3t@db.internal/app",
            "token=abc123xyz",
            "--api-key",
            "k3yk3y",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("node starts");
    std::thread::sleep(Duration::from_millis(300));
    let run = AgentRun::local(Shells::debian(), &[child.id()], 1);
    let out = run.run();
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", describe(&out));
    let meta = std::fs::read_to_string(run.out().join("meta.json")).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for secret in ["hunter2", "s3cr3t", "abc123xyz", "k3yk3y"] {
        assert!(!meta.contains(secret), "{secret} in meta.json: {meta}");
        assert!(
            !stdout.contains(secret),
            "{secret} in the summary: {stdout}"
        );
    }
    assert!(
        meta.contains("--password=***") && meta.contains("app:***@db.internal"),
        "{meta}"
    );
}

/// The presigned POST's policy, signature and token reach curl on stdin
/// (`-K -`), never as arguments that /proc/PID/cmdline shows to every user.
#[test]
fn presigned_post_fields_are_not_curl_arguments() {
    let script =
        std::fs::read_to_string(crate::support::repo().join("ssm-documents/flamefire-record.sh"))
            .unwrap();
    let code: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !code.contains("--form-string"),
        "no --form-string arguments"
    );
    let curl_lines: Vec<&str> = code
        .lines()
        .filter(|l| l.trim_start().starts_with("curl ") || l.contains("args=(--silent"))
        .collect();
    assert!(!curl_lines.is_empty());
    for line in curl_lines {
        for secret in [
            "P_UploadPolicy",
            "P_UploadSignature",
            "P_UploadSecurityToken",
            "P_UploadCredential",
        ] {
            assert!(
                !line.contains(secret),
                "{secret} on curl's command line: {line}"
            );
        }
    }
    assert!(code.contains("-K -"), "curl reads its config from stdin");
}

/// A bind mount over a file, undone on drop.
struct BindMount(std::path::PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The Node version is read from the target's own files: its binary, or
/// the `libnode.so` it mapped (distro builds). A target can swap that file
/// for a FIFO or /dev/zero after it started (here: a bind mount over the
/// path its maps name). The read neither blocks on the FIFO nor reads
/// /dev/zero for ever: the host delivers in time, and that target's
/// version is `unknown`. The "node" is /bin/sleep under that name (so its
/// binary holds no Node version and the libnode path is read), with a copy
/// of libz preloaded as its libnode.so.1.
#[test]
fn a_libnode_swapped_for_a_fifo_or_dev_zero_does_not_hang_the_version_read() {
    require("perf");
    require("mount");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    for swap in ["fifo", "/dev/zero"] {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        std::fs::copy("/bin/sleep", &node).unwrap();
        let libnode = dir.path().join("libnode.so.1");
        std::fs::copy("/lib/x86_64-linux-gnu/libz.so.1", &libnode)
            .expect("zlib (Debian's zlib1g) is installed");
        let mut fake = Command::new(&node)
            .arg("120")
            .env("LD_PRELOAD", &libnode)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let source = if swap == "fifo" {
            let fifo = dir.path().join("fifo");
            mkfifo(&fifo);
            fifo
        } else {
            std::path::PathBuf::from(swap)
        };
        assert!(
            Command::new("mount")
                .arg("--bind")
                .arg(&source)
                .arg(&libnode)
                .status()
                .unwrap()
                .success(),
            "bind-mount {swap} over {}",
            libnode.display()
        );
        let _mounted = BindMount(libnode.clone());
        let mut pids = app.pids.clone();
        pids.push(fake.id());
        let run = AgentRun::local(Shells::debian(), &pids, 2);
        let mut child = run.spawn();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(90) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("with libnode swapped for {swap}, the script still ran after 90 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = child.wait_with_output().unwrap();
        let _ = fake.kill();
        let _ = fake.wait();
        assert!(out.status.success(), "{swap}: {}", describe(&out));
        let fake_target = run.target(fake.id());
        assert_eq!(
            fake_target["node_version"], "unknown",
            "{swap}: {fake_target}"
        );
    }
}
