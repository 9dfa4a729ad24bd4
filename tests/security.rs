//! The document is never a root shell.
//!
//! Statically: every parameter is passed as an environment variable and has
//! an anchored `allowedPattern`; the script has no `{{`. Dynamically: every
//! hostile value in `tests/data/hostile-values.txt`, for every parameter, is
//! rejected by the pattern, by the script itself (as if an old agent or a
//! bypass let it through), and by the CLI before any AWS call.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use flamefire::document;

use crate::support::{flamefire, repo};

/// The corpus, decoded (escapes and `@repeat` as its header describes).
pub fn corpus() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(repo().join("tests/data/hostile-values.txt")).unwrap();
    let mut values = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@repeat ") {
            let (count, text) = rest.split_once(' ').unwrap();
            let unit = unescape(text);
            values.push(unit.repeat(count.parse().unwrap()));
        } else {
            values.push(unescape(
                line.strip_prefix('\\')
                    .filter(|l| l.starts_with('#'))
                    .unwrap_or(line),
            ));
        }
    }
    assert!(values.len() >= 50, "the corpus holds at least 50 values");
    values
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            i += 1;
            match bytes[i] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'e' => out.push(0x1b),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    out
}

#[test]
fn every_parameter_is_env_var_with_an_anchored_pattern_and_the_script_has_no_template() {
    let raw: serde_norway::Value = serde_norway::from_str(document::YAML).unwrap();
    let params = raw["parameters"].as_mapping().unwrap();
    assert!(params.len() >= 13);
    for (name, p) in params {
        assert_eq!(p["interpolationType"].as_str(), Some("ENV_VAR"), "{name:?}");
        let pattern = p["allowedPattern"].as_str().expect("allowedPattern");
        assert!(
            pattern.starts_with('^') && pattern.ends_with('$'),
            "{name:?}: {pattern}"
        );
    }
    assert!(
        !document::YAML.contains("{{"),
        "no SSM interpolation anywhere in the document"
    );
    let script = &document::embedded().unwrap().script;
    // Parameters are read only from quoted "$SSM_…" (or by indirection in quotes).
    for (i, line) in script.lines().enumerate() {
        if let Some(at) = line.find("$SSM_") {
            assert!(
                at > 0 && (line.as_bytes()[at - 1] == b'"'),
                "line {}: unquoted $SSM_ use: {line}",
                i + 1
            );
        }
    }
}

#[test]
fn every_hostile_value_is_rejected_by_every_pattern() {
    let doc = document::embedded().unwrap();
    for value in corpus() {
        let Ok(text) = String::from_utf8(value.clone()) else {
            continue; // not UTF-8: SSM's API refuses it before any pattern
        };
        // The pattern, and maxChars where RE2's 1000 repeat limit leaves the
        // pattern's length open (issue 16): what the service and the agent check.
        for name in doc.parameters.keys() {
            assert!(
                doc.check(name, &text, name).is_err(),
                "{name} accepts hostile {:?}",
                &text.chars().take(80).collect::<String>()
            );
        }
    }
}

/// Runs the real script under `sh` (as the agent does) with one hostile
/// `SSM_*` value at a time. Nothing may run, and nothing may be written
/// outside the work directory.
#[test]
fn the_script_rejects_hostile_values_and_writes_nothing() {
    use std::os::unix::ffi::OsStrExt;
    let scratch = tempfile::tempdir().unwrap();
    let script = scratch.path().join("_script.sh");
    std::fs::write(&script, &document::embedded().unwrap().script).unwrap();
    let canary = Path::new("/tmp/PWNED");
    let names: Vec<String> = document::embedded()
        .unwrap()
        .parameters
        .keys()
        .cloned()
        .collect();
    let cases: Vec<(String, Vec<u8>)> = corpus()
        .into_iter()
        .filter(|v| !v.contains(&0)) // an environment string ends at NUL
        .flat_map(|v| names.iter().map(move |n| (n.clone(), v.clone())))
        .collect();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, value)) = cases.get(i) else {
                        break;
                    };
                    let cwd = tempfile::tempdir().unwrap();
                    let tmp = tempfile::tempdir().unwrap();
                    let mut cmd = Command::new("sh");
                    cmd.arg(&script)
                        .current_dir(cwd.path())
                        .env("TMPDIR", tmp.path())
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped());
                    for n in &names {
                        cmd.env(format!("SSM_{n}"), "");
                    }
                    cmd.env("SSM_Duration", "1")
                        .env("SSM_Frequency", "99")
                        .env("SSM_Pids", "all")
                        .env("SSM_ProcessName", "flamefire-none")
                        .env("SSM_StartAt", "0")
                        .env("SSM_RunId", "hostile")
                        .env("SSM_NoInstall", "false")
                        .env("SSM_Probe", "false")
                        .env(format!("SSM_{name}"), std::ffi::OsStr::from_bytes(value));
                    let out = cmd.output().unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let why = if canary.exists() {
                        Some("/tmp/PWNED was created".to_string())
                    } else if out.status.code() != Some(2) {
                        Some(format!("exit {:?}, expected 2", out.status.code()))
                    } else if !stderr.contains(&format!("invalid parameter {name}")) {
                        Some(format!("stderr does not name {name}: {stderr}"))
                    } else if std::fs::read_dir(cwd.path()).unwrap().next().is_some()
                        || std::fs::read_dir(tmp.path()).unwrap().next().is_some()
                    {
                        Some("files were written".into())
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        let shown =
                            String::from_utf8_lossy(&value[..value.len().min(60)]).into_owned();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{name}={shown:?}: {why}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_cli_rejects_hostile_values_before_any_aws_call() {
    use std::os::unix::ffi::OsStrExt;
    let bin = assert_cmd::cargo::cargo_bin("flamefire");
    for value in corpus().into_iter().filter(|v| !v.contains(&0)).take(120) {
        for flag in ["--process", "--pid", "--duration", "--prefix"] {
            let mut arg = format!("{flag}=").into_bytes();
            arg.extend_from_slice(&value);
            let out = Command::new(&bin)
                .args(["ssm", "--asg", "web", "--bucket", "flamefire-test"])
                .arg(std::ffi::OsStr::from_bytes(&arg))
                // A closed port: any AWS call would fail differently.
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_REGION", "us-east-1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {stderr}");
            assert!(
                stderr.contains(flag) || stderr.contains("invalid value"),
                "{flag}: {stderr}"
            );
            assert!(
                !stderr.contains("127.0.0.1:9"),
                "no AWS call was made: {stderr}"
            );
        }
    }
    // And the same through the real helper, for one obviously dangerous case.
    flamefire()
        .args(["local", "--pid=1;touch /tmp/PWNED"])
        .assert()
        .code(2);
    assert!(!Path::new("/tmp/PWNED").exists());
}
