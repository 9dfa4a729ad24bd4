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
