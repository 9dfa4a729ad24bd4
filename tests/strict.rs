//! The emulator is as strict as AWS for the on-call role (issue 9 §1): each
//! blocker that stopped real runs under that role now fails in the emulator,
//! through the real binary or the real SDK. The role is the Terraform
//! module's, rendered from `terraform/policies/*.tftpl` with the module's
//! defaults and assumed with MFA through the emulator's STS
//! (`support::Session::oncall`). `tests/emulator/strict_test.py` checks each
//! emulator rule on its own; these tests check what flamefire meets.

use std::time::{Duration, Instant};

use aws_sdk_ssm::error::ProvideErrorMetadata;
use predicates::prelude::*;

use crate::iam::calls_by;
use crate::support::{
    ACCOUNT, Emulator, NodeApp, ONLINE, REGION, REPLAY, Session, emulator_http, flamefire, require,
};

const UNDELIVERABLE: (&str, &str) = ("flamefire-test:behaviour", "undeliverable");

/// The SDK's shared config signing with a session, pointed at the emulator.
async fn config(session: &Session) -> aws_config::SdkConfig {
    let credentials = aws_credential_types::Credentials::new(
        &session.access_key_id,
        &session.secret_access_key,
        Some(session.session_token.clone()),
        None,
        "flamefire-strict-test",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(crate::support::endpoint())
        .credentials_provider(credentials)
        .load()
        .await
}

/// Every invocation of `document`'s commands: (instance, status, output, UploadUrl).
fn invocations(document: &str) -> Vec<(String, String, String, String)> {
    let all: serde_json::Value =
        serde_json::from_str(&emulator_http("GET", "/_flamefire/invocations", None)).unwrap();
    let mut out = Vec::new();
    for cmd in all["commands"].as_array().unwrap() {
        if cmd["DocumentName"].as_str() != Some(document) {
            continue;
        }
        let url = cmd["resolved_parameters"]["UploadUrl"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for inv in cmd["invocations"].as_array().unwrap() {
            let text = |k: &str| inv[k].as_str().unwrap_or_default().to_string();
            out.push((
                text("InstanceId"),
                text("Status"),
                format!(
                    "{}\n{}",
                    text("StandardOutputContent"),
                    text("StandardErrorContent")
                ),
                url.clone(),
            ));
        }
    }
    out
}

/// Blocker: "HeadBucket is denied to the project's own on-call role." The
/// role's s3:ListBucket grant has a `StringLike s3:prefix` condition and a
/// HeadBucket request carries no s3:prefix, so IAM denies it, with no body.
/// ListObjectsV2 of the prefix, which the bucket check now uses, is allowed.
#[test]
fn head_bucket_is_denied_to_the_oncall_role_and_list_of_the_prefix_is_not() {
    require("curl");
    let emu = Emulator::new();
    let session = emu.oncall().clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config(&session).await)
                .force_path_style(true)
                .build(),
        );
        let err = s3
            .head_bucket()
            .bucket(&emu.bucket)
            .send()
            .await
            .expect_err("HeadBucket must be denied to the on-call role");
        let status = err.raw_response().map(|r| r.status().as_u16());
        assert_eq!(status, Some(403), "{err:?}");
        s3.list_objects_v2()
            .bucket(&emu.bucket)
            .prefix("flamefire/")
            .max_keys(1)
            .send()
            .await
            .expect("ListObjectsV2 of the role's prefix is allowed");
        let denied = s3
            .list_objects_v2()
            .bucket(&emu.bucket)
            .prefix("elsewhere/")
            .max_keys(1)
            .send()
            .await
            .expect_err("ListObjectsV2 outside the prefix is denied");
        assert_eq!(denied.code(), Some("AccessDenied"), "{denied:?}");
        assert!(
            denied
                .message()
                .unwrap_or_default()
                .contains("s3:ListBucket"),
            "the 403 of a GET has S3's error body: {denied:?}"
        );
    });
    // So `doctor` and the bucket check pass under the role.
    let mut doctor = flamefire();
    doctor.args([
        "doctor",
        "--bucket",
        &emu.bucket,
        "--document",
        &emu.document,
    ]);
    session.apply(&mut doctor);
    doctor
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "assumed-role/{}/oncall",
            session.role_arn.rsplit('/').next().unwrap()
        )))
        .stdout(predicate::str::contains("is reachable"))
        .stdout(predicate::str::contains("✖").not());
}

