//! The on-call role's policy, enforced: `terraform/policies/oncall-policy.json.tftpl`
//! rendered as the Terraform module does (its templates and defaults, through
//! the emulator's `POST /_flamefire/render`) and registered in the emulator for
//! a fresh access key and its secret (tests/emulator/README.md, "IAM,
//! credentials and STS"), then exercised with the real binary and the real
//! SDK signing with that key.
//!
//! The emulator evaluates the policy on every request that key signs,
//! including the hosts' presigned POST uploads; for SendCommand, the
//! document ARN and every instance ARN with its `ssm:resourceTag/flamefire`
//! condition. Every denial is paired with the same call allowed, so a denial
//! cannot come from anything but the policy. `tests/strict.rs` runs the same
//! policy as an assumed role with session credentials.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::process::Command;
use std::time::Duration;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use predicates::prelude::*;

use crate::support::{Emulator, ONLINE, emulator_admin, endpoint, flamefire, require, unique};

pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// The identity the emulator names in AccessDenied messages.
const ROLE: &str = "flamefire-oncall";
const OPTED_IN: (&str, &str) = ("flamefire", "enabled");
/// Nothing runs on this machine: the stand-in uploads a stored capture.
/// Nothing is even delivered: for calls whose outcome is only "sent or not".
const UNDELIVERABLE: (&str, &str) = ("flamefire-test:behaviour", "undeliverable");

/// `AKIA` + 16 random uppercase letters and digits: moto accepts any key, and
/// a fresh one keeps this test's policy and request counts its own.
pub fn fresh_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let seed = RandomState::new();
    let mut key = String::from("AKIA");
    for i in 0..16u64 {
        key.push(ALPHABET[(seed.hash_one(i) % ALPHABET.len() as u64) as usize] as char);
    }
    key
}

/// The on-call policy as the Terraform module renders it (its own templates
/// and defaults, through the emulator's `POST /_flamefire/render`, which runs
/// `terraform/test/render_policies.py`), for this test's document and bucket.
pub fn oncall_policy(emu: &Emulator) -> serde_json::Value {
    let rendered = emulator_admin(
        "POST",
        "render",
        &serde_json::json!({
            "bucket": emu.bucket, "document_name": emu.document,
            "region": REGION, "account_id": ACCOUNT,
        }),
    );
    let policy = rendered["policy"].clone();
    let text = policy.to_string();
    assert!(
        text.contains(&format!("ssm:resourceTag/{}", OPTED_IN.0)) && text.contains(OPTED_IN.1),
        "the module's default opt-in tag is no longer {OPTED_IN:?}: update this test\n{text}"
    );
    policy
}

