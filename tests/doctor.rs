//! `flamefire doctor`, `document print|deploy`, `runs` and `fetch` against the emulator.

use std::process::Command;

use predicates::prelude::*;

use crate::support::{Emulator, NodeApp, endpoint, flamefire, repo, require, unique};

const ONLINE: (&str, &str) = ("flamefire-test:ssm", "online");

/// Creates a document whose content is not the embedded one, through the
/// SSM JSON API (moto does not check signatures).
fn create_drifted_document(name: &str) {
    // A real change, not just a comment: doctor compares meaning, not bytes.
    let content = flamefire::document::YAML.replacen("default: \"99\"", "default: \"49\"", 1);
    assert_ne!(content, flamefire::document::YAML);
    let body = serde_json::json!({
        "Name": name, "Content": content, "DocumentType": "Command", "DocumentFormat": "YAML"
    })
    .to_string();
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "POST", &endpoint()])
        .args(["-H", "X-Amz-Target: AmazonSSM.CreateDocument"])
        .args(["-H", "Content-Type: application/x-amz-json-1.1"])
        .args([
            "-H",
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261127/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0",
        ])
        .args(["--data-binary", &body])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `flamefire doctor` on this emulator's bucket and document.
fn doctor(emu: &Emulator) -> assert_cmd::Command {
    let mut cmd = flamefire();
    cmd.args([
        "doctor",
        "--bucket",
        &emu.bucket,
        "--document",
        &emu.document,
    ]);
    cmd
}

#[test]
fn document_print_is_the_embedded_yaml_byte_for_byte() {
    let yaml = std::fs::read(repo().join("ssm-documents/flamefire-record.yaml")).unwrap();
    flamefire()
        .args(["document", "print"])
        .assert()
        .success()
        .stdout(predicate::eq(yaml));
}

#[test]
fn doctor_passes_on_a_healthy_setup_and_deploy_adds_versions() {
    let emu = Emulator::new();
    flamefire()
        .args(["document", "deploy", "--document", &emu.document])
        .assert()
        .success()
        .stderr(predicate::str::contains("already up to date"));
    let ids = emu.seed(1, &[ONLINE, ("Name", "healthy")]);
    doctor(&emu)
        .arg(&ids[0])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("✔ credentials"))
        .stdout(predicate::str::contains("matches this flamefire"))
        .stdout(predicate::str::contains(
            "managed, online, Linux, agent 3.3.2957.0",
        ))
        .stdout(predicate::str::contains("✖").not());
}

#[test]
fn doctor_flags_a_missing_document_an_offline_host_and_an_old_agent() {
    let emu = Emulator::new();
    let offline = emu.seed(1, &[("flamefire-test:ssm", "offline")]);
    let old = emu.seed(1, &[ONLINE, ("flamefire-test:agent-version", "3.2.923.0")]);
    let missing = unique("flamefire-missing");
    flamefire()
        .args([
            "doctor",
            "--bucket",
            &emu.bucket,
            "--document",
            &missing,
            &offline[0],
            &old[0],
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(format!(
            "✖ document                     {missing} does not exist"
        )))
        .stdout(predicate::str::contains("flamefire document deploy"))
        .stdout(predicate::str::contains(format!("✖ {}", offline[0])))
        .stdout(predicate::str::contains("SSM agent offline"))
        .stdout(predicate::str::contains(
            "3.2.923.0 is older than 3.3.2746.0",
        ));
}

#[test]
fn doctor_warns_about_a_drifted_document_with_exit_1() {
    let emu = Emulator::new();
    let drifted = unique("flamefire-drifted");
    create_drifted_document(&drifted);
    flamefire()
        .args(["doctor", "--bucket", &emu.bucket, "--document", &drifted])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("drift"))
        .stdout(predicate::str::contains(format!(
            "flamefire document deploy --document {drifted}"
        )));
}

