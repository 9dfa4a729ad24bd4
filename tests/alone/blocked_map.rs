//! A perf map the script's screening cannot see, found blocking `perf
//! script` (issue 18 §5). Alone in its binary: see `alone.rs`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{AgentRun, Shells, describe};
use crate::support::{Guard, NodeApp, require, stderr, wait_or_kill};

/// A map the screening cannot see: the process is chrooted inside its mount
/// namespace, so `/proc/PID/root/tmp/perf-1.map` (its chroot's, a regular
/// file) is not the `/tmp/perf-1.map` perf opens after entering the
/// namespace (setns puts perf at the namespace's root), a FIFO. `perf
/// script` blocks in its open. Regression (issue 18 §5): it sat there until
/// its time limit and the host said "time limit"; it is stopped at once and
/// the warning says it was blocked on that map.
#[test]
fn a_perf_script_blocked_on_a_fifo_map_is_stopped_and_says_so() {
    require("perf");
    require("unshare");
    require("chroot");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let jail = "mount -t tmpfs flamefire /tmp && mkfifo /tmp/perf-1.map && mkdir /tmp/jail \
                && mount --rbind / /tmp/jail && mount -t tmpfs flamefire /tmp/jail/tmp \
                && exec chroot /tmp/jail node --perf-basic-prof -e \"$0\"";
    let container = Guard::spawn(
        Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--propagation", "private"])
            .args(["sh", "-c", jail])
            .arg(
                "function inTheJail(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i); return s; }\
                 setInterval(() => inTheJail(3e6), 1);",
            )
            .stdout(Stdio::null()),
    );
    let started = Instant::now();
    while !crate::support::children(container.pid())
        .into_iter()
        .any(|pid| {
            std::fs::metadata(format!("/proc/{pid}/root/tmp/perf-1.map")).is_ok_and(|m| m.len() > 0)
        })
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the jailed node wrote no /tmp/perf-1.map"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = AgentRun::local(Shells::debian(), &app.pids, 2);
    // Safety net only: past perf script's own time limit.
    let out = wait_or_kill(run.spawn(), Duration::from_secs(480), "blocked perf script");
    let blocked = "blocked on FIFO perf map /tmp/perf-1.map in mnt:[";
    // perf's output is block-buffered: whether any sample got out before
    // the block depends on the order of the samples. With some, they are
    // delivered as partial stacks; with none, the host fails and says why
    // (not an empty flamegraph whose advice is "record for longer").
    if out.status.success() {
        let meta = run.meta();
        assert_eq!(meta["partial"], true, "{meta}");
        assert!(
            meta["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains(blocked)),
            "no warning says perf script was blocked on the map: {meta}"
        );
    } else {
        assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
        let said = stderr(&out);
        assert!(
            said.contains(blocked) && said.contains("before its first sample: remove that FIFO"),
            "{said}"
        );
    }
}