/// One admin call to the emulator: (HTTP status, body).
pub fn admin(method: &str, path: &str, body: Option<&serde_json::Value>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "60",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .arg(format!("{}/_flamefire/{path}", endpoint()));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    let out = cmd.output().expect("curl runs");
    assert!(
        out.status.success(),
        "the emulator at {} does not answer: start it with tests/emulator/start.sh: {}",
        endpoint(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').expect("curl wrote the status");
    (status.parse().expect("an HTTP status"), body.to_string())
}

/// A policy registered for one access key; forgotten again on drop.
pub struct Registered {
    key: String,
}

impl Registered {
    pub fn new(key: &str, policy: &serde_json::Value) -> Registered {
        let body = serde_json::json!({
            "access_key_id": key,
            "secret_access_key": SECRET,
            "policy": policy,
            "principal": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{}", unique("iam-test")),
        });
        let (status, reply) = admin("POST", "iam", Some(&body));
        assert_ne!(
            status, 404,
            "this emulator predates POST /_flamefire/iam: restart it (tests/emulator/stop.sh, then tests/emulator/start.sh)"
        );
        assert_eq!(status, 200, "the emulator refused the policy: {reply}");
        Registered {
            key: key.to_string(),
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        admin("DELETE", &format!("iam?access_key_id={}", self.key), None);
    }
}

/// Requests the emulator counted for this key: operation → (calls, errors).
pub fn calls_by(key: &str, operation: &str) -> (u64, u64) {
    let (_, body) = admin("GET", &format!("stats?access_key_id={key}"), None);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    (
        stats["operations"][operation].as_u64().unwrap_or(0),
        stats["errors"][operation].as_u64().unwrap_or(0),
    )
}

/// `flamefire ssm` with this emulator's bucket, signing with `key`; results
/// go to a temporary directory (kept alive by the caller's `out`).
fn ssm_as(
    emu: &Emulator,
    key: &str,
    document: &str,
    out: &tempfile::TempDir,
) -> assert_cmd::Command {
    let mut cmd = flamefire();
    cmd.args(["ssm", "--bucket", &emu.bucket, "--document", document])
        .arg("--out")
        .arg(out.path())
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .timeout(Duration::from_secs(180));
    cmd
}

/// The real SDK signing with `key`, pointed at the emulator.
async fn ssm_client(key: &str) -> aws_sdk_ssm::Client {
    let credentials =
        aws_credential_types::Credentials::new(key, SECRET, None, None, "flamefire-iam-test");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint())
        .credentials_provider(credentials)
        .load()
        .await;
    aws_sdk_ssm::Client::new(&config)
}

/// SendCommand of `document` to `instance`: Ok(command id) or Err((code, message)).
async fn send(
    client: &aws_sdk_ssm::Client,
    document: &str,
    instance: &str,
    parameters: &[(&str, &str)],
) -> Result<String, (String, String)> {
    let mut request = client
        .send_command()
        .document_name(document)
        .instance_ids(instance);
    for (name, value) in parameters {
        request = request.parameters(*name, vec![value.to_string()]);
    }
    match request.send().await {
        Ok(out) => Ok(out.command().unwrap().command_id().unwrap().to_string()),
        Err(e) => {
            let e = e.into_service_error();
            Err((
                e.code().unwrap_or("?").to_string(),
                e.message().unwrap_or_default().to_string(),
            ))
        }
    }
}

#[test]
fn the_oncall_role_profiles_an_opted_in_instance() {
    require("curl");
    let emu = Emulator::new();
    let key = fresh_access_key();
    let _policy = Registered::new(&key, &oncall_policy(&emu));
    let id = &emu.seed_replaying(1, &[OPTED_IN])[0];
    let out = tempfile::tempdir().unwrap();
    ssm_as(&emu, &key, &emu.document, &out)
        .args([id.as_str(), "--duration", "1"])
        .assert()
        .success();
    assert!(out.path().join(format!("{id}.svg")).is_file());
    // The policy was consulted: the SendCommand was signed with its key.
    assert_eq!(calls_by(&key, "ssm:SendCommand"), (1, 0));
    // And the run made no request the role is refused (issue 17 §7): each
    // refusal is an AccessDenied in the account's CloudTrail, and a sign
    // that a fallback path (HeadBucket for the region, say) was taken.
    let (_, body) = admin("GET", &format!("stats?access_key_id={key}"), None);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(stats["total"].as_u64().unwrap_or(0) > 3, "{stats}");
    assert_eq!(
        stats["errors"],
        serde_json::json!({}),
        "requests refused during a run under the on-call role: {stats}"
    );
}

#[test]
fn the_oncall_role_may_not_profile_an_instance_without_the_opt_in_tag() {
    require("curl");
    let emu = Emulator::new();
    let key = fresh_access_key();
    let policy = Registered::new(&key, &oncall_policy(&emu));
    let id = &emu.seed_replaying(1, &[("flamefire", "disabled")])[0];
    let out = tempfile::tempdir().unwrap();
    ssm_as(&emu, &key, &emu.document, &out)
        .args([id.as_str(), "--duration", "1"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("AccessDeniedException"))
        .stderr(predicate::str::contains(format!("assumed-role/{ROLE}/")))
        .stderr(predicate::str::contains(format!(
            "on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}"
        )))
        .stderr(predicate::str::contains("on-call role"));
    assert!(emu.invocations_of(id).is_empty(), "nothing was sent");

    // The same run without the policy goes through: the denial was the policy's.
    drop(policy);
    ssm_as(&emu, &key, &emu.document, &out)
        .args([id.as_str(), "--duration", "1"])
        .assert()
        .success();
    assert_eq!(emu.invocations_of(id).len(), 1);
}

#[test]
fn the_oncall_role_may_not_send_aws_run_shell_script() {
    require("curl");
    let emu = Emulator::new();
    let key = fresh_access_key();
    let id = emu.seed(1, &[ONLINE, OPTED_IN, UNDELIVERABLE]).remove(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = ssm_client(&key).await;
        let commands = [("commands", "id")];

        // Without a policy for this key the call is not refused for access:
        // moto 5.x ships no AWS-owned documents, so the emulator says the
        // document does not exist, after authorization would have run.
        let unchecked = send(&client, "AWS-RunShellScript", &id, &commands).await;
        assert!(
            !matches!(&unchecked, Err((code, _)) if code == "AccessDeniedException"),
            "denied before any policy was registered: {unchecked:?}"
        );

        let _policy = Registered::new(&key, &oncall_policy(&emu));
        let (code, message) = send(&client, "AWS-RunShellScript", &id, &commands)
            .await
            .expect_err("the on-call policy must refuse AWS-RunShellScript");
        assert_eq!(code, "AccessDeniedException", "{message}");
        assert!(
            message.contains(&format!(
                "ssm:SendCommand on resource: arn:aws:ssm:{REGION}::document/AWS-RunShellScript"
            )),
            "{message}"
        );
        assert!(message.contains(ROLE), "{message}");

        // Same key, same opted-in instance, the role's own document: allowed.
        send(&client, &emu.document, &id, &[])
            .await
            .expect("the on-call policy allows its document on an opted-in instance");
    });

    // The CLI takes that document name too, and reports the refusal.
    let _policy = Registered::new(&key, &oncall_policy(&emu));
    let out = tempfile::tempdir().unwrap();
    ssm_as(&emu, &key, "AWS-RunShellScript", &out)
        .args([id.as_str(), "--duration", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("AccessDeniedException"))
        .stderr(predicate::str::contains("document/AWS-RunShellScript"));
}

#[test]
fn an_explicit_deny_beside_the_oncall_policy_wins() {
    require("curl");
    let emu = Emulator::new();
    let key = fresh_access_key();
    let env = unique("prod");
    let mut policy = oncall_policy(&emu);
    policy["Statement"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "Sid": "NeverProd",
            "Effect": "Deny",
            "Action": "ssm:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": env}},
        }));
    let _policy = Registered::new(&key, &policy);
    let prod = emu
        .seed(1, &[ONLINE, OPTED_IN, UNDELIVERABLE, ("Env", &env)])
        .remove(0);
    let staging = emu
        .seed(1, &[ONLINE, OPTED_IN, UNDELIVERABLE, ("Env", "staging")])
        .remove(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = ssm_client(&key).await;
        let (code, message) = send(&client, &emu.document, &prod, &[])
            .await
            .expect_err("the Deny statement must win over the Allow");
        assert_eq!(code, "AccessDeniedException", "{message}");
        assert!(message.contains("explicit deny"), "{message}");
        assert!(message.contains(&format!("instance/{prod}")), "{message}");
        send(&client, &emu.document, &staging, &[])
            .await
            .expect("the Deny applies to its tag only");
    });
}
