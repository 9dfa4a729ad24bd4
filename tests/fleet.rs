//! A fleet under SSM's rate limits (issue 11): every host of a throttled
//! 200-host run is drawn, and a host is drawn while others still record.
//! The hosts are the emulator's `replay` instances (a recorded capture
//! uploaded through the run's presigned POST); the CLI runs as the on-call
//! role, whose requests the emulator throttles.

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Emulator, emulator_admin, emulator_http, require};

/// Requests the emulator refused with a throttling error, by operation.
fn throttled(key: &str) -> serde_json::Map<String, serde_json::Value> {
    let counts: serde_json::Value = serde_json::from_str(&emulator_http(
        "GET",
        &format!("/_flamefire/throttle?access_key_id={key}"),
        None,
    ))
    .unwrap();
    counts["throttled"].as_object().cloned().unwrap_or_default()
}

/// 200 hosts, and 30 % of the role's SSM, EC2, STS and S3 API requests
/// answered with the service's throttling error (not the hosts' POST
/// uploads: S3 takes thousands a second per prefix). Every host is
/// rendered, each got exactly one command, and none is failed for
/// throttling: the run exits 0.
#[test]
fn two_hundred_hosts_with_30_percent_of_requests_throttled_all_render() {
    require("curl");
    let emu = Emulator::new();
    let session = emu.oncall().clone();
    let ids = emu.seed_replaying(200, &[]);
    let limits =
        "ssm:*=30%,ec2:*=30%,sts:*=30%,s3:GetObject=30%,s3:ListObjectsV2=30%,s3:PutObject=30%";
    emulator_admin(
        "POST",
        "throttle",
        &serde_json::json!({"limits": limits, "access_key_id": session.access_key_id}),
    );
    let out = tempfile::tempdir().unwrap();
    let run = emu
        .ssm()
        .args(&ids)
        .args(["--duration", "1", "--timeout", "300", "--out"])
        .arg(out.path())
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let refused = throttled(&session.access_key_id);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let invocations = emu.invocations();
    for id in &ids {
        assert!(out.path().join(format!("{id}.svg")).is_file(), "{id}");
        assert_eq!(
            invocations.get(id).map(Vec::len),
            Some(1),
            "one command for {id}"
        );
    }
    assert!(out.path().join("fleet.svg").is_file());
    // The throttling really happened, on the polls and the downloads alike.
    for op in [
        "ssm:ListCommands",
        "s3:ListObjectsV2",
        "s3:GetObject",
        "ssm:SendCommand",
    ] {
        assert!(
            refused.get(op).and_then(|n| n.as_u64()).unwrap_or(0) > 0,
            "{op} was never throttled: {refused:?}"
        );
    }
}

/// Hosts end at staggered times (the emulator's `replay-delay`): the fast
/// hosts' flamegraphs and a report.html naming them are on disk while the
/// slow host is still `InProgress`, and the run still draws the slow one.
#[test]
fn the_first_flamegraph_is_drawn_while_the_last_host_still_records() {
    require("curl");
    let emu = Emulator::new();
    let fast = emu.seed_replaying(2, &[]);
    let slow = emu.seed_replaying(1, &[("flamefire-test:replay-delay", "25")]);
    let out = tempfile::tempdir().unwrap();
    let mut child = emu
        .ssm_process()
        .args(fast.iter().chain(&slow))
        .args(["--duration", "1", "--out"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = out.path().join(format!("{}.svg", fast[0]));
    let started = Instant::now();
    while !first.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no {} within 90 s",
            first.display()
        );
        assert!(child.try_wait().unwrap().is_none(), "flamefire ended first");
        std::thread::sleep(Duration::from_millis(100));
    }
    // report.html names the fast host once it is rewritten (at most every
    // 2 s, and after each drawn host).
    let page = out.path().join("report.html");
    while !std::fs::read_to_string(&page)
        .unwrap_or_default()
        .contains(&format!("{}.svg", fast[0]))
    {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "report.html never named {} while the run went on",
            fast[0]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = std::fs::read_to_string(&page).unwrap();
    let slow_status = emu.invocations_of(&slow[0]);
    assert_eq!(
        slow_status.first().map(|(s, _)| s.as_str()),
        Some("InProgress"),
        "the slow host had ended before the first flamegraph and its report: {slow_status:?}"
    );
    assert!(
        !report.contains(&format!("{}.svg", slow[0])),
        "report.html shows the slow host before it ended"
    );
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    assert!(status.success(), "{stderr}");
    for id in fast.iter().chain(&slow) {
        assert!(out.path().join(format!("{id}.svg")).is_file(), "{id}");
    }
}
