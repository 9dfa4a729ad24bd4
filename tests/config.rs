//! config.toml through the real binary: precedence (flag > environment >
//! file > built-in default), where `-v` says each value came from, and every
//! kind of bad file failing with its path, line and key (exit 2).
//!
//! The runs stop at a plan check after the settings are resolved (`--pid x`
//! is refused before any AWS call), so only the doctor test needs the emulator.

use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::support::flamefire;

/// A config home holding `flamefire/config.toml` with `text`.
fn config_home(text: &str) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().expect("temp dir");
    let file = home.path().join("flamefire/config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    (home, file)
}

/// `flamefire -v ssm --asg web --pid x ARGS` with `XDG_CONFIG_HOME=home`:
/// its stderr, after checking that it stopped at the plan (exit 2, `--pid`).
fn settings(home: &Path, vars: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = flamefire();
    // scripts/test.sh exports both region variables; the SDK reads either.
    cmd.env("XDG_CONFIG_HOME", home)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd
        .arg("-v")
        .args(args)
        .args(["ssm", "--asg", "web", "--pid", "x"])
        .output()
        .expect("flamefire runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--pid \"x\""),
        "stopped at the plan: {stderr}"
    );
    stderr
}

const FILE: &str = "\
bucket = \"file-bkt\"
region = \"eu-west-1\"
duration = 10

[env.prod]
bucket = \"prod-bkt\"
prefix = \"teams/api/\"
";

#[test]
fn the_file_fills_defaults_and_says_so_with_its_line() {
    let (home, file) = config_home(FILE);
    let f = file.display();
    let err = settings(home.path(), &[], &[]);
    assert!(err.contains(&format!("config file: {f}")), "{err}");
    assert!(
        err.contains(&format!("bucket = file-bkt (config {f}:1)")),
        "{err}"
    );
    assert!(
        err.contains(&format!("region = eu-west-1 (config {f}:2)")),
        "{err}"
    );
    assert!(
        err.contains(&format!("duration = 10 (config {f}:3)")),
        "{err}"
    );
    assert!(
        err.contains("prefix = flamefire/ (built-in default)"),
        "{err}"
    );
    assert!(err.contains("frequency = 99 (built-in default)"), "{err}");
    assert!(err.contains("profile = - (not set)"), "{err}");

    // --env picks a section over the top level; the rest still comes from the top.
    let err = settings(home.path(), &[], &["--env", "prod"]);
    assert!(
        err.contains(&format!("bucket = prod-bkt (config {f}:6 [env.prod])")),
        "{err}"
    );
    assert!(
        err.contains(&format!("prefix = teams/api/ (config {f}:7 [env.prod])")),
        "{err}"
    );
    assert!(
        err.contains(&format!("duration = 10 (config {f}:3)")),
        "{err}"
    );
}

#[test]
fn environment_beats_the_file_and_flags_beat_both() {
    let (home, file) = config_home(FILE);
    let f = file.display();
    let env = [
        ("FLAMEFIRE_BUCKET", "env-bkt"),
        ("AWS_REGION", "ap-south-1"),
    ];
    let err = settings(home.path(), &env, &[]);
    assert!(
        err.contains("bucket = env-bkt (environment FLAMEFIRE_BUCKET)"),
        "{err}"
    );
    // The SDK's own variable outranks the file too.
    assert!(
        err.contains("region = ap-south-1 (environment AWS_REGION)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("duration = 10 (config {f}:3)")),
        "{err}"
    );

    let out = {
        let mut cmd = flamefire();
        cmd.env("XDG_CONFIG_HOME", home.path())
            .env("FLAMEFIRE_BUCKET", "env-bkt")
            .env("AWS_REGION", "ap-south-1");
        cmd.args([
            "-v",
            "--env",
            "prod",
            "ssm",
            "--asg",
            "web",
            "--bucket",
            "flag-bkt",
            "--region",
            "us-west-2",
            "--duration",
            "7",
            "--pid",
            "x",
        ])
        .output()
        .unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bucket = flag-bkt (flag --bucket)"), "{err}");
    assert!(err.contains("region = us-west-2 (flag --region)"), "{err}");
    assert!(err.contains("duration = 7 (flag --duration)"), "{err}");
    assert!(
        err.contains(&format!("prefix = teams/api/ (config {f}:7 [env.prod])")),
        "{err}"
    );
}

#[test]
fn xdg_config_home_then_home_then_config_flag() {
    // No XDG_CONFIG_HOME: ~/.config/flamefire/config.toml.
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".config/flamefire/config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "bucket = \"home-bkt\"\n").unwrap();
    let out = flamefire()
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path())
        .args(["-v", "ssm", "--asg", "web", "--pid", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("bucket = home-bkt (config {}:1)", file.display())),
        "{err}"
    );

    // --config FILE wins over the default place; so does FLAMEFIRE_CONFIG.
    let (xdg, _) = config_home("bucket = \"xdg-bkt\"\n");
    let other = xdg.path().join("other.toml");
    std::fs::write(&other, "\n\nbucket = \"other-bkt\"\n").unwrap();
    let o = other.display();
    let err = settings(xdg.path(), &[], &["--config", other.to_str().unwrap()]);
    assert!(
        err.contains(&format!("bucket = other-bkt (config {o}:3)")),
        "{err}"
    );
    let err = settings(
        xdg.path(),
        &[("FLAMEFIRE_CONFIG", other.to_str().unwrap())],
        &[],
    );
    assert!(
        err.contains(&format!("bucket = other-bkt (config {o}:3)")),
        "{err}"
    );
    let err = settings(xdg.path(), &[], &[]);
    assert!(err.contains("bucket = xdg-bkt"), "{err}");
}

