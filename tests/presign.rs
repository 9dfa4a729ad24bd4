//! The presigned POST matches botocore byte for byte.
//!
//! moto accepts POST uploads without checking signatures or conditions, so
//! it cannot prove the policy right. `tests/data/presign/vectors.json` was
//! produced by botocore's `generate_presigned_post` (s3v4) with fixed
//! credentials and clock (`generate_vectors.py` beside it); flamefire must
//! produce the identical policy text, base64 and signature.

use std::time::{Duration, UNIX_EPOCH};

use flamefire::presign::{self, Condition, PostRequest};
use serde_json::Value;

use crate::support::repo;

fn condition(v: &Value) -> Condition {
    match v {
        Value::Object(map) => {
            let (k, v) = map.iter().next().expect("one key");
            Condition::Equals(k.clone(), v.as_str().unwrap().to_string())
        }
        Value::Array(items) => match items[0].as_str().unwrap() {
            "starts-with" => Condition::StartsWith(
                items[1].as_str().unwrap().to_string(),
                items[2].as_str().unwrap().to_string(),
            ),
            "content-length-range" => Condition::ContentLengthRange(
                items[1].as_u64().unwrap(),
                items[2].as_u64().unwrap(),
            ),
            other => panic!("unknown condition {other}"),
        },
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn policy_and_signature_match_botocore_vectors() {
    let text = std::fs::read_to_string(repo().join("tests/data/presign/vectors.json")).unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 2, "with and without a session token");
    let mut with_token = false;
    for case in cases {
        let input = &case["input"];
        let output = &case["output"];
        let name = case["name"].as_str().unwrap();
        let time = input["time"].as_str().unwrap();
        assert_eq!(time, "2026-11-27T08:00:00Z", "{name}: the vectors' clock");
        let token = input["session_token"].as_str();
        with_token |= token.is_some();
        let mut conditions: Vec<Condition> = input["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(condition)
            .collect();
        if name.starts_with("c_client") {
            // botocore's client-level API appends these after the caller's.
            conditions.push(Condition::Equals(
                "bucket".into(),
                input["bucket"].as_str().unwrap().into(),
            ));
            conditions.push(Condition::StartsWith(
                "$key".into(),
                input["key_prefix"].as_str().unwrap().into(),
            ));
        }
        let signed = presign::sign(&PostRequest {
            bucket: input["bucket"].as_str().unwrap(),
            region: input["region"].as_str().unwrap(),
            conditions,
            now: UNIX_EPOCH + Duration::from_secs(1_795_766_400),
            expires_in: Duration::from_secs(input["expires_in"].as_u64().unwrap()),
            access_key_id: input["access_key_id"].as_str().unwrap(),
            secret_access_key: input["secret_access_key"].as_str().unwrap(),
            session_token: token,
        });
        let fields = &output["fields"];
        assert_eq!(
            signed.policy_json,
            output["policy_json"].as_str().unwrap(),
            "{name}: policy text"
        );
        assert_eq!(
            signed.policy,
            fields["policy"].as_str().unwrap(),
            "{name}: policy base64"
        );
        assert_eq!(
            signed.signature,
            fields["x-amz-signature"].as_str().unwrap(),
            "{name}: signature"
        );
        assert_eq!(
            signed.credential,
            fields["x-amz-credential"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            signed.date,
            fields["x-amz-date"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            signed.security_token.as_deref(),
            fields["x-amz-security-token"].as_str(),
            "{name}"
        );
    }
    assert!(with_token, "a vector with a session token is pinned");
}

#[test]
fn the_conditions_flamefire_signs_are_the_pinned_ones() {
    let text = std::fs::read_to_string(repo().join("tests/data/presign/vectors.json")).unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let input = &vectors["cases"][0]["input"];
    let pinned: Vec<Condition> = input["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(condition)
        .collect();
    assert_eq!(
        presign::run_conditions("flamefire-test", "flamefire/RUN1/", 536_870_912),
        pinned
    );
    assert_eq!(
        presign::post_url("flamefire-test", "eu-west-1", None).unwrap(),
        vectors["cases"][0]["output"]["url"].as_str().unwrap()
    );
}