#[test]
fn doctor_names_a_missing_bucket() {
    let emu = Emulator::new();
    flamefire()
        .args([
            "doctor",
            "--bucket",
            "flamefire-no-such-bucket",
            "--document",
            &emu.document,
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("✖ bucket"))
        .stdout(predicate::str::contains(
            "flamefire-no-such-bucket does not exist",
        ));
}

#[test]
fn past_runs_are_listed_and_fetched_again() {
    let emu = Emulator::new();
    let capture = repo().join("tests/data/captures/sick.perf.gz");
    let ids = emu.seed(
        2,
        &[
            ONLINE,
            ("flamefire-test:behaviour", "replay"),
            ("flamefire-test:replay-capture", capture.to_str().unwrap()),
        ],
    );
    let first = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args(&ids)
        .args(["--duration", "1", "--json", "--out"])
        .arg(first.path())
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let run_id = report["run_id"].as_str().unwrap().to_string();

    let assert = flamefire()
        .args(["runs", "--json", "--bucket", &emu.bucket])
        .assert()
        .success();
    let runs: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let run = &runs.as_array().unwrap()[0];
    assert_eq!(run["run_id"], run_id.as_str(), "newest first");
    assert_eq!(run["uploaded"].as_array().unwrap().len(), 2);
    assert_eq!(run["record"]["duration_s"], 1);
    flamefire()
        .args(["runs", "--bucket", &emu.bucket])
        .assert()
        .success()
        .stdout(predicate::str::contains(&run_id))
        .stdout(predicate::str::contains("1s@99Hz"));

    let again = tempfile::tempdir().unwrap();
    flamefire()
        .args(["fetch", &run_id, "--bucket", &emu.bucket, "--out"])
        .arg(again.path())
        .assert()
        .success();
    for id in &ids {
        let svg = again.path().join(format!("{id}.svg"));
        assert!(
            crate::support::svg_titles(&svg)
                .iter()
                .any(|t| t.contains("tokenizeHtml"))
        );
    }
    assert!(again.path().join("fleet.svg").is_file());
    assert!(again.path().join("report.html").is_file());

    // A past run's hosts can be diffed directly (issue: diff RUN_ID/i-…).
    let diff_out = tempfile::tempdir().unwrap();
    flamefire()
        .args([
            "diff",
            &format!("{run_id}/{}", ids[0]),
            &format!("{run_id}/{}", ids[1]),
        ])
        .args(["--bucket", &emu.bucket, "--out"])
        .arg(diff_out.path())
        .assert()
        .success();
    assert!(diff_out.path().join("diff.svg").is_file());
    let titles = crate::support::svg_titles(&diff_out.path().join("after.svg"));
    assert!(titles.iter().any(|t| t.contains("tokenizeHtml")));
    flamefire()
        .args([
            "diff",
            &format!("{run_id}/{}", ids[0]),
            &format!("{run_id}/{}", ids[1]),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--bucket"));

    flamefire()
        .args(["fetch", "20200101T000000Z-0000", "--bucket", &emu.bucket])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("flamefire runs"));
}

#[test]
fn doctor_passes_as_the_oncall_role() {
    use crate::iam::{Registered, SECRET, fresh_access_key, oncall_policy};
    let emu = Emulator::new();
    let key = fresh_access_key();
    let _policy = Registered::new(&key, &oncall_policy(&emu));
    let role = unique("api");
    emu.seed(1, &[ONLINE, ("flamefire", "enabled"), ("Role", &role)]);
    doctor(&emu)
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .args(["--tag", &format!("Role={role}")])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("✔ prefix"))
        .stdout(predicate::str::contains("✔ session"))
        .stdout(predicate::str::contains("✖").not());
}

#[test]
fn doctor_reports_hosts_without_the_opt_in_tag() {
    let emu = Emulator::new();
    let role = unique("api");
    let opted = emu.seed(1, &[ONLINE, ("flamefire", "enabled"), ("Role", &role)]);
    // seed() tags hosts flamefire=enabled unless told otherwise.
    let not_opted = emu.seed(1, &[ONLINE, ("flamefire", "disabled"), ("Role", &role)]);
    doctor(&emu)
        .args(["--tag", &format!("Role={role}")])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(format!("✔ {}", opted[0])))
        .stdout(predicate::str::contains(format!("✖ {}", not_opted[0])))
        .stdout(predicate::str::contains(
            "lacks the opt-in tag flamefire=enabled",
        ))
        .stdout(predicate::str::contains(
            "tag the instance flamefire=enabled",
        ));
}

