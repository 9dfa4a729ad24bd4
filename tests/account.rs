//! Issue 9, section 2: what a run in a real account under the on-call role
//! needs, through the real binary against the emulator. Each test pins one
//! blocker the issue found: opt-in tags, old agents, wildcard tag values,
//! one denied instance sinking its batch, duplicate SendCommands, credentials
//! that expire mid-run, a run record that cannot be written, a bucket in
//! another region, and the document's 64 KB limit.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use predicates::prelude::*;

use crate::iam::{Registered, SECRET, admin, calls_by, fresh_access_key, oncall_policy};
use crate::support::{Emulator, ONLINE, endpoint, flamefire, unique};

const OPTED_IN: (&str, &str) = ("flamefire", "enabled");
const UNDELIVERABLE: (&str, &str) = ("flamefire-test:behaviour", "undeliverable");

/// `flamefire ssm` on this emulator's bucket and document, signing with `key`.
fn ssm_as(emu: &Emulator, key: &str, out: &Path) -> assert_cmd::Command {
    let mut cmd = emu.ssm();
    cmd.args(["--duration", "1", "--out"])
        .arg(out)
        // This key's own long-term identity, not the on-call session emu.ssm() carries.
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .timeout(Duration::from_secs(180));
    cmd
}

/// Arms an emulator fault for requests signed with `key` only.
pub fn fault(key: &str, operation: &str, error: &str, status: u16, message: &str, count: u32) {
    let (code, reply) = admin(
        "POST",
        "faults",
        Some(&serde_json::json!({
            "operation": operation, "error": error, "status": status,
            "message": message, "count": count, "access_key_id": key,
        })),
    );
    assert_eq!(code, 200, "the emulator refused the fault: {reply}");
}

fn stdout_json(assert: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&assert.get_output().stdout).expect("--json output")
}

fn host<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the report: {report}"))
}

#[test]
fn hosts_chosen_by_tag_without_the_opt_in_tag_are_skipped_before_sending() {
    let emu = Emulator::new();
    let role = unique("api");
    let role_tag = ("Role", role.as_str());
    let opted = emu.seed_replaying(1, &[role_tag, OPTED_IN]);
    let not_opted = emu.seed_replaying(1, &[role_tag, ("flamefire", "disabled")]);
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args([
            "--tag",
            &format!("Role={role}"),
            "--duration",
            "1",
            "--json",
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "skipped {}: lacks the opt-in tag flamefire=enabled",
            not_opted[0]
        )));
    let report = stdout_json(&assert);
    assert_eq!(host(&report, &opted[0])["status"], "rendered");
    assert_eq!(host(&report, &not_opted[0])["status"], "skipped");
    assert!(emu.invocations_of(&not_opted[0]).is_empty(), "nothing sent");

    // Another opt-in tag, for IAM set up without the Terraform module: an
    // identity whose own policy allows SendCommand on any instance.
    let key = fresh_access_key();
    let _admin = Registered::new(
        &key,
        &serde_json::json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    );
    ssm_as(&emu, &key, &out.path().join("other"))
        .args(["--tag", &format!("Role={role}")])
        .args(["--opt-in-tag", "flamefire=disabled"])
        .assert()
        .success();
    assert_eq!(emu.invocations_of(&not_opted[0]).len(), 1);
}

#[test]
fn agents_too_old_for_env_var_parameters_are_skipped_before_sending() {
    let emu = Emulator::new();
    let good = emu.seed_replaying(1, &[]);
    let old = emu.seed_replaying(1, &[("flamefire-test:agent-version", "3.3.2745.0")]);
    let out = tempfile::tempdir().unwrap();
    emu.ssm()
        .args([&good[0], &old[0], "--duration", "1", "--out"])
        .arg(out.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "skipped {}: SSM agent 3.3.2745.0 is older than 3.3.2746.0",
            old[0]
        )));
    assert!(emu.invocations_of(&old[0]).is_empty(), "nothing sent");
    assert_eq!(emu.invocations_of(&good[0]).len(), 1);
}

