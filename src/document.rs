//! The SSM document embedded at build time, and the parameters sent to it.
//!
//! Input: `ssm-documents/flamefire-record.yaml` (the single source of truth for
//! the host side). Output: the script text, each parameter's `allowedPattern`,
//! and `RecordParams` turned into the `SSM_*` name/value pairs that both the
//! SSM agent and `flamefire local` hand to the script. This module never runs
//! anything; it only parses and validates, so the CLI can reject a value
//! before any process or AWS call starts.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The document text, byte for byte as deployed by Terraform and `document deploy`.
pub const YAML: &str = include_str!("../ssm-documents/flamefire-record.yaml");

/// Name the document is deployed under unless `--document` says otherwise.
pub const DEFAULT_NAME: &str = "flamefire-record";

#[derive(Debug)]
pub struct Document {
    pub parameters: BTreeMap<String, Parameter>,
    /// The `runCommand` lines joined with newlines: what the agent writes to `_script.sh`.
    pub script: String,
    pub timeout_seconds: u64,
}

#[derive(Debug)]
pub struct Parameter {
    pub default: String,
    pub pattern: Regex,
    pub pattern_text: String,
    /// `maxChars`: the bound of a pattern that RE2 cannot bound itself (it
    /// refuses a repeat count over 1000). The SSM service checks it at
    /// SendCommand; the agent does not for Run Command (its
    /// `parameterstore.go` runs the min/max validators only for
    /// `aws:runDocument`), so the script checks it again.
    pub max_chars: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    schema_version: String,
    parameters: BTreeMap<String, RawParameter>,
    main_steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParameter {
    #[serde(default)]
    default: Option<String>,
    allowed_pattern: Option<String>,
    #[serde(default)]
    max_chars: Option<usize>,
    interpolation_type: Option<String>,
}

#[derive(Deserialize)]
struct RawStep {
    action: String,
    inputs: RawInputs,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInputs {
    run_command: Vec<String>,
    timeout_seconds: Option<serde_norway::Value>,
}

/// The embedded document, parsed once. Its invariants (ENV_VAR everywhere,
/// a pattern on every parameter, no `{{`) are checked here so that a broken
/// document can never be sent.
pub fn embedded() -> Result<&'static Document> {
    static DOC: OnceLock<std::result::Result<Document, String>> = OnceLock::new();
    DOC.get_or_init(|| parse(YAML))
        .as_ref()
        .map_err(|e| Error::Document(e.clone()))
}

pub fn parse(yaml: &str) -> std::result::Result<Document, String> {
    let raw: RawDocument = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
    if raw.schema_version != "2.2" {
        return Err(format!(
            "schemaVersion is {}, expected 2.2",
            raw.schema_version
        ));
    }
    let mut parameters = BTreeMap::new();
    for (name, p) in raw.parameters {
        if p.interpolation_type.as_deref() != Some("ENV_VAR") {
            return Err(format!("parameter {name} lacks interpolationType: ENV_VAR"));
        }
        let pattern_text = p
            .allowed_pattern
            .ok_or_else(|| format!("parameter {name} has no allowedPattern"))?;
        if !pattern_text.starts_with('^') || !pattern_text.ends_with('$') {
            return Err(format!("parameter {name}'s allowedPattern is not anchored"));
        }
        let pattern = Regex::new(&pattern_text).map_err(|e| format!("parameter {name}: {e}"))?;
        parameters.insert(
            name,
            Parameter {
                default: p.default.unwrap_or_default(),
                pattern,
                pattern_text,
                max_chars: p.max_chars,
            },
        );
    }
    let [step] = raw.main_steps.as_slice() else {
        return Err("expected exactly one step".into());
    };
    if step.action != "aws:runShellScript" {
        return Err(format!("step action is {}", step.action));
    }
    let script = step.inputs.run_command.join("\n");
    if script.contains("{{") {
        return Err("the script contains `{{`, which SSM would interpolate".into());
    }
    let timeout_seconds = match &step.inputs.timeout_seconds {
        Some(serde_norway::Value::Number(n)) => n.as_u64(),
        Some(serde_norway::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or("step has no numeric timeoutSeconds")?;
    Ok(Document {
        parameters,
        script,
        timeout_seconds,
    })
}

impl Document {
    /// Checks `value` against the parameter's own `allowedPattern`, naming
    /// the CLI `flag` that supplied it.
    pub fn check(&self, name: &str, value: &str, flag: &str) -> Result<()> {
        let param = self
            .parameters
            .get(name)
            .ok_or_else(|| Error::Document(format!("no parameter {name}")))?;
        let too_long = param.max_chars.filter(|&max| value.chars().count() > max);
        if too_long.is_none() && param.pattern.is_match(value) {
            return Ok(());
        }
        if let Some(max) = too_long {
            return Err(Error::InvalidValue {
                flag: flag.to_string(),
                value: shorten(value),
                why: format!("longer than the {max} characters the document allows (maxChars)"),
                pattern: param.pattern_text.clone(),
            });
        }
        Err(Error::InvalidValue {
            flag: flag.to_string(),
            value: shorten(value),
            why: explain(name).to_string(),
            pattern: param.pattern_text.clone(),
        })
    }
}

fn explain(name: &str) -> &'static str {
    match name {
        "Duration" => "expected whole seconds from 1 to 300",
        "Frequency" => "expected a sampling rate in Hz from 1 to 999",
        "Pids" => "expected up to 64 process ids, each a positive number",
        "ProcessName" => "expected an executable name such as `node` (letters, digits, `_.+-`)",
        "StartAt" => "expected an epoch second",
        "RunId" => "expected letters, digits and `-`, at most 64",
        "UploadUrl" => {
            "expected an S3 endpoint (https://BUCKET.s3.REGION.amazonaws.com/, or https://s3.REGION.amazonaws.com/BUCKET/ for names with dots); plain http is allowed only to 127.0.0.1 for the emulator"
        }
        "UploadKeyPrefix" => {
            "expected path segments of letters, digits and `_.-` ending in `/` (check --prefix)"
        }
        _ => "it does not match the pattern",
    }
}

/// Keeps error messages readable when the value is a hostile megabyte.
fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
        None => value.to_string(),
    }
}

