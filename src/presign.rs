//! The S3 presigned POST that hosts upload their stacks through.
//!
//! Input: the bucket, the run's key prefix, a clock and the caller's
//! credentials. Output: the POST URL and form fields (SigV4, `AWS4-HMAC-SHA256`).
//! One policy per run, limited to keys under `<prefix><run-id>/`, with a
//! `content-length-range` and an expiry of the recording plus a margin, so
//! instances need no S3 permission at all.
//!
//! The policy JSON is serialised exactly as botocore's `generate_presigned_post`
//! does (Python `json.dumps` defaults), so that `tests/data/presign/vectors.json`,
//! produced by botocore, pins it byte for byte. The HMAC chain is aws-sigv4's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use aws_smithy_types::base64;

use crate::time::{compact_utc, iso_utc};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// One element of the policy's `conditions` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `{"field": "value"}`
    Equals(String, String),
    /// `["starts-with", "$field", "prefix"]`
    StartsWith(String, String),
    /// `["content-length-range", min, max]`
    ContentLengthRange(u64, u64),
}

#[derive(Debug, Clone)]
pub struct PostRequest<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    /// Conditions in order; the signer appends the `x-amz-*` ones (botocore's order).
    pub conditions: Vec<Condition>,
    pub now: SystemTime,
    pub expires_in: Duration,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPost {
    pub credential: String,
    pub date: String,
    pub security_token: Option<String>,
    /// base64 of `policy_json`.
    pub policy: String,
    pub policy_json: String,
    pub signature: String,
}

/// The conditions flamefire signs for a run, in the order the botocore test
/// vectors pin: this bucket, keys under the run's prefix, a size range.
pub fn run_conditions(bucket: &str, key_prefix: &str, max_bytes: u64) -> Vec<Condition> {
    vec![
        Condition::Equals("bucket".into(), bucket.into()),
        Condition::StartsWith("$key".into(), key_prefix.into()),
        Condition::ContentLengthRange(1, max_bytes),
    ]
}

pub fn sign(req: &PostRequest<'_>) -> SignedPost {
    let now_s = req
        .now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let date = compact_utc(now_s);
    let credential = format!(
        "{}/{}/{}/s3/aws4_request",
        req.access_key_id,
        &date[..8],
        req.region
    );
    let mut conditions = req.conditions.clone();
    conditions.push(Condition::Equals(
        "x-amz-algorithm".into(),
        ALGORITHM.into(),
    ));
    conditions.push(Condition::Equals(
        "x-amz-credential".into(),
        credential.clone(),
    ));
    conditions.push(Condition::Equals("x-amz-date".into(), date.clone()));
    if let Some(token) = req.session_token {
        conditions.push(Condition::Equals(
            "x-amz-security-token".into(),
            token.into(),
        ));
    }
    let expiration = iso_utc(now_s + req.expires_in.as_secs());
    let policy_json = policy_json(&expiration, &conditions);
    let policy = base64::encode(policy_json.as_bytes());
    let key = generate_signing_key(req.secret_access_key, req.now, req.region, "s3");
    let signature = calculate_signature(key, policy.as_bytes());
    SignedPost {
        credential,
        date,
        security_token: req.session_token.map(str::to_string),
        policy,
        policy_json,
        signature,
    }
}

/// `json.dumps({"expiration": …, "conditions": […]})` with Python's defaults:
/// `", "` and `": "` separators, ASCII-only output.
fn policy_json(expiration: &str, conditions: &[Condition]) -> String {
    let items: Vec<String> = conditions
        .iter()
        .map(|c| match c {
            Condition::Equals(k, v) => format!("{{{}: {}}}", py_str(k), py_str(v)),
            Condition::StartsWith(k, v) => {
                format!("[\"starts-with\", {}, {}]", py_str(k), py_str(v))
            }
            Condition::ContentLengthRange(min, max) => {
                format!("[\"content-length-range\", {min}, {max}]")
            }
        })
        .collect();
    format!(
        "{{\"expiration\": {}, \"conditions\": [{}]}}",
        py_str(expiration),
        items.join(", ")
    )
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Names the S3 endpoint the hosts upload to, when it is not this machine's.
pub const UPLOAD_ENDPOINT_ENV: &str = "FLAMEFIRE_UPLOAD_ENDPOINT";

/// The endpoint the hosts upload to: by default the one this CLI uses
/// (`AWS_ENDPOINT_URL`, else S3 itself). `FLAMEFIRE_UPLOAD_ENDPOINT=aws` gives
/// the hosts S3's own virtual-hosted URL even when this CLI talks to another
/// endpoint: hosts that reach S3 by a route of their own, such as the
/// emulator's hosts, whose curl reaches `https://BUCKET.s3.REGION.amazonaws.com/`
/// through the emulator's HTTPS proxy (tests/emulator/README.md, "HTTPS").
pub fn hosts_endpoint(cli_endpoint: Option<&str>) -> crate::error::Result<Option<&str>> {
    choose_hosts_endpoint(
        cli_endpoint,
        std::env::var(UPLOAD_ENDPOINT_ENV).ok().as_deref(),
    )
}

fn choose_hosts_endpoint<'a>(
    cli_endpoint: Option<&'a str>,
    setting: Option<&str>,
) -> crate::error::Result<Option<&'a str>> {
    match setting {
        None => Ok(cli_endpoint),
        Some("aws") => Ok(None),
        Some(v) => Err(crate::error::Error::Usage(format!(
            "{UPLOAD_ENDPOINT_ENV}={v:?} is not supported: set it to `aws` (hosts upload to S3's own URL) or unset it"
        ))),
    }
}