#[test]
fn tag_values_with_wildcard_characters_match_only_themselves() {
    let emu = Emulator::new();
    let base = unique("w");
    let literal = format!("{base}*?");
    let exact = emu.seed_replaying(1, &[OPTED_IN, ("Svc", literal.as_str())]);
    // `*` and `?` unescaped would match this one too.
    let wider = format!("{base}-anything-x");
    let other = emu.seed_replaying(1, &[OPTED_IN, ("Svc", wider.as_str())]);
    let out = tempfile::tempdir().unwrap();
    emu.ssm()
        .args([
            "--tag",
            &format!("Svc={literal}"),
            "--duration",
            "1",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    assert_eq!(emu.invocations_of(&exact[0]).len(), 1);
    assert!(emu.invocations_of(&other[0]).is_empty(), "not a wildcard");
}

#[test]
fn a_denied_instance_is_set_aside_and_the_rest_of_its_batch_is_sent() {
    let emu = Emulator::new();
    let key = fresh_access_key();
    let _policy = Registered::new(&key, &oncall_policy(&emu));
    let good = emu.seed_replaying(2, &[OPTED_IN]);
    let denied = emu.seed_replaying(1, &[("flamefire", "disabled")]);
    let out = tempfile::tempdir().unwrap();
    // Named ids are not filtered by tag: IAM refuses the batch for one of them.
    let assert = ssm_as(&emu, &key, out.path())
        .args([&good[0], &denied[0], &good[1], "--json"])
        .assert()
        .code(1);
    let report = stdout_json(&assert);
    for id in &good {
        assert_eq!(host(&report, id)["status"], "rendered", "{report}");
    }
    let refused = host(&report, &denied[0]);
    assert_eq!(refused["status"], "failed");
    assert!(
        refused["cause"]
            .as_str()
            .unwrap()
            .contains("AccessDeniedException"),
        "{refused}"
    );
    assert!(emu.invocations_of(&denied[0]).is_empty());
    // One refused call naming the instance, then the rest in one call.
    assert_eq!(calls_by(&key, "ssm:SendCommand"), (2, 1));
}

#[test]
fn send_command_is_not_retried_after_an_error_ssm_may_have_acted_on() {
    let emu = Emulator::new();
    let key = fresh_access_key();
    let id = emu.seed(1, &[ONLINE, UNDELIVERABLE]).remove(0);
    // A 5xx may come after SSM created the command: SendCommand has no
    // idempotency token, so a retry would record twice.
    fault(
        &key,
        "ssm:SendCommand",
        "InternalServerError",
        500,
        "internal error",
        1,
    );
    let out = tempfile::tempdir().unwrap();
    ssm_as(&emu, &key, out.path())
        .arg(&id)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("InternalServerError"));
    assert_eq!(calls_by(&key, "ssm:SendCommand"), (1, 1), "one call only");
}

#[test]
fn a_throttled_send_command_is_retried() {
    let emu = Emulator::new();
    let key = fresh_access_key();
    let id = emu.seed_replaying(1, &[]).remove(0);
    fault(
        &key,
        "ssm:SendCommand",
        "ThrottlingException",
        400,
        "Rate exceeded",
        2,
    );
    let out = tempfile::tempdir().unwrap();
    ssm_as(&emu, &key, out.path()).arg(&id).assert().success();
    assert_eq!(calls_by(&key, "ssm:SendCommand"), (3, 2));
    assert_eq!(emu.invocations_of(&id).len(), 1, "one command, not three");
}

#[test]
fn a_run_record_that_cannot_be_written_stops_the_run_before_sending() {
    let emu = Emulator::new();
    let id = emu.seed(1, &[ONLINE, UNDELIVERABLE]).remove(0);
    for (message, says) in [
        ("Access Denied", "--prefix"),
        (
            "User: arn:aws:sts::123456789012:assumed-role/flamefire-oncall/s is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:123456789012:key/k",
            "KMS key",
        ),
    ] {
        let key = fresh_access_key();
        fault(&key, "s3:PutObject", "AccessDenied", 403, message, 1);
        let out = tempfile::tempdir().unwrap();
        ssm_as(&emu, &key, out.path())
            .arg(&id)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("s3:PutObject"))
            .stderr(predicate::str::contains("run.json"))
            .stderr(predicate::str::contains(says));
        assert_eq!(calls_by(&key, "ssm:SendCommand"), (0, 0), "nothing sent");
    }
    assert!(emu.invocations_of(&id).is_empty());
}