/// Which processes to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pids {
    /// Every process whose executable is `process_name` (and `nodejs` for `node`).
    All,
    Listed(Vec<u32>),
}

/// Fields of the S3 presigned POST that hosts upload through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFields {
    pub url: String,
    pub key_prefix: String,
    pub policy: String,
    pub credential: String,
    pub date: String,
    pub signature: String,
    pub security_token: Option<String>,
}

/// Everything the document is parameterised by: the recording, plus the upload.
#[derive(Debug, Clone)]
pub struct RecordParams {
    pub duration_s: u32,
    pub frequency_hz: u32,
    pub pids: Pids,
    pub process_name: String,
    /// Epoch second at which every host starts recording; 0 means at once.
    pub start_at: u64,
    pub run_id: String,
    pub upload: Option<UploadFields>,
    /// Never install perf on the host (`--no-install`, parameter NoInstall).
    pub no_install: bool,
    /// Check the host as a run would and record nothing (`doctor --probe`,
    /// parameter Probe).
    pub probe: bool,
}

impl RecordParams {
    /// Parameter name → value, exactly as the document declares them. The
    /// same map feeds `SendCommand` and the `SSM_*` environment of `local`.
    pub fn to_parameters(&self) -> BTreeMap<&'static str, String> {
        let pids = match &self.pids {
            Pids::All => "all".to_string(),
            Pids::Listed(p) => p.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        };
        let up = self.upload.as_ref();
        let field = |f: fn(&UploadFields) -> &str| up.map(f).unwrap_or("").to_string();
        BTreeMap::from([
            ("Duration", self.duration_s.to_string()),
            ("Frequency", self.frequency_hz.to_string()),
            ("Pids", pids),
            ("ProcessName", self.process_name.clone()),
            ("StartAt", self.start_at.to_string()),
            ("RunId", self.run_id.clone()),
            ("UploadUrl", field(|u| &u.url)),
            ("UploadKeyPrefix", field(|u| &u.key_prefix)),
            ("UploadPolicy", field(|u| &u.policy)),
            ("UploadCredential", field(|u| &u.credential)),
            ("UploadDate", field(|u| &u.date)),
            ("UploadSignature", field(|u| &u.signature)),
            (
                "UploadSecurityToken",
                field(|u| u.security_token.as_deref().unwrap_or("")),
            ),
            ("NoInstall", self.no_install.to_string()),
            ("Probe", self.probe.to_string()),
        ])
    }

    /// Validates every value against the document, naming the flag at fault.
    pub fn validate(&self, doc: &Document) -> Result<()> {
        for (name, value) in self.to_parameters() {
            doc.check(name, &value, flag_for(name))?;
        }
        Ok(())
    }
}

