//! Targets come and go during the window (issue 8 §3): a target that exits
//! mid-recording must not fail the host.
//!
//! Not covered yet: a worker that restarts mid-window is not recorded (the
//! recording follows the PIDs found at its start, `perf record -p`).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agent::{AgentRun, Shells, describe};
use crate::support::{NodeApp, require};

#[test]
fn a_target_that_exits_mid_recording_does_not_fail_the_host() {
    require("perf");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let mut short = Command::new("node")
        .args(["-e", "setTimeout(() => {}, 2500)"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("node starts");
    std::thread::sleep(Duration::from_millis(200));
    let mut pids = app.pids.clone();
    pids.push(short.id());
    let run = AgentRun::local(Shells::debian(), &pids, 5);
    let out = run.run();
    let _ = short.wait();
    assert!(out.status.success(), "{}", describe(&out));
    let meta = run.meta();
    assert!(meta["samples"].as_u64().unwrap_or(0) > 0, "{meta}");
    assert!(run.stacks().contains("tokenizeHtml"));
}
