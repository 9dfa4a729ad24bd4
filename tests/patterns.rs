//! The document's `allowedPattern`s under the SSM agent's own engine.
//!
//! Regression (issue 16): the real agent compiles every `allowedPattern`
//! with Go's `regexp` before it runs anything
//! (`allowedregexparamvalidator.go`, `regexp.Compile`), and Go's regexp
//! follows RE2, which refuses a repeat count over 1000. `{1,8192}` and
//! `{16,4096}` compiled under Python's and Rust's engines, so every test
//! passed, and every real agent refused the whole command. These tests run
//! Go's `regexp` itself (`tests/re2/check.go`, through `go run`, offline) on
//! every pattern, every default, every value the CLI can send, and the
//! hostile corpus.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use flamefire::document::{self, Pids, RecordParams, UploadFields};
use flamefire::presign::{self, PostRequest};
use serde_json::{Value, json};

use crate::support::repo;

/// One pattern and the values it must accept, checked by Go's regexp.
struct Check {
    name: String,
    pattern: String,
    values: Vec<String>,
}

/// What Go's regexp said of one check.
struct Verdict {
    compile_error: String,
    unmatched: Vec<String>,
}

/// Runs `tests/re2/check.go` on `checks`: `go run`, no toolchain download,
/// no module proxy, a throwaway HOME (its build cache).
fn go_regexp(checks: &[Check]) -> Vec<Verdict> {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`go` is missing: run scripts/test.sh (scripts/bootstrap.sh installs Debian's golang-go, whose regexp is the SSM agent's pattern engine)"
    );
    let home = tempfile::tempdir().expect("temp dir");
    let input: Vec<Value> = checks
        .iter()
        .map(|c| json!({"name": c.name, "pattern": c.pattern, "values": c.values}))
        .collect();
    let mut child = Command::new("go")
        .arg("run")
        .arg(repo().join("tests/re2/check.go"))
        .env("HOME", home.path())
        .env("GOCACHE", home.path().join("cache"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GO111MODULE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("go run starts");
    let body = serde_json::to_vec(&input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().expect("go run finishes");
    writer.join().unwrap().expect("go run reads its input");
    assert!(
        out.status.success(),
        "go run tests/re2/check.go failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Value> = serde_json::from_slice(&out.stdout).expect("check.go prints JSON");
    assert_eq!(verdicts.len(), checks.len(), "one verdict per check");
    verdicts
        .iter()
        .zip(checks)
        .map(|(v, c)| {
            assert_eq!(v["name"], c.name.as_str(), "verdicts in order");
            Verdict {
                compile_error: v["compile_error"].as_str().unwrap().to_string(),
                unmatched: v["unmatched"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect(),
            }
        })
        .collect()
}

/// The longest value each parameter's pattern and maxChars accept (shared
/// with the 64 KB test in `account.rs`).
pub fn worst_case_parameters() -> Vec<(&'static str, String)> {
    let pids = vec!["1999999999"; 64].join(",");
    let prefix = format!("{}/", "a".repeat(63)).repeat(8);
    let bucket = format!("a{}a", "-".repeat(61));
    let region = "a".repeat(30);
    vec![
        ("Duration", "300".to_string()),
        ("Frequency", "999".to_string()),
        ("Pids", pids),
        ("ProcessName", "a".repeat(64)),
        ("StartAt", "1999999999".to_string()),
        ("RunId", "a".repeat(64)),
        (
            "UploadUrl",
            format!("https://{bucket}.s3.{region}.amazonaws.com.cn/"),
        ),
        ("UploadKeyPrefix", prefix),
        ("UploadPolicy", format!("{}==", "A".repeat(8192))),
        (
            "UploadCredential",
            format!("{}/20261201/{region}/s3/aws4_request", "A".repeat(128)),
        ),
        ("UploadDate", "20261201T000000Z".to_string()),
        ("UploadSignature", "a".repeat(64)),
        ("UploadSecurityToken", "A".repeat(4096)),
        ("NoInstall", "false".to_string()),
        ("Probe", "false".to_string()),
    ]
}

/// Parameter sets the CLI really sends: `RecordParams::to_parameters` over
/// local mode and presigned POSTs signed by `presign::sign` for
/// virtual-host, path-style (dotted bucket), China and emulator URLs, with
/// and without a session token.
fn cli_parameter_sets() -> Vec<std::collections::BTreeMap<&'static str, String>> {
    // A real STS session token is ~1,000 base64 characters with `+`, `/`, `=`.
    let token = format!("IQoJb3JpZ2luX2VjE+/{}==", "AbCd0123+/".repeat(90));
    let mut sets = Vec::new();
    let base = RecordParams {
        duration_s: 30,
        frequency_hz: 99,
        pids: Pids::All,
        process_name: "node".into(),
        start_at: 0,
        run_id: flamefire::cli::new_run_id(SystemTime::now()),
        upload: None,
        no_install: false,
        probe: false,
    };
    sets.push(base.to_parameters());
    sets.push(
        RecordParams {
            duration_s: 300,
            frequency_hz: 999,
            pids: Pids::Listed((1..=64).map(|i| u32::MAX - i).collect()),
            process_name: "my_app-v2.1+x".into(),
            start_at: 1_796_000_000,
            no_install: true,
            probe: false,
            ..base.clone()
        }
        .to_parameters(),
    );
    let endpoints: [(&str, &str, Option<&str>); 4] = [
        ("flamefire-123456789012-us-east-1", "us-east-1", None),
        ("my.dotted.bucket", "eu-west-1", None),
        ("flamefire-cn", "cn-north-1", None),
        ("flamefire-test", "us-east-1", Some("http://127.0.0.1:5055")),
    ];
    for (bucket, region, endpoint) in endpoints {
        for session_token in [None, Some(token.as_str())] {
            let key_prefix = format!("flamefire/{}/", base.run_id);
            let signed = presign::sign(&PostRequest {
                bucket,
                region,
                conditions: presign::run_conditions(bucket, &key_prefix, 1 << 30),
                now: SystemTime::now(),
                expires_in: Duration::from_secs(3600),
                access_key_id: "ASIAIOSFODNN7EXAMPLE",
                secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                session_token,
            });
            let url = presign::post_url(bucket, region, endpoint)
                .unwrap_or_else(|e| panic!("post_url({bucket}, {region}): {e}"));
            let upload = UploadFields {
                url,
                key_prefix,
                policy: signed.policy,
                credential: signed.credential,
                date: signed.date,
                signature: signed.signature,
                security_token: signed.security_token,
            };
            sets.push(
                RecordParams {
                    upload: Some(upload),
                    start_at: 1_796_000_000,
                    ..base.clone()
                }
                .to_parameters(),
            );
        }
    }
    sets
}

#[test]
fn every_pattern_compiles_under_go_regexp_and_accepts_every_value_the_cli_sends() {
    let doc = document::embedded().unwrap();
    let sets = cli_parameter_sets();
    let worst = worst_case_parameters();
    let mut checks: Vec<Check> = doc
        .parameters
        .iter()
        .map(|(name, p)| {
            let mut values = vec![p.default.clone()];
            values.extend(sets.iter().filter_map(|s| s.get(name.as_str()).cloned()));
            values.extend(
                worst
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.clone()),
            );
            assert!(values.len() > sets.len(), "{name}: every set has a value");
            // Our own check of the same values (pattern and maxChars), so
            // that the CLI never sends what the agent would refuse.
            for v in &values {
                doc.check(name, v, name)
                    .unwrap_or_else(|e| panic!("the CLI's own check refuses {name}: {e}"));
            }
            Check {
                name: name.clone(),
                pattern: p.pattern_text.clone(),
                values,
            }
        })
        .collect();
    // The canary: the old UploadPolicy pattern, which the real agent refused.
    // If Go's regexp ever stopped refusing it, this test could not fail.
    checks.push(Check {
        name: "canary".into(),
        pattern: "^(|[A-Za-z0-9+/]{1,8192}={0,2})$".into(),
        values: vec![],
    });
    let verdicts = go_regexp(&checks);
    let (canary, verdicts) = verdicts.split_last().unwrap();
    assert!(
        canary.compile_error.contains("invalid repeat count"),
        "Go's regexp must refuse {{1,8192}}, as the agent did: {:?}",
        canary.compile_error
    );
    for (check, verdict) in checks.iter().zip(verdicts) {
        assert!(
            verdict.compile_error.is_empty(),
            "parameter {}: the SSM agent (Go's regexp) refuses allowedPattern {}: {}",
            check.name,
            check.pattern,
            verdict.compile_error
        );
        let shown: Vec<String> = verdict
            .unmatched
            .iter()
            .map(|v| v.chars().take(80).collect())
            .collect();
        assert!(
            shown.is_empty(),
            "parameter {}: Go's regexp does not match {} value(s) the CLI sends: {shown:?}",
            check.name,
            shown.len()
        );
    }
}

#[test]
fn go_regexp_refuses_every_hostile_value_that_the_document_refuses() {
    let doc = document::embedded().unwrap();
    let hostile: Vec<String> = crate::security::corpus()
        .into_iter()
        .filter_map(|v| String::from_utf8(v).ok())
        .collect();
    let checks: Vec<Check> = doc
        .parameters
        .iter()
        .map(|(name, p)| Check {
            name: name.clone(),
            pattern: p.pattern_text.clone(),
            values: hostile.clone(),
        })
        .collect();
    let verdicts = go_regexp(&checks);
    for (check, verdict) in checks.iter().zip(&verdicts) {
        assert!(
            verdict.compile_error.is_empty(),
            "{}",
            verdict.compile_error
        );
        let max = doc.parameters[&check.name].max_chars;
        for value in &hostile {
            let matched = !verdict.unmatched.contains(value);
            let too_long = max.is_some_and(|m| value.chars().count() > m);
            assert!(
                !matched || too_long,
                "parameter {}: the agent's engine accepts hostile {:?} and no maxChars bounds it",
                check.name,
                value.chars().take(80).collect::<String>()
            );
        }
    }
}

/// The script keeps the document's maxChars itself (an old agent, or a
/// caller that bypasses the agent's check, must not get further): its
/// `param_max_len` table is the document's maxChars, no more, no less.
#[test]
fn the_scripts_length_bounds_are_the_documents_maxchars() {
    let doc = document::embedded().unwrap();
    let script = std::fs::read_to_string(repo().join("ssm-documents/flamefire-record.sh")).unwrap();
    let body = script
        .split_once("param_max_len() {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .expect("the script defines param_max_len")
        .0;
    let in_script: std::collections::BTreeMap<String, usize> = body
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(") REPLY=")?;
            let n = rest.split(' ').next()?.parse().ok()?;
            (name != "*").then(|| (name.to_string(), n))
        })
        .collect();
    let in_document: std::collections::BTreeMap<String, usize> = doc
        .parameters
        .iter()
        .filter_map(|(name, p)| Some((name.clone(), p.max_chars?)))
        .collect();
    assert_eq!(in_script, in_document, "param_max_len against maxChars");
    assert_eq!(in_document.len(), 2, "UploadPolicy and UploadSecurityToken");
}