#[test]
fn doctor_reports_a_prefix_it_cannot_write_with_the_next_step() {
    use crate::iam::{SECRET, fresh_access_key};
    let emu = Emulator::new();
    let key = fresh_access_key();
    crate::account::fault(
        &key,
        "s3:PutObject",
        "AccessDenied",
        403,
        "Access Denied",
        1,
    );
    doctor(&emu)
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("FLAMEFIRE_PREFIX", "not-mine/")
        .assert()
        .code(2)
        .stdout(predicate::str::contains("✖ prefix"))
        .stdout(predicate::str::contains("not-mine/.flamefire-doctor"))
        .stdout(predicate::str::contains("FLAMEFIRE_PREFIX"));
}

#[test]
fn doctor_fails_on_credentials_that_expire_before_a_run_could_finish() {
    let emu = Emulator::new();
    let dir = tempfile::tempdir().unwrap();
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
    let config = crate::account::expiring_profile(dir.path(), soon);
    flamefire()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .args(["doctor", "--profile", "short", "--bucket", &emu.bucket])
        .args(["--document", &emu.document])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("✖ session"))
        .stdout(predicate::str::contains("expire at"))
        .stdout(predicate::str::contains("log in again"));
}

/// `flamefire doctor --probe` for these hosts, as the on-call role.
fn probe(emu: &Emulator, ids: &[String]) -> assert_cmd::Command {
    let mut cmd = doctor(emu);
    cmd.arg("--probe").args(ids);
    emu.oncall().apply(&mut cmd);
    cmd
}

/// The line of the host's answer to the probe, and the next step under it.
fn host_lines(stdout: &str, id: &str) -> String {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !(l.contains(id) && l.contains("host says: ")));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no line for {id}:\n{stdout}"));
    match lines.next() {
        Some(next) if next.contains("next step:") => format!("{first}\n{next}"),
        _ => first.to_string(),
    }
}

/// Issue 17 §1: the real script, in probe mode, on a healthy host: every
/// check passes, the host's own POST reaches the bucket, perf records, and
/// nothing of a recording is left (no meta.json, no stacks).
#[test]
fn probe_asks_a_healthy_host_and_it_answers_with_what_a_run_would_find() {
    require("perf");
    let emu = Emulator::new();
    let _app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let ids = emu.seed(1, &[ONLINE]);
    let assert = probe(&emu, &ids).assert();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    println!("{stdout}");
    let line = host_lines(&stdout, &ids[0]);
    assert!(line.starts_with('✔'), "{stdout}");
    for said in [
        "perf version",
        "perf_event_paranoid",
        "MiB free in /var/tmp",
        "node process(es)",
        "upload ok",
    ] {
        assert!(line.contains(said), "{said:?} not in {line:?}");
    }
    assert!(!line.contains(" 0 node process(es)"), "{line}");
    assert.code(0);
    let keys = crate::support::bucket_keys(&emu.bucket);
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&format!("/{}/upload-check", ids[0]))),
        "the host POSTed its probe object: {keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with("meta.json") || k.ends_with("stacks.gz")),
        "a probe records nothing: {keys:?}"
    );
    let runs = flamefire()
        .args(["runs", "--json", "--bucket", &emu.bucket])
        .assert()
        .success();
    let runs: serde_json::Value = serde_json::from_slice(&runs.get_output().stdout).unwrap();
    assert_eq!(runs, serde_json::json!([]), "a probe is not a run");
    // As the on-call role, doctor and its probe make no request IAM refuses
    // (each would be an AccessDenied in CloudTrail).
    let key = &emu.oncall().access_key_id;
    let stats: serde_json::Value = serde_json::from_str(&crate::support::emulator_http(
        "GET",
        &format!("/_flamefire/stats?access_key_id={key}"),
        None,
    ))
    .unwrap();
    assert!(
        stats["operations"]["ssm:SendCommand"].as_u64() == Some(1),
        "{stats}"
    );
    assert_eq!(stats["errors"], serde_json::json!({}), "refused: {stats}");
}