/// A bad file: exit 2, nothing on stdout, and stderr names `expect`.
fn rejected(text: &str, args: &[&str], expect: &[&str]) {
    let (home, file) = config_home(text);
    let mut expect: Vec<String> = expect
        .iter()
        .map(|e| e.replace("FILE", &file.display().to_string()))
        .collect();
    expect.push("next step".into());
    let out = flamefire()
        .env("XDG_CONFIG_HOME", home.path())
        .args(args)
        .args(["render", "whatever.perf"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
    assert!(out.stdout.is_empty());
    for e in &expect {
        assert!(
            err.contains(e.as_str()),
            "{text:?}: expected {e:?} in {err}"
        );
    }
}

#[test]
fn a_bad_file_is_an_error_with_file_line_and_key_never_a_default() {
    // Unknown key (a typo), at the top level and in a section.
    rejected(
        "bukket = \"b\"\n",
        &[],
        &["FILE:1:1: bukket: unknown field `bukket`"],
    );
    rejected(
        "bucket = \"ok-bkt\"\n[env.prod]\nregoin = \"x\"\n",
        &["--env", "prod"],
        &["FILE:3:1: regoin: unknown field `regoin`"],
    );
    // Wrong type.
    rejected(
        "\nduration = \"ten\"\n",
        &[],
        &["FILE:2:12: duration: invalid type"],
    );
    rejected("frequency = 99.5\n", &[], &["FILE:1:13: frequency:"]);
    // Not TOML at all.
    rejected("bucket = \n", &[], &["FILE:1:", "bucket"]);
    // Values the flags would refuse, blamed on the file's line.
    rejected("duration = 0\n", &[], &["FILE:1:12: duration:", "1 to 300"]);
    rejected(
        "\n\nbucket = \"Not_A_Bucket\"\n",
        &[],
        &["FILE:3:10: bucket:", "not a valid S3 bucket name"],
    );
    rejected("prefix = \"../etc\"\n", &[], &["FILE:1:10: prefix:"]);
    // Sections: a missing one, and nesting.
    rejected(
        "[env.staging]\nbucket = \"s-bkt\"\n",
        &["--env", "prod"],
        &["--env prod: FILE has no [env.prod] section (it has staging)"],
    );
    rejected(
        "[env.prod.env.x]\nbucket = \"s-bkt\"\n",
        &[],
        &["env.prod.env", "do not nest"],
    );
}

#[test]
fn an_unreadable_or_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be read as a file (and root reads any mode bits).
    flamefire()
        .args(["--config", dir.path().to_str().unwrap(), "render", "x.perf"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "could not read the config file {}",
            dir.path().display()
        )));
    let missing = dir.path().join("missing.toml");
    flamefire()
        .args(["--config", missing.to_str().unwrap(), "render", "x.perf"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "could not read the config file {}",
            missing.display()
        )));
    // --env without any file says how to write one.
    flamefire()
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["--env", "prod", "render", "x.perf"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--env prod needs a config file"))
        .stderr(predicate::str::contains("terraform output"));
}

#[test]
fn completions_and_man_ignore_a_broken_file() {
    let (home, _) = config_home("this is not toml\n");
    flamefire()
        .env("XDG_CONFIG_HOME", home.path())
        .args(["completions", "bash"])
        .assert()
        .success();
}

#[test]
fn doctor_ends_with_where_each_setting_came_from() {
    // Needs the emulator (scripts/test.sh starts it): doctor calls AWS first.
    let (home, file) = config_home("bucket = \"no-such-bkt-cfg\"\nprefix = \"teams/a/\"\n");
    let out = flamefire()
        .env("XDG_CONFIG_HOME", home.path())
        .args(["doctor", "--prefix", "cli/"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("settings (flag > environment > config file > default):"),
        "{stdout}"
    );
    let f = file.display();
    for (key, value, source) in [
        ("bucket", "no-such-bkt-cfg", format!("config {f}:1")),
        ("prefix", "cli/", "flag --prefix".to_string()),
        ("region", "us-east-1", "environment AWS_REGION".to_string()),
        (
            "document",
            "flamefire-record",
            "built-in default".to_string(),
        ),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} line in:\n{stdout}"));
        assert!(line.contains(value) && line.ends_with(&source), "{line:?}");
    }
}
