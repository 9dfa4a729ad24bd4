//! Ubuntu's /usr/bin/perf is a wrapper that exits 2 unless
//! linux-tools-$(uname -r) is installed; a perf for another kernel version
//! under /usr/lib/linux-tools-*/ works, and must be found (issue 8 §5).
//! The stand-in wrapper goes first in PATH, as the install tests do.

use std::path::PathBuf;

use crate::agent::{AgentRun, Shells, describe};
use crate::support::{NodeApp, require};

/// A `perf` that fails as Ubuntu's wrapper does without its package.
fn failing_wrapper(run: &AgentRun) {
    let wrapper = run.bin().join("perf");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\necho \"WARNING: perf not found for kernel $(uname -r)\" >&2\nexit 2\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
}

/// /usr/lib/linux-tools-<version>/perf, removed on drop.
struct OtherKernelPerf(PathBuf);

impl OtherKernelPerf {
    fn install() -> OtherKernelPerf {
        let dir = PathBuf::from(format!(
            "/usr/lib/linux-tools-0.0.0-flamefire-test-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let real = which("perf");
        std::os::unix::fs::symlink(real, dir.join("perf")).unwrap();
        OtherKernelPerf(dir)
    }
}

impl Drop for OtherKernelPerf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn which(tool: &str) -> PathBuf {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn a_perf_for_another_kernel_is_found_when_the_wrapper_fails() {
    require("perf");
    let _only = crate::support::perf_stand_ins();
    let other = OtherKernelPerf::install();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let mut run = AgentRun::local(Shells::debian(), &app.pids, 1);
    failing_wrapper(&run);
    run.env.insert("SSM_NoInstall".into(), "true".into());
    let out = run.run();
    assert!(out.status.success(), "{}", describe(&out));
    let meta = run.meta();
    assert_eq!(
        meta["perf_path"].as_str(),
        Some(other.0.join("perf").to_str().unwrap()),
        "{meta}"
    );
    assert!(meta["samples"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn no_install_with_no_working_perf_fails_with_exit_4_and_says_why() {
    let _only = crate::support::perf_stand_ins();
    let app = NodeApp::start("healthy", 1, &[]);
    let mut run = AgentRun::local(Shells::debian(), &app.pids, 1);
    failing_wrapper(&run);
    run.env.insert("SSM_NoInstall".into(), "true".into());
    let out = run.run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(4) {
        assert!(
            stderr.contains("flamefire: error: perf is") && stderr.contains("NoInstall=true"),
            "{stderr}"
        );
    } else {
        // /usr/lib/linux-tools*/perf exists on this machine (another test's
        // stand-in, or a real Ubuntu): then it must have been used.
        assert!(out.status.success(), "{}", describe(&out));
        assert!(
            run.meta()["perf_path"]
                .as_str()
                .unwrap()
                .starts_with("/usr/lib/linux-tools")
        );
    }
}

/// A service with `PrivateTmp=yes` (issue 8 §7): its /tmp is a mount of its
/// own, so its perf map is visible only through /proc/PID/root/tmp. The
/// map is found there, its JIT frames are named, and no "lack a perf map"
/// warning is given. Node runs in a private mount namespace with a tmpfs
/// on /tmp, as systemd sets one up.
#[test]
fn a_private_tmp_map_is_found_through_proc_root() {
    require("perf");
    require("unshare");
    let script = "function privateTmpSpin(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i); return s; }\
                  setInterval(() => privateTmpSpin(2e6), 1);";
    let mut node = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs flamefire-private-tmp /tmp && exec node --perf-basic-prof -e '{script}'"
        ))
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("unshare starts");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = node.id();
    let private = PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{pid}.map"));
    let started = std::time::Instant::now();
    while !private.is_file() {
        assert!(
            node.try_wait().unwrap().is_none(),
            "node in a private /tmp exited"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no map at {}",
            private.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _guard = Kill(node);
    assert!(
        !PathBuf::from(format!("/tmp/perf-{pid}.map")).exists(),
        "the map must not be in this /tmp, or the test proves nothing"
    );
    let run = AgentRun::local(Shells::debian(), &[pid], 3);
    let out = run.run();
    assert!(out.status.success(), "{}", describe(&out));
    let meta = run.meta();
    assert_eq!(meta["targets"][0]["map"], "ok", "{meta}");
    // The version is read from the binary (bounded, non-blocking read).
    let version = meta["targets"][0]["node_version"]
        .as_str()
        .unwrap_or_default();
    assert!(version.starts_with('v') && version.contains('.'), "{meta}");
    let warnings = meta["warnings"].to_string();
    assert!(!warnings.contains("lack a perf map"), "{warnings}");
    assert!(run.stacks().contains("privateTmpSpin"), "JIT frames named");
}