/// Issue 17 §2: a bucket policy that admits the office only. The laptop's
/// own check of the prefix passes; the host's POST, from its NAT address,
/// is refused, and the probe says so with S3's code and the keys to look at.
#[test]
fn probe_finds_a_post_the_bucket_policy_refuses_where_the_laptop_check_passes() {
    require("perf");
    let emu = Emulator::new();
    let _app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let ids = emu.seed(1, &[ONLINE, ("flamefire-test:source-ip", "203.0.113.7")]);
    crate::support::office_only_uploads(&emu.bucket);
    let assert = probe(&emu, &ids).assert().code(2);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(stdout.contains("✔ prefix"), "{stdout}");
    let line = host_lines(&stdout, &ids[0]);
    assert!(line.starts_with('✖'), "{line}");
    assert!(
        line.contains("before recording: upload of upload-check") && line.contains("AccessDenied"),
        "{line}"
    );
    assert!(
        line.contains("s3:authType") && line.contains("aws:SourceIp"),
        "{line}"
    );
}

/// Issue 17, "done when": `doctor --probe` finds, per host, no route to S3,
/// no perf and no way to install it, perf forbidden by the kernel, and a
/// perf that a run would install; each with its next step. The hosts are
/// this machine under the emulator's test-only host conditions
/// (tests/emulator/hostenv.py): a network namespace with no route, perf and
/// the package managers absent from the filesystem, a seccomp filter that
/// refuses perf_event_open as a locked-down kernel or a container runtime
/// does. The real script meets each one, with the real curl and perf.
#[test]
fn probe_finds_each_hosts_problem_with_its_next_step() {
    require("perf");
    let emu = Emulator::new();
    let _app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let no_route = emu.seed(1, &[ONLINE, ("flamefire-test:network", "none")]);
    let package_managers = "dnf,yum,apt-get,zypper";
    let nothing = emu.seed(
        1,
        &[
            ONLINE,
            (
                "flamefire-test:without",
                &format!("perf,{package_managers}"),
            ),
        ],
    );
    let installable = emu.seed(1, &[ONLINE, ("flamefire-test:without", "perf")]);
    let forbidden = emu.seed(1, &[ONLINE, ("flamefire-test:seccomp", "deny-perf")]);
    let ids = [&no_route, &nothing, &installable, &forbidden].map(|v| v[0].clone());
    let assert = probe(&emu, &ids).assert().code(2);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    println!("{stdout}");

    let line = host_lines(&stdout, &ids[0]);
    assert!(line.starts_with('✖'), "{line}");
    assert!(
        line.contains("before recording: upload of upload-check") && line.contains("(curl exit 7)"),
        "{line}"
    );
    assert!(
        line.contains("no network path to the bucket's S3 endpoint"),
        "{line}"
    );

    let line = host_lines(&stdout, &ids[1]);
    assert!(line.starts_with('✖'), "{line}");
    assert!(
        line.contains("perf is not installed and no package manager"),
        "{line}"
    );
    assert!(
        line.contains("next step: install perf on the host"),
        "{line}"
    );

    let line = host_lines(&stdout, &ids[2]);
    assert!(line.starts_with('!'), "{line}");
    assert!(
        line.contains("perf to be installed")
            && line.contains("perf is not installed: a run will install it with apt-get"),
        "{line}"
    );

    let line = host_lines(&stdout, &ids[3]);
    assert!(line.starts_with('✖'), "{line}");
    assert!(
        line.contains("perf record failed (exit 255)")
            && line.contains(
                "Access to performance monitoring and observability operations is limited"
            ),
        "perf's own words: {line}"
    );
    assert!(line.contains("kernel.perf_event_paranoid"), "{line}");
}