/// The POST URL for a bucket in its region: aws-sdk-s3's endpoint rules
/// (see `aws::post_url`), or path style on a custom (emulator) endpoint.
pub fn post_url(
    bucket: &str,
    region: &str,
    endpoint: Option<&str>,
) -> crate::error::Result<String> {
    crate::aws::post_url(bucket, region, endpoint)
}

/// The presigned POST hosts upload through (the document's Upload*
/// parameters): keys under `key_prefix` of `bucket`, at most `max_bytes`
/// each, signed with `s3`'s credentials for the bucket's own region.
pub fn upload_fields(
    s3: &crate::aws::Aws,
    bucket: &str,
    key_prefix: String,
    max_bytes: u64,
    now: SystemTime,
    expires_in: Duration,
) -> crate::error::Result<crate::document::UploadFields> {
    let creds = s3.signing_credentials();
    let region = s3.s3_region();
    let signed = sign(&PostRequest {
        bucket,
        region,
        conditions: run_conditions(bucket, &key_prefix, max_bytes),
        now,
        expires_in,
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: creds.session_token.as_deref(),
    });
    Ok(crate::document::UploadFields {
        url: post_url(bucket, region, hosts_endpoint(s3.endpoint_url())?)?,
        key_prefix,
        policy: signed.policy,
        credential: signed.credential,
        date: signed.date,
        signature: signed.signature,
        security_token: signed.security_token,
    })
}

/// Pure: an error when credentials expiring at `expiry` cannot sign for a
/// run whose last upload is `last_upload` after `now`. S3 refuses a POST
/// signed with a session token that has expired, whatever the policy's own
/// expiration says.
pub fn check_expiry(
    expiry: SystemTime,
    now: SystemTime,
    last_upload: Duration,
    timeout: Duration,
) -> crate::error::Result<()> {
    let needed = now + last_upload;
    if expiry >= needed {
        return Ok(());
    }
    let epoch = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let short = needed.duration_since(expiry).unwrap_or_default().as_secs();
    let shorter = timeout.as_secs().checked_sub(short).filter(|t| *t >= 30);
    let shorten = match shorter {
        Some(t) => format!(", or shorten the run (e.g. --timeout {t})"),
        None => String::new(),
    };
    Err(crate::error::Error::CredentialsExpire {
        expires: iso_utc(epoch(expiry)),
        last_upload: iso_utc(epoch(needed)),
        next: format!(
            "log in again for a fresh session (`aws sso login`, `aws login`, or a new MFA code; flamefire's cached role session is in ~/.cache/flamefire/sts/){shorten}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_string_escaping() {
        assert_eq!(py_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(py_str("é"), r#""\u00e9""#);
        assert_eq!(py_str("😀"), r#""\ud83d\ude00""#);
    }

    #[test]
    fn hosts_get_the_cli_endpoint_unless_told_to_use_s3_itself() {
        let emu = Some("http://127.0.0.1:5055");
        assert_eq!(choose_hosts_endpoint(emu, None).unwrap(), emu);
        assert_eq!(choose_hosts_endpoint(emu, Some("aws")).unwrap(), None);
        assert_eq!(choose_hosts_endpoint(None, None).unwrap(), None);
        let err = choose_hosts_endpoint(emu, Some("http://x")).unwrap_err();
        assert!(err.to_string().contains(UPLOAD_ENDPOINT_ENV), "{err}");
    }

    #[test]
    fn signature_changes_with_every_input() {
        let base = PostRequest {
            bucket: "b",
            region: "eu-west-1",
            conditions: run_conditions("b", "flamefire/r/", 10),
            now: UNIX_EPOCH + Duration::from_secs(1_795_766_400),
            expires_in: Duration::from_secs(900),
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "secret",
            session_token: None,
        };
        let a = sign(&base);
        assert!(
            a.policy_json
                .contains("\"expiration\": \"2026-11-27T08:15:00Z\"")
        );
        assert_eq!(a.date, "20261127T080000Z");
        let b = sign(&PostRequest {
            secret_access_key: "other",
            ..base.clone()
        });
        assert_ne!(a.signature, b.signature);
        let c = sign(&PostRequest {
            session_token: Some("tok"),
            ..base
        });
        assert!(
            c.policy_json
                .ends_with("{\"x-amz-security-token\": \"tok\"}]}")
        );
    }

    #[test]
    fn credentials_must_outlive_the_last_upload() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_766_400);
        let run = Duration::from_secs(30 + 300 + 4);
        let timeout = Duration::from_secs(300);
        assert!(check_expiry(now + run, now, run, timeout).is_ok());
        let err = check_expiry(now + Duration::from_secs(200), now, run, timeout)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expire at 2026-11-27T08:03:20Z"), "{err}");
        assert!(err.contains("(2026-11-27T08:05:34Z)"), "{err}");
        assert!(err.contains("--timeout 166"), "{err}");
        // No shorter --timeout would do: only a new login.
        let err = check_expiry(now + Duration::from_secs(10), now, run, timeout)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("--timeout"), "{err}");
    }
}
