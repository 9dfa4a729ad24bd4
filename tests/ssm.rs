//! `flamefire ssm` end to end: the real binary and SDK, over HTTP, against
//! moto plus the stand-in agent (tests/emulator), which runs the real
//! document script with real perf against real Node processes, and uploads
//! through the real presigned POST with curl.

use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::{
    Emulator, NodeApp, flamefire_process, office_only_uploads, require, share_of, svg_titles,
    unique, wait_for_line,
};

const ONLINE: (&str, &str) = ("flamefire-test:ssm", "online");
/// The Terraform module's opt-in tag: hosts chosen by --tag or --asg need it.
const OPTED_IN: (&str, &str) = ("flamefire", "enabled");

fn stdout_lines(assert: &assert_cmd::assert::Assert) -> Vec<String> {
    String::from_utf8(assert.get_output().stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn one_instance_is_profiled_and_rendered() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 2, &["--perf-basic-prof"]);
    let ids = emu.seed(1, &[ONLINE, ("Name", "api-1")]);
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .arg(&ids[0])
        .args(["--duration", "2", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .success()
        .stderr(predicate::str::contains("api-1"));
    let svg = out.path().join(format!("{}.svg", ids[0]));
    assert_eq!(stdout_lines(&assert), vec![svg.display().to_string()]);
    assert!(svg_titles(&svg).iter().any(|t| t.contains("tokenizeHtml")));
    let (hot, all) = share_of(&svg.with_extension("folded"), "tokenizeHtml");
    assert!(
        all > 50 && hot * 100 / all >= 30,
        "tokenizeHtml has {hot} of {all}"
    );
    // The raw stacks are kept for speedscope / FlameScope.
    let raw = out.path().join(format!("raw/{}.perf", ids[0]));
    assert!(std::fs::read_to_string(raw).unwrap().contains("cpu-clock"));
}

#[test]
fn several_ids_give_per_host_svgs_and_a_merged_fleet_svg() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let ids = emu.seed(2, &[ONLINE]);
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args(&ids)
        .args(["--duration", "2", "--json", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert!(
        hosts
            .iter()
            .all(|h| h["status"] == "rendered" && h["samples"].as_u64() > Some(0))
    );
    let fleet = out.path().join("fleet.svg");
    assert_eq!(report["merged_svg"].as_str(), Some(fleet.to_str().unwrap()));
    let titles = svg_titles(&fleet);
    for id in &ids {
        assert!(
            titles.iter().any(|t| t.starts_with(id.as_str())),
            "{id} is a root frame"
        );
    }
}

#[test]
fn tags_select_every_matching_running_instance() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let role = unique("api");
    let both = emu.seed(2, &[ONLINE, OPTED_IN, ("Role", &role), ("Env", "prod")]);
    let staging = emu.seed(1, &[ONLINE, OPTED_IN, ("Role", &role), ("Env", "staging")]);
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args([
            "--tag",
            &format!("Role={role}"),
            "--tag",
            "Env=prod",
            "--duration",
            "1",
            "--out",
        ])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .success();
    let lines = stdout_lines(&assert);
    for id in &both {
        assert!(
            lines.iter().any(|l| l.contains(id.as_str())),
            "{id} rendered"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains(staging[0].as_str())),
        "Env=staging is not selected"
    );
}

#[test]
fn an_autoscaling_group_is_profiled_whole() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let group = unique("checkout-asg");
    let ids = emu.seed(
        2,
        &[ONLINE, OPTED_IN, ("aws:autoscaling:groupName", &group)],
    );
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args(["--asg", &group, "--duration", "1", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .success();
    assert_eq!(stdout_lines(&assert).len(), 3, "fleet.svg + one per host");
    for id in ids {
        assert!(out.path().join(format!("{id}.svg")).is_file());
    }
}

#[test]
fn more_than_fifty_instances_go_out_in_several_batches() {
    let emu = Emulator::new();
    let capture = crate::support::repo().join("tests/data/captures/sick.perf.gz");
    let group = unique("big-asg");
    let ids = emu.seed(
        55,
        &[
            ONLINE,
            OPTED_IN,
            ("aws:autoscaling:groupName", &group),
            ("flamefire-test:behaviour", "replay"),
            ("flamefire-test:replay-capture", capture.to_str().unwrap()),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args(["--asg", &group, "--duration", "1", "--json", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(report["hosts"].as_array().unwrap().len(), 55);
    for id in &ids {
        assert!(out.path().join(format!("{id}.svg")).is_file(), "{id}");
    }
    assert!(svg_titles(&out.path().join("fleet.svg")).len() > 55);
}

#[test]
fn a_mixed_fleet_renders_the_healthy_hosts_and_exits_1() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let good = emu.seed(1, &[ONLINE, ("Name", "good")]);
    let no_node = emu.seed(1, &[ONLINE, ("flamefire-test:behaviour", "no-node")]);
    let undeliverable = emu.seed(1, &[ONLINE, ("flamefire-test:behaviour", "undeliverable")]);
    let corrupt = emu.seed(1, &[ONLINE, ("flamefire-test:behaviour", "corrupt-upload")]);
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args([&good[0], &no_node[0], &undeliverable[0], &corrupt[0]])
        .args(["--duration", "1", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        stdout_lines(&assert),
        vec![
            out.path()
                .join(format!("{}.svg", good[0]))
                .display()
                .to_string()
        ]
    );
    assert!(
        stderr.contains(&format!("{} failed: ", no_node[0])),
        "{stderr}"
    );
    assert!(
        stderr.contains("is not running") || stderr.contains("no running process"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{} failed: SSM reported Undeliverable",
            undeliverable[0]
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{} failed: stacks.gz is corrupt or truncated",
            corrupt[0]
        )),
        "{stderr}"
    );
    assert!(stderr.contains("next step"), "{stderr}");
}

#[test]
fn unmanaged_instances_are_reported_and_skipped() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let managed = emu.seed(1, &[ONLINE]);
    let unmanaged = emu.seed(1, &[("Name", "no-agent")]);
    let offline = emu.seed(1, &[("flamefire-test:ssm", "offline")]);
    let out = tempfile::tempdir().unwrap();
    emu.ssm()
        .args([&managed[0], &unmanaged[0], &offline[0]])
        .args(["--duration", "1", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "skipped {} (no-agent): not managed by SSM",
            unmanaged[0]
        )))
        .stderr(predicate::str::contains(format!(
            "skipped {}: SSM agent offline",
            offline[0]
        )));
    assert!(
        emu.invocations_of(&unmanaged[0]).is_empty(),
        "nothing was sent to it"
    );
}

#[test]
fn nothing_to_profile_exits_2_with_what_to_check() {
    let emu = Emulator::new();
    emu.ssm()
        .args([
            "--tag",
            &format!("Role={}", unique("nobody")),
            "--duration",
            "1",
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("no instance matches tag"))
        .stderr(predicate::str::contains("--region"));
    let unmanaged = emu.seed(1, &[]);
    emu.ssm()
        .arg(&unmanaged[0])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SSM agent"));
    emu.ssm()
        .arg("i-0123456789abcdef0")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such instance"));
}

#[test]
fn a_wrong_bucket_is_a_clear_error_before_anything_is_sent() {
    let emu = Emulator::new();
    let ids = emu.seed(1, &[ONLINE]);
    crate::support::flamefire()
        .args([
            "ssm",
            &ids[0],
            "--document",
            &emu.document,
            "--bucket",
            "flamefire-no-such-bucket",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bucket flamefire-no-such-bucket does not exist",
        ))
        .stderr(predicate::str::contains("--bucket"));
    assert!(emu.invocations_of(&ids[0]).is_empty());
}

/// Regression: when no batch could be sent, the error was wrapped twice
/// ("ssm:SendCommand failed: ssm:SendCommand failed: …") and an empty
/// output directory and a run record were left behind.
#[test]
fn a_missing_document_names_the_deploy_command() {
    let emu = Emulator::new();
    let ids = emu.seed(1, &[ONLINE]);
    let cwd = tempfile::tempdir().unwrap();
    let assert = crate::support::flamefire()
        .current_dir(cwd.path())
        .args([
            "ssm",
            &ids[0],
            "--bucket",
            &emu.bucket,
            "--document",
            "flamefire-not-deployed",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("flamefire document deploy"));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        stderr.matches("ssm:SendCommand failed").count(),
        1,
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "no output directory is left behind"
    );
    crate::support::flamefire()
        .args(["runs", "--json", "--bucket", &emu.bucket])
        .assert()
        .success()
        .stdout(predicate::str::diff("[]\n"));
}

#[test]
fn ctrl_c_cancels_the_remote_commands_and_exits_130() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let ids = emu.seed(1, &[ONLINE]);
    let mut child = flamefire_process()
        .args([
            "ssm",
            &ids[0],
            "--bucket",
            &emu.bucket,
            "--document",
            &emu.document,
        ])
        .args(["--duration", "60", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .args(app.pid_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    wait_for_line(&mut stderr, "InProgress", Duration::from_secs(60));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains(&format!("cancelled {}", ids[0])), "{rest}");
    let invocations = emu.invocations_of(&ids[0]);
    assert_eq!(invocations.len(), 1);
    // The stand-in agent kills the script; give it a moment to report.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = &emu.invocations_of(&ids[0])[0];
        if status == "Cancelled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "invocation is {status}, not Cancelled"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!Path::new("/tmp/PWNED").exists());
}

/// Regression (issue 17 §5): at `--timeout`, hosts still open were
/// reported `GaveUp` but not cancelled; with SSM's 600-s delivery timeout a
/// late host then recorded and uploaded after flamefire had exited. The
/// slow host here replays only after 600 s, so only a cancel ends it.
#[test]
fn timeout_cancels_the_hosts_still_open_and_renders_the_others() {
    let emu = Emulator::new();
    let fast = emu.seed_replaying(1, &[]);
    let slow = emu.seed_replaying(1, &[("flamefire-test:replay-delay", "600")]);
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args([&fast[0], &slow[0]])
        .args(["--duration", "1", "--timeout", "5", "--out"])
        .arg(out.path())
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("--timeout passed"), "{stderr}");
    assert!(
        stderr.contains(&format!("cancelled {}", slow[0])),
        "{stderr}"
    );
    assert!(
        out.path().join(format!("{}.svg", fast[0])).is_file(),
        "{stderr}"
    );
    // CancelCommand is asynchronous in SSM: wait for the invocation to end.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = emu.invocations_of(&slow[0])[0].clone();
        if status == "Cancelled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow host is {status}, not Cancelled"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Regression (issue 17 §3): SendCommand refuses a whole call with
/// `InvalidInstanceId` when one listed instance is terminating; an ASG that
/// scales in between the survey and the send failed the whole batch.
#[test]
fn an_instance_terminated_before_the_send_is_skipped_and_the_batch_renders() {
    let emu = Emulator::new();
    let dying = emu.seed_replaying(1, &[("flamefire-test:terminate-on-send", "1")]);
    let host = one_odd_host_among_healthy_ones(&emu, &dying[0]);
    assert_eq!(host["status"], "skipped", "{host}");
    assert!(
        host["cause"].as_str().unwrap_or("").contains("terminated"),
        "{host}"
    );
}

/// DescribeInstanceInformation refuses a whole call for one node id it does
/// not know (issue 17 §7): an unknown hybrid `mi-` id among the targets is
/// reported as not found and the others are profiled.
#[test]
fn an_unknown_hybrid_node_is_not_found_and_the_others_render() {
    let emu = Emulator::new();
    let host = one_odd_host_among_healthy_ones(&emu, "mi-0123456789abcdef0");
    assert_eq!(host["status"], "skipped", "{host}");
    assert!(
        host["cause"]
            .as_str()
            .unwrap_or("")
            .contains("no such instance"),
        "{host}"
    );
}

/// Runs two healthy replaying hosts with `odd` between them: the run must
/// succeed and draw both; returns `odd`'s entry of the --json report.
fn one_odd_host_among_healthy_ones(emu: &Emulator, odd: &str) -> serde_json::Value {
    let healthy = emu.seed_replaying(2, &[]);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = emu.ssm();
    cmd.args([
        healthy[0].as_str(),
        odd,
        healthy[1].as_str(),
        "--duration",
        "1",
    ]);
    let (report, stderr) = json_run(cmd, &out, true);
    for id in &healthy {
        assert!(
            out.path().join(format!("{id}.svg")).is_file(),
            "{id} is drawn: {stderr}"
        );
    }
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == odd)
        .unwrap_or_else(|| panic!("{odd} is in the report: {report}"))
        .clone()
}

/// `cmd --json --out OUT`: the parsed report and stderr, after checking
/// that the exit code is 0 (`success`) or not.
fn json_run(
    mut cmd: assert_cmd::Command,
    out: &tempfile::TempDir,
    success: bool,
) -> (serde_json::Value, String) {
    let assert = cmd.args(["--json", "--out"]).arg(out.path()).assert();
    let assert = if success {
        assert.code(0)
    } else {
        assert.failure()
    };
    let output = assert.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let report =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("--json: {e}\n{stderr}"));
    (report, stderr)
}

/// The host's failure carries S3's code and a next step naming the
/// condition keys, not "read the stderr".
fn assert_refused_post_is_explained(host: &serde_json::Value) {
    assert_eq!(host["status"], "failed", "{host}");
    assert!(
        host["cause"]
            .as_str()
            .unwrap_or("")
            .contains("<Code>AccessDenied</Code>"),
        "S3's code reaches the operator: {host}"
    );
    let next = host["next_step"].as_str().unwrap_or("");
    assert!(
        next.contains("s3:authType") && next.contains("aws:SourceIp"),
        "the next step names the keys: {host}"
    );
}

/// The hosts' POST is judged in its own context (issue 17 §2): a bucket
/// policy that admits only the office's addresses lets the laptop's
/// `run.json` in and refuses every host's upload from its NAT address.
#[test]
fn a_bucket_policy_that_refuses_the_hosts_post_is_named_with_its_keys() {
    let emu = Emulator::new();
    let hosts = emu.seed_replaying(1, &[("flamefire-test:source-ip", "203.0.113.7")]);
    office_only_uploads(&emu.bucket);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = emu.ssm();
    cmd.args([&hosts[0], "--duration", "1"]);
    let (report, _) = json_run(cmd, &out, false);
    assert_refused_post_is_explained(&report["hosts"][0]);
}

/// The real script checks its upload path before it installs or records
/// (issue 17 §1): a host whose POST the bucket policy refuses fails at once,
/// from the check that runs before perf is installed or started
/// (check_upload_path), with S3's code and the next step.
#[test]
fn the_script_checks_its_upload_path_before_it_records() {
    require("perf");
    let emu = Emulator::new();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let ids = emu.seed(1, &[ONLINE, ("flamefire-test:source-ip", "203.0.113.7")]);
    office_only_uploads(&emu.bucket);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = emu.ssm();
    cmd.args([&ids[0], "--duration", "30"]).args(app.pid_args());
    let (report, _) = json_run(cmd, &out, false);
    let host = &report["hosts"][0];
    assert_refused_post_is_explained(host);
    assert!(
        host["cause"]
            .as_str()
            .unwrap_or("")
            .contains("before recording: upload of upload-check"),
        "{host}"
    );
}