/// An AWS config whose profile gets its credentials from a
/// `credential_process` that says they expire at `expires`.
pub fn expiring_profile(dir: &Path, expires: SystemTime) -> std::path::PathBuf {
    let secs = expires.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let stamp = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let json = serde_json::json!({
        "Version": 1,
        "AccessKeyId": fresh_access_key(),
        "SecretAccessKey": SECRET,
        "SessionToken": "FwoGZXIvYXdzEXAMPLESESSIONTOKEN",
        "Expiration": stamp.trim(),
    });
    let creds = dir.join("creds.json");
    std::fs::write(&creds, json.to_string()).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile short]\nregion = us-east-1\ncredential_process = cat {}\n",
            creds.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn credentials_that_expire_before_the_last_upload_stop_the_run_before_sending() {
    let emu = Emulator::new();
    let id = emu.seed(1, &[ONLINE, UNDELIVERABLE]).remove(0);
    let dir = tempfile::tempdir().unwrap();
    // `aws login` sessions last 15 minutes; this one has 2 left, and a
    // default run needs 30 s + a 300 s --timeout.
    let config = expiring_profile(dir.path(), SystemTime::now() + Duration::from_secs(120));
    let out = tempfile::tempdir().unwrap();
    emu.ssm()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .args(["--profile", "short", "--duration", "30", "--out"])
        .arg(out.path())
        .arg(&id)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("your AWS credentials expire at"))
        .stderr(predicate::str::contains("log in again"))
        .stderr(predicate::str::contains("--timeout"));
    assert!(emu.invocations_of(&id).is_empty(), "nothing sent");
}

#[test]
fn a_bucket_in_another_region_gets_uploads_signed_for_that_region() {
    let emu = Emulator::new();
    let bucket = unique("ff-eu").to_lowercase();
    let created = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "PUT"])
        .args(["-H", "Content-Type: application/xml"])
        .arg(format!("{}/{bucket}", endpoint()))
        .args([
            "--data-binary",
            "<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
    let id = emu.seed_replaying(1, &[]).remove(0);
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args(["ssm", &id, "--bucket", &bucket, "--document", &emu.document])
        .args(["--duration", "1", "--out"])
        .arg(out.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "bucket {bucket} is in eu-west-1"
        )));
    let (_, body) = admin("GET", "invocations", None);
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    let command = all["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["InstanceIds"][0] == id.as_str())
        .expect("the command");
    let credential = command["resolved_parameters"]["UploadCredential"]
        .as_str()
        .unwrap();
    assert!(
        credential.ends_with("/eu-west-1/s3/aws4_request"),
        "{credential}"
    );
}

/// Regression (issue 9): SSM refuses a command whose document plus
/// parameter values exceed 64 KB ("MaxDocumentSizeExceeded: The size limit
/// of a document is 64 KB", SendCommand's errors in
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html),
/// and the limit counts the runtime parameters too. Each value below is the
/// longest its allowedPattern accepts (checked against the document, so
/// that a widened pattern grows the value here).
#[test]
fn the_document_with_worst_case_parameters_fits_ssms_64_kb() {
    let doc = flamefire::document::embedded().unwrap();
    let worst = crate::patterns::worst_case_parameters();
    for name in doc.parameters.keys() {
        assert!(
            worst.iter().any(|(n, _)| n == name),
            "parameter {name} has no worst case here: add the longest value its allowedPattern accepts"
        );
    }
    let mut params = 0;
    for (name, value) in &worst {
        doc.check(name, value, name)
            .unwrap_or_else(|e| panic!("the worst case of {name} is not allowed: {e}"));
        params += name.len() + value.len();
    }
    let yaml = flamefire::document::YAML.len();
    let total = yaml + params;
    const LIMIT: usize = 64 * 1024;
    assert!(
        total <= LIMIT,
        "document {yaml} B + worst-case parameters {params} B = {total} B > SSM's {LIMIT} B: trim the script's comments"
    );
    println!("document {yaml} B + parameters {params} B = {total} B of {LIMIT} B");
}