/// Blocker: "One instance without the opt-in tag sinks its whole batch." IAM
/// authorises SendCommand against every instance ARN in the call, so one
/// untagged instance refuses the call for all of them.
#[test]
fn one_instance_without_the_opt_in_tag_denies_the_whole_send_command() {
    require("curl");
    let emu = Emulator::new();
    let session = emu.oncall().clone();
    let good = emu.seed(2, &[ONLINE, UNDELIVERABLE]);
    let untagged = emu
        .seed(1, &[ONLINE, UNDELIVERABLE, ("flamefire", "disabled")])
        .remove(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ssm = aws_sdk_ssm::Client::new(&config(&session).await);
        let batch = vec![good[0].clone(), untagged.clone(), good[1].clone()];
        let err = ssm
            .send_command()
            .document_name(&emu.document)
            .set_instance_ids(Some(batch))
            .send()
            .await
            .expect_err("a batch with an untagged instance is denied")
            .into_service_error();
        assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
        let message = err.message().unwrap_or_default();
        assert!(
            message.contains(&format!(
                "ssm:SendCommand on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{untagged}"
            )),
            "{message}"
        );
        assert!(
            message.contains("assumed-role/") && message.contains("/oncall"),
            "{message}"
        );
        for id in &good {
            assert!(
                emu.invocations_of(id).is_empty(),
                "nothing was sent to {id}"
            );
        }
        ssm.send_command()
            .document_name(&emu.document)
            .set_instance_ids(Some(good.clone()))
            .send()
            .await
            .expect("the tagged instances alone are allowed");
    });
}

/// Blocker: "`FLAMEFIRE_PREFIX` from the Terraform outputs is never read, so
/// the CLI signs for a prefix the role cannot write." A module deployed with
/// prefix `team-a/` and a CLI on its default prefix: the role refuses, and the
/// refusal comes from the bucket check, before anything is sent.
#[test]
fn a_prefix_the_role_cannot_use_is_refused_before_anything_is_sent() {
    require("curl");
    let emu = Emulator::new();
    let session = Session::oncall(
        &emu.bucket,
        &emu.document,
        serde_json::json!({"prefix": "team-a/"}),
    );
    let id = emu.seed(1, &[ONLINE, REPLAY]).remove(0);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = emu.ssm();
    session.apply(&mut cmd);
    cmd.args([id.as_str(), "--duration", "1", "--out"])
        .arg(out.path())
        .env_remove("FLAMEFIRE_PREFIX")
        .timeout(Duration::from_secs(120))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("AccessDenied"))
        .stderr(predicate::str::contains("s3:ListBucket"))
        .stderr(predicate::str::contains(&emu.bucket));
    assert!(emu.invocations_of(&id).is_empty(), "nothing was sent");
}

/// Blocker: "credentials that expire before the last upload get only a
/// warning." The session ends while the host records: its upload, signed
/// with that session, is refused by S3 with ExpiredToken, and the CLI's own
/// calls with ExpiredTokenException; the run does not succeed.
#[test]
fn session_credentials_that_expire_during_the_run_fail_the_upload() {
    require("curl");
    let emu = Emulator::new();
    let session = emu.oncall().clone();
    // InProgress until StartAt + Duration, then upload: the real script's timing.
    let id = emu
        .seed_replaying(1, &[("flamefire-test:replay-timing", "real")])
        .remove(0);
    let watcher = {
        let (document, session, id) = (emu.document.clone(), session.clone(), id.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                if invocations(&document)
                    .iter()
                    .any(|(i, status, _, _)| *i == id && status == "InProgress")
                {
                    session.expire_in(0.0);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        })
    };
    let out = tempfile::tempdir().unwrap();
    let assert = emu
        .ssm()
        .args([id.as_str(), "--duration", "3", "--timeout", "20", "--out"])
        .arg(out.path())
        .timeout(Duration::from_secs(120))
        .assert()
        .failure();
    assert!(
        watcher.join().unwrap(),
        "the invocation never went InProgress"
    );
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("ExpiredToken"), "{stderr}");
    // The host's upload, signed with the expired session, was refused too.
    let started = Instant::now();
    loop {
        let mine: Vec<_> = invocations(&emu.document)
            .into_iter()
            .filter(|(i, ..)| *i == id)
            .collect();
        if let Some((_, status, output, _)) = mine.first().filter(|(_, s, ..)| s != "InProgress") {
            assert_eq!(status, "Failed", "{output}");
            assert!(
                output.contains("ExpiredToken") || output.contains("HTTP 400"),
                "{output}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the invocation did not finish: {mine:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !out.path().join(format!("{id}.svg")).exists(),
        "nothing was rendered from an upload that S3 refused"
    );
}

/// The real upload URL: the host's own curl (the document's script) POSTs to
/// `https://BUCKET.s3.us-east-1.amazonaws.com/` with the on-call session's
/// token, through the emulator's HTTPS proxy and its test CA, and every
/// condition of the POST policy is verified on the way.
#[test]
fn the_host_uploads_to_the_virtual_hosted_https_url_as_the_oncall_role() {
    require("perf");
    require("curl");
    let emu = Emulator::new();
    let session = emu.oncall().clone();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let id = emu.seed(1, &[ONLINE, ("Name", "https-1")]).remove(0);
    let out = tempfile::tempdir().unwrap();
    emu.ssm()
        .env(flamefire::presign::UPLOAD_ENDPOINT_ENV, "aws")
        .args([id.as_str(), "--duration", "2", "--out"])
        .arg(out.path())
        .args(app.pid_args())
        .timeout(Duration::from_secs(180))
        .assert()
        .success();
    assert!(out.path().join(format!("{id}.svg")).is_file());
    let mine: Vec<_> = invocations(&emu.document)
        .into_iter()
        .filter(|(i, ..)| *i == id)
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        mine[0].3,
        format!("https://{}.s3.{REGION}.amazonaws.com/", emu.bucket),
        "the host was given S3's virtual-hosted URL"
    );
    // The upload check before recording, then both files, went up as POSTs
    // signed by the session, and none was refused.
    assert_eq!(
        calls_by(&session.access_key_id, "s3:PostObject"),
        (3, 0),
        "upload-check, stacks.gz and meta.json, uploaded with the session's key"
    );
}

