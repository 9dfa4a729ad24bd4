//! The real binary's manners: exit codes, stdout vs stderr, errors that name the flag.

use predicates::prelude::*;

use crate::support::{flamefire, repo};

#[test]
fn help_teaches_the_subcommands_and_exit_codes() {
    flamefire()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("local"))
        .stdout(predicate::str::contains("ssm"))
        .stdout(predicate::str::contains("130"));
    flamefire()
        .args(["ssm", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--asg"))
        .stdout(predicate::str::contains("FLAMEFIRE_BUCKET"))
        .stdout(predicate::str::contains("flamefire ssm --tag Role=api"));
}

#[test]
fn invalid_values_are_rejected_with_the_flag_named_and_exit_2() {
    for (args, flag) in [
        (vec!["local", "--duration", "0"], "--duration"),
        (vec!["local", "--duration", "301"], "--duration"),
        (vec!["local", "--frequency", "1000"], "--frequency"),
        (vec!["local", "--pid", "12;reboot"], "--pid"),
        (vec!["local", "--process", "-o/root/x"], "--process"),
        (vec!["ssm", "i-123", "--bucket", "b-1"], "i-123"),
        (vec!["ssm", "--tag", "Role", "--bucket", "b-1"], "--tag"),
        (vec!["ssm", "--asg", "x", "--bucket", "UPPER"], "--bucket"),
        (
            vec!["ssm", "--asg", "x", "--bucket", "b-1", "--prefix", "a/../b"],
            "--prefix",
        ),
        (
            vec!["ssm", "--asg", "x", "--bucket", "b-1", "--opt-in-tag", "x"],
            "--opt-in-tag",
        ),
    ] {
        flamefire()
            .args(&args)
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(flag));
    }
}

#[test]
fn ssm_without_bucket_says_how_to_set_it() {
    flamefire()
        .args(["ssm", "--asg", "web"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--bucket or set FLAMEFIRE_BUCKET"));
}

#[test]
fn render_writes_svgs_and_prints_only_paths_on_stdout() {
    let out = tempfile::tempdir().unwrap();
    let captures = repo().join("tests/data/captures");
    let assert = flamefire()
        .args(["render", "--out"])
        .arg(out.path())
        .arg(captures.join("sick.perf.gz"))
        .arg(captures.join("healthy.perf.gz"))
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "merged + one per input: {stdout}");
    assert!(lines[0].ends_with("merged.svg"));
    for l in &lines {
        assert!(std::path::Path::new(l).is_file(), "{l}");
    }
    assert!(out.path().join("sick.folded").is_file());
}

#[test]
fn render_of_a_missing_and_a_good_file_is_partial() {
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args(["render", "--out"])
        .arg(out.path())
        .arg("/nonexistent/stacks.perf")
        .arg(repo().join("tests/data/captures/sick.perf.gz"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/stacks.perf"));
}

#[test]
fn render_of_garbage_fails_with_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gz");
    std::fs::write(&bad, b"\x1f\x8b\x08\x00garbage that is not gzip").unwrap();
    flamefire()
        .args(["render", "--out"])
        .arg(dir.path())
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.gz"));
}

/// Regression (issue 9): EC2 matches tag values of up to 255 characters;
/// longer ones were sent and matched nothing.
#[test]
fn tag_values_longer_than_ec2_allows_are_rejected_naming_the_flag() {
    let long = format!("Role={}", "a".repeat(256));
    for flag in ["--tag", "--baseline-tag"] {
        let mut args = vec!["ssm", "--bucket", "b-1"];
        if flag == "--tag" {
            args.extend(["--tag", long.as_str()]);
        } else {
            args.extend(["i-0123456789abcdef0", "--baseline-tag", long.as_str()]);
        }
        flamefire()
            .args(&args)
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(format!("{flag} Role=")))
            .stderr(predicate::str::contains("255"));
    }
}

/// Regression (issue 9): the Terraform outputs export FLAMEFIRE_PREFIX, and
/// the CLI ignored it, signing for a prefix the on-call role cannot write.
#[test]
fn the_prefix_comes_from_flamefire_prefix() {
    flamefire()
        .args(["ssm", "--asg", "x", "--bucket", "b-1"])
        .env("FLAMEFIRE_PREFIX", "a/../b")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--prefix \"a/../b\""));
    flamefire()
        .args(["ssm", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("FLAMEFIRE_PREFIX"))
        .stdout(predicate::str::contains("--mfa-code"))
        .stdout(predicate::str::contains("--opt-in-tag"));
}
