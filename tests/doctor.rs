//! `flamefire doctor`, `document print|deploy`, `runs` and `fetch` against the emulator.

use std::process::Command;

use predicates::prelude::*;

use crate::support::{Emulator, endpoint, flamefire, repo, unique};

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
    flamefire()
        .args([
            "doctor",
            "--bucket",
            &emu.bucket,
            "--document",
            &emu.document,
            &ids[0],
        ])
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