/// Throttling (issue 11 §3): the on-call role's own calls are throttled by
/// the emulator (token buckets, SSM's ThrottlingException, S3's SlowDown,
/// EC2's RequestLimitExceeded); a small run still renders every host, sends
/// each host exactly one command, and the throttling really happened.
#[test]
fn a_throttled_run_renders_every_host_without_duplicate_commands() {
    require("curl");
    let emu = Emulator::new();
    let session = emu.oncall().clone();
    let ids = emu.seed_replaying(3, &[]);
    // S3 allows thousands of uploads a second per prefix: throttle the
    // CLI's downloads, not the hosts' POSTs.
    let limits = "ssm:*=2/2,ec2:*=1/1,s3:GetObject=2/2";
    emulator_admin_throttle(&session.access_key_id, limits);
    let out = tempfile::tempdir().unwrap();
    let result = emu
        .ssm()
        .args(&ids)
        .args(["--duration", "1", "--out"])
        .arg(out.path())
        .timeout(Duration::from_secs(180))
        .assert();
    let throttled: serde_json::Value = serde_json::from_str(&emulator_http(
        "GET",
        &format!(
            "/_flamefire/throttle?access_key_id={}",
            session.access_key_id
        ),
        None,
    ))
    .unwrap();
    result.success();
    for id in &ids {
        assert!(out.path().join(format!("{id}.svg")).is_file(), "{id}");
        assert_eq!(emu.invocations_of(id).len(), 1, "one command for {id}");
    }
    let total: u64 = throttled["throttled"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(total > 0, "nothing was throttled at {limits}: {throttled}");
}

fn emulator_admin_throttle(key: &str, limits: &str) {
    crate::support::emulator_admin(
        "POST",
        "throttle",
        &serde_json::json!({"limits": limits, "access_key_id": key}),
    );
}

/// Blocker: "The Rust SDK cannot assume the MFA-protected role that the
/// Terraform module creates by default": aws-config ignores the profile's
/// `mfa_serial` (awslabs/aws-sdk-rust#527), so its AssumeRole carries no
/// MFA and the trust policy's `aws:MultiFactorAuthPresent` condition refuses
/// it. The profile is the one the module's README documents for on-call.
#[test]
fn a_profile_with_mfa_serial_cannot_assume_the_oncall_role_without_the_code() {
    use crate::support::{MFA_CODE, access_key_id, emulator_admin, unique};
    require("curl");
    let emu = Emulator::new();
    let engineer = unique("engineer");
    let (key, secret) = (access_key_id(), format!("secret-of-{engineer}"));
    let user_arn = format!("arn:aws:iam::{ACCOUNT}:user/{engineer}");
    let serial = format!("arn:aws:iam::{ACCOUNT}:mfa/{engineer}");
    emulator_admin(
        "POST",
        "iam",
        &serde_json::json!({
            "access_key_id": key, "secret_access_key": secret, "principal": user_arn,
            "mfa_serial": serial, "mfa_code": MFA_CODE,
        }),
    );
    let role = emulator_admin(
        "POST",
        "roles",
        &serde_json::json!({"terraform": {
            "role_name": unique("oncall"), "bucket": emu.bucket, "document_name": emu.document,
            "region": REGION, "account_id": ACCOUNT, "trusted_principal_arns": [user_arn],
        }}),
    );
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    let credentials = home.path().join("credentials");
    std::fs::write(
        &config,
        format!(
            "[profile flamefire]\nrole_arn = {}\nsource_profile = engineer\nmfa_serial = {serial}\nregion = {REGION}\n",
            role["role_arn"].as_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::write(
        &credentials,
        format!("[engineer]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    flamefire()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .args(["doctor", "--profile", "flamefire", "--bucket", &emu.bucket])
        .args(["--document", &emu.document])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("✖ credentials"));
    // Every AssumeRole the engineer's key made (none, once flamefire refuses
    // to call without a code) was refused: none reached the role without MFA.
    let (calls, errors) = calls_by(&key, "sts:AssumeRole");
    assert_eq!(calls, errors, "an AssumeRole without MFA was allowed");
}
