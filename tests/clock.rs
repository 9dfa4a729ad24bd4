//! A laptop whose clock is off (issue 17 §6): flamefire runs under
//! libfaketime 15 minutes fast, while the emulator, its agent stand-in and
//! the real host script keep this machine's true time, as AWS and the
//! hosts keep theirs. The SDK signs anyway (the emulator does not judge
//! signature age), so only the times flamefire itself puts in a run can
//! go wrong: StartAt, InvokedAfter and the upload policy.

use std::process::Command;

use crate::support::{Emulator, NodeApp, require, svg_titles};

const ONLINE: (&str, &str) = ("flamefire-test:ssm", "online");

/// `cmd` run under `faketime -f +SECONDS`: see [`on_a_clock_off_by`].
fn on_a_clock_fast_by(seconds: u64, cmd: &Command) -> assert_cmd::Command {
    assert_cmd::Command::from_std(on_a_clock_off_by(seconds as i64, cmd))
}

/// `cmd` run under `faketime -f ±SECONDS` (fast when positive, slow when
/// negative): the same program, arguments and environment, with this
/// process's clock moved. Monotonic time is left alone, so that timeouts
/// and progress keep their real length.
pub fn on_a_clock_off_by(seconds: i64, cmd: &Command) -> Command {
    require("faketime");
    let mut off = Command::new("faketime");
    off.args(["-f", &format!("{seconds:+}s")])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => off.env(k, v),
            None => off.env_remove(k),
        };
    }
    off
}

/// Regression (issue 17 §6): StartAt came from the laptop's clock, so a
/// laptop 15 minutes fast sent a StartAt 15 minutes away, which the host
/// refuses ("check this host's clock"), and waited on ListCommands with an
/// InvokedAfter later than the command itself. Now both come from AWS's
/// `Date`, and the run records and renders.
#[test]
fn a_laptop_fifteen_minutes_fast_starts_the_hosts_by_aws_time() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 2, &["--perf-basic-prof"]);
    let ids = emu.seed(1, &[ONLINE]);
    let out = tempfile::tempdir().unwrap();
    let mut ssm = emu.ssm_process();
    ssm.arg(&ids[0])
        .args(["--duration", "3", "--timeout", "120", "--out"])
        .arg(out.path())
        .args(app.pid_args());
    let assert = on_a_clock_fast_by(900, &ssm)
        .timeout(std::time::Duration::from_secs(300))
        .assert();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert_eq!(assert.get_output().status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("s ahead of AWS's"),
        "no word of the laptop's clock:\n{stderr}"
    );

    // The StartAt sent is a few seconds after SSM received the command, by
    // SSM's (this machine's) clock: not 900 s after.
    let all: serde_json::Value = serde_json::from_str(&crate::support::emulator_http(
        "GET",
        "/_flamefire/invocations",
        None,
    ))
    .unwrap();
    let command = all["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["DocumentName"].as_str() == Some(emu.document.as_str()))
        .expect("the run's command");
    let requested = command["RequestedDateTime"].as_f64().unwrap();
    let start_at: f64 = command["resolved_parameters"]["StartAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lead = start_at - requested;
    assert!(
        (0.0..30.0).contains(&lead),
        "StartAt is {lead} s after SSM got the command:\n{stderr}"
    );
    let svg = out.path().join(format!("{}.svg", ids[0]));
    assert!(svg_titles(&svg).iter().any(|t| t.contains("tokenizeHtml")));
}
