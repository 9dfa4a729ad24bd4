//! `flamefire doctor`: the pre-flight checklist.
//!
//! Input: the same bucket, document and targets an `ssm` run would use.
//! Output: one `Check` per item (✔, ! or ✖ with the next step) and an exit
//! code: 0 all good, 1 warnings, 2 a blocking problem. Without `--probe` it
//! sends no command; its one write is a small probe object,
//! `<prefix>.flamefire-doctor`, made the way a run writes its record, so
//! that a prefix the role may not write, a bucket policy or a KMS key that
//! refuses shows here. That speaks for this laptop only: `--probe` asks the
//! hosts themselves (`probe`).

mod probe;
pub use probe::ProbePlan;

use std::time::Duration;

use crate::aws::Aws;
use crate::document;
use crate::error::exit;
use crate::model::Host;
use crate::model::Target;
use crate::presign;
use crate::progress::Progress;
use crate::targets;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    pub what: String,
    pub detail: String,
    pub next: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            level: Level::Ok,
            what: what.into(),
            detail: detail.into(),
            next: None,
        }
    }

    /// A blocking check from a flamefire error: its first line, and its next step.
    fn failed(what: &str, e: &crate::error::Error) -> Check {
        let text = e.to_string();
        Check::bad(Level::Fail, what, first_line(&text), next_of(&text))
    }

    fn bad(
        level: Level,
        what: impl Into<String>,
        detail: impl Into<String>,
        next: impl Into<String>,
    ) -> Check {
        Check {
            level,
            what: what.into(),
            detail: detail.into(),
            next: Some(next.into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DoctorPlan {
    pub bucket: Option<String>,
    /// The runs' key prefix: the bucket check lists under it, as a run does.
    pub prefix: String,
    pub document: String,
    pub target: Option<Target>,
    pub opt_in: targets::OptIn,
    /// `--probe`: also send the document in probe mode to the targets.
    pub probe: Option<ProbePlan>,
}

/// Runs every check; later checks still run when earlier ones fail, so one
/// `doctor` shows everything that needs fixing.
pub async fn run(aws: &Aws, plan: &DoctorPlan, progress: &Progress) -> Vec<Check> {
    let mut checks = vec![Check::ok("region", aws.region())];
    match aws.caller_identity().await {
        Ok((account, arn)) => checks.push(Check::ok(
            "credentials",
            format!("{arn} (account {account})"),
        )),
        Err(e) => checks.push(Check::bad(
            Level::Fail,
            "credentials",
            first_line(&e.to_string()),
            "log in (e.g. `aws sso login`) or pass --profile",
        )),
    }
    checks.push(expiry_check(aws));
    let mut s3 = None;
    match &plan.bucket {
        None => checks.push(Check::bad(
            Level::Fail,
            "bucket",
            "no bucket given",
            "pass --bucket or set FLAMEFIRE_BUCKET (terraform output `bucket_name`)",
        )),
        Some(b) => {
            let client = s3.insert(aws.for_bucket(b, &plan.prefix).await);
            match client.check_bucket(b, &plan.prefix).await {
                Ok(()) => checks.push(Check::ok(
                    "bucket",
                    format!("s3://{b} is reachable (region {})", client.s3_region()),
                )),
                Err(e) => checks.push(Check::failed("bucket", &e)),
            }
            let key = format!("{}.flamefire-doctor", plan.prefix);
            let probe = b"written by flamefire doctor to check that runs can be stored\n".to_vec();
            match client.put_run_record(b, &key, probe).await {
                Ok(()) => checks.push(Check::ok(
                    "prefix",
                    format!("s3://{b}/{} is writable", plan.prefix),
                )),
                Err(e) => checks.push(Check::failed("prefix", &e)),
            }
        }
    }
    checks.push(document_check(aws, &plan.document).await);
    let mut hosts = Vec::new();
    if let Some(target) = &plan.target {
        let (found, target_checks) = target_checks(aws, target, &plan.opt_in).await;
        hosts = found;
        checks.extend(target_checks);
    }
    if let Some(probe) = &plan.probe {
        match (&plan.bucket, &s3) {
            (Some(bucket), Some(s3)) if !hosts.is_empty() => {
                let to = probe::ProbeTarget {
                    ssm: aws,
                    s3,
                    bucket,
                    prefix: &plan.prefix,
                    document: &plan.document,
                };
                checks.extend(probe::hosts(&to, probe, &hosts, progress).await);
            }
            _ => checks.push(Check::bad(
                Level::Fail,
                "probe",
                "--probe needs a bucket and at least one host that a run would record",
                "fix the checks above, then probe again",
            )),
        }
    }
    checks
}

/// Recording 30 s, the default --timeout of 300 s, and the start delay:
/// what a default `flamefire ssm` needs its credentials to outlive.
const DEFAULT_RUN: Duration = Duration::from_secs(30 + 300 + 10);

/// Whether the session outlives a default run (S3 refuses uploads signed
/// with an expired session, whatever the POST policy says).
fn expiry_check(aws: &Aws) -> Check {
    let creds = aws.signing_credentials();
    let Some(expires) = creds.expires else {
        return Check::ok("session", "long-term credentials (no expiry)");
    };
    let now = aws.now();
    match presign::check_expiry(expires, now, DEFAULT_RUN, Duration::from_secs(300)) {
        Ok(()) => {
            let left = expires.duration_since(now).unwrap_or_default().as_secs();
            Check::ok(
                "session",
                format!("expires in {} min, after a default run", left / 60),
            )
        }
        Err(e) => Check::failed("session", &e),
    }
}

/// The checklist when not even the credentials could be loaded.
pub fn no_credentials(e: &crate::error::Error) -> Vec<Check> {
    vec![Check::failed("credentials", e)]
}

async fn document_check(aws: &Aws, name: &str) -> Check {
    match aws.get_document(name).await {
        Ok(None) => Check::bad(
            Level::Fail,
            "document",
            format!("{name} does not exist in {}", aws.region()),
            format!(
                "run `flamefire document deploy --document {name}` or `terraform apply` in terraform/"
            ),
        ),
        Ok(Some(doc)) if document::same_content(&doc.content, document::YAML) => Check::ok(
            "document",
            format!(
                "{name} (version {}) matches this flamefire",
                doc.default_version.as_deref().unwrap_or("?")
            ),
        ),
        Ok(Some(_)) => Check::bad(
            Level::Warn,
            "document",
            format!("{name} differs from the one embedded in this flamefire (drift)"),
            format!(
                "update it: `flamefire document deploy --document {name}`, or `terraform apply` with this repository's ssm-documents/"
            ),
        ),
        Err(e) => Check::failed("document", &e),
    }
}

/// One check per host of the target, and the hosts a run would record.
async fn target_checks(
    aws: &Aws,
    target: &Target,
    opt_in: &targets::OptIn,
) -> (Vec<Host>, Vec<Check>) {
    let (ec2, managed) = match targets::survey(aws, target).await {
        Ok(facts) => facts,
        Err(e) => return (Vec::new(), vec![Check::failed("targets", &e)]),
    };
    let resolved = targets::classify(target, &ec2, &managed, opt_in);
    let mut checks = Vec::new();
    if resolved.hosts.is_empty() && resolved.skipped.is_empty() {
        checks.push(Check::bad(
            Level::Fail,
            "targets",
            format!("no instance matches {target} in {}", aws.region()),
            "check the ids, the tag's spelling and --region",
        ));
    }
    for host in &resolved.hosts {
        let version = managed
            .iter()
            .find(|m| m.id == host.id)
            .and_then(|m| m.agent_version.clone())
            .unwrap_or_default();
        checks.push(Check::ok(
            host.label(),
            format!("managed, online, Linux, agent {version}"),
        ));
    }
    for s in &resolved.skipped {
        checks.push(Check::bad(
            Level::Fail,
            s.host.label(),
            s.reason.to_string(),
            s.reason.next_step(),
        ));
    }
    (resolved.hosts, checks)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// The `next step:` part of a flamefire error message, if it has one.
fn next_of(s: &str) -> String {
    s.lines()
        .find_map(|l| l.trim().strip_prefix("next step: "))
        .unwrap_or("rerun with -vv to see the request")
        .to_string()
}

/// ✔ / ! / ✖ lines for the terminal.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let mark = match c.level {
            Level::Ok => "✔",
            Level::Warn => "!",
            Level::Fail => "✖",
        };
        out.push_str(&format!("{mark} {:<28} {}\n", c.what, c.detail));
        if let Some(n) = &c.next {
            out.push_str(&format!("  {:<28} next step: {n}\n", ""));
        }
    }
    out
}

pub fn exit_code(checks: &[Check]) -> u8 {
    match checks.iter().map(|c| c.level).max() {
        Some(Level::Fail) => exit::NOTHING,
        Some(Level::Warn) => exit::PARTIAL,
        _ => exit::OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_the_worst_level() {
        let ok = Check::ok("a", "b");
        let warn = Check::bad(Level::Warn, "a", "b", "c");
        let fail = Check::bad(Level::Fail, "a", "b", "c");
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
        assert_eq!(exit_code(&[ok.clone(), warn.clone()]), 1);
        assert_eq!(exit_code(&[warn, fail, ok]), 2);
    }
}