/// Whether two document texts mean the same document. SSM returns content
/// in the format asked for (JSON by default), not byte for byte, so both
/// sides are compared as parsed YAML (a superset of JSON); comments and
/// formatting do not count as drift.
pub fn same_content(a: &str, b: &str) -> bool {
    let parse = |s: &str| serde_norway::from_str::<serde_norway::Value>(s).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// The CLI flag (or setting) that feeds each document parameter.
pub fn flag_for(parameter: &str) -> &'static str {
    match parameter {
        "Duration" => "--duration",
        "Frequency" => "--frequency",
        "Pids" => "--pid",
        "ProcessName" => "--process",
        "StartAt" => "--start-at",
        "RunId" => "--run-id",
        "UploadUrl" => "the S3 endpoint (AWS_ENDPOINT_URL / --region)",
        "UploadKeyPrefix" => "--prefix",
        "UploadCredential" => "the AWS credentials' access key id",
        "UploadSecurityToken" => "the AWS credentials' session token",
        "NoInstall" => "--no-install",
        "Probe" => "--probe",
        _ => "the upload signature",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_document_parses_and_every_parameter_is_env_var_with_pattern() {
        let doc = embedded().expect("embedded document is valid");
        for name in [
            "Duration",
            "Frequency",
            "Pids",
            "ProcessName",
            "StartAt",
            "RunId",
            "UploadUrl",
            "UploadKeyPrefix",
            "UploadPolicy",
            "UploadCredential",
            "UploadDate",
            "UploadSignature",
            "UploadSecurityToken",
            "NoInstall",
            "Probe",
        ] {
            assert!(doc.parameters.contains_key(name), "missing {name}");
        }
        assert!(!doc.script.contains("{{"));
        assert!(doc.timeout_seconds > 300 && doc.timeout_seconds <= 3600);
    }

    #[test]
    fn defaults_are_accepted_by_their_own_patterns() {
        let doc = embedded().unwrap();
        for (name, p) in &doc.parameters {
            assert!(
                p.pattern.is_match(&p.default),
                "{name} default {:?}",
                p.default
            );
        }
    }

    const TINY: &str = r#"
schemaVersion: "2.2"
description: t
parameters:
  Duration:
    type: String
    default: "30"
    allowedPattern: "^[0-9]{1,3}$"
    interpolationType: ENV_VAR
mainSteps:
  - action: aws:runShellScript
    name: record
    inputs:
      timeoutSeconds: 600
      runCommand:
        - echo "$SSM_Duration"
"#;

    #[test]
    fn parse_rejects_documents_that_would_become_a_shell() {
        assert!(parse(TINY).is_ok());
        let templated = TINY.replace(r#"echo "$SSM_Duration""#, "echo {{ Duration }}");
        assert!(parse(&templated).unwrap_err().contains("{{"));
        let no_env = TINY.replace("ENV_VAR", "NONE");
        assert!(parse(&no_env).unwrap_err().contains("ENV_VAR"));
        let unanchored = TINY.replace("^[0-9]{1,3}$", "[0-9]+");
        assert!(parse(&unanchored).unwrap_err().contains("anchored"));
        let no_pattern = TINY.replace(r#"    allowedPattern: "^[0-9]{1,3}$""#, "");
        assert!(parse(&no_pattern).unwrap_err().contains("allowedPattern"));
    }

    #[test]
    fn documents_compare_by_meaning_not_bytes() {
        assert!(same_content("a: 1\r\nb: 2\n", "a: 1\nb: 2"));
        assert!(same_content("# comment\na: [1, 2]\n", r#"{"a": [1, 2]}"#));
        assert!(!same_content("a: 1\n", "a: 2\n"));
        let json =
            serde_json::to_string(&serde_norway::from_str::<serde_json::Value>(YAML).unwrap())
                .unwrap();
        assert!(
            same_content(&json, YAML),
            "SSM's JSON rendering of the embedded YAML"
        );
    }

    #[test]
    fn check_names_the_flag_and_shortens_huge_values() {
        let doc = embedded().unwrap();
        let huge = "9".repeat(10_000);
        let err = doc.check("Duration", &huge, "--duration").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("--duration"), "{msg}");
        assert!(msg.len() < 600, "{msg}");
        assert!(doc.check("Duration", "301", "--duration").is_err());
        assert!(doc.check("Duration", "300", "--duration").is_ok());
        assert!(doc.check("Pids", "1;id", "--pid").is_err());
        assert!(doc.check("ProcessName", "-o", "--process").is_err());
    }
}
