//! Unit tests of the flags and their plans: clap's own consistency check
//! and `try_parse_from` cases, as samply does.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{CommandFactory, Parser};

use super::*;
use crate::collapse::{Weight, Window};
use crate::document;
use crate::error::Result;
use crate::model::Target;

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

fn ssm(args: &[&str]) -> Result<SsmPlan> {
    let mut argv = vec!["flamefire", "ssm"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("parses").command {
        Command::Ssm(a) => a.plan("20261127T080000Z-abcd".into()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn instance_ids_are_checked_before_any_call() {
    let err = ssm(&["i-nothex", "--bucket", "b-ok"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"i-nothex\" is not an instance id")
    );
    let plan = ssm(&[
        "i-0123456789abcdef0",
        "i-0123456789abcdef0",
        "--bucket",
        "bkt",
    ])
    .unwrap();
    assert!(matches!(plan.target, Target::Ids(ref v) if v.len() == 1));
}

#[test]
fn target_kinds_are_exclusive_and_required() {
    assert!(
        ssm(&["--bucket", "bkt"])
            .unwrap_err()
            .to_string()
            .contains("no target")
    );
    let err = ssm(&["i-0123456789abcdef0", "--tag", "a=b", "--bucket", "bkt"]).unwrap_err();
    assert!(err.to_string().contains("not several kinds"));
    assert!(
        Cli::try_parse_from(["flamefire", "ssm", "--tag", "a=b", "--asg", "x"]).is_err(),
        "--tag and --asg conflict"
    );
    let err = ssm(&["--tag", "novalue", "--bucket", "bkt"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("--tag \"novalue\" must be KEY=VALUE")
    );
}

#[test]
fn values_are_checked_against_the_documents_patterns_naming_the_flag() {
    let err = ssm(&["--asg", "a", "--bucket", "bkt", "--duration", "0"]).unwrap_err();
    assert!(err.to_string().starts_with("--duration \"0\""), "{err}");
    let err = ssm(&["--asg", "a", "--bucket", "bkt", "--pid", "1;reboot"]).unwrap_err();
    assert!(err.to_string().starts_with("--pid"), "{err}");
    let err = ssm(&["--asg", "a", "--bucket", "bkt", "--process=--output=/x"]).unwrap_err();
    assert!(err.to_string().starts_with("--process"), "{err}");
    let err = ssm(&["--asg", "a", "--bucket", "bkt", "--prefix", "../etc"]).unwrap_err();
    assert!(err.to_string().starts_with("--prefix"), "{err}");
    let err = ssm(&["--asg", "a", "--bucket", "Bad_Bucket"]).unwrap_err();
    assert!(err.to_string().starts_with("--bucket"), "{err}");
    let err = ssm(&["--asg", "a"]).unwrap_err();
    assert!(err.to_string().contains("FLAMEFIRE_BUCKET"), "{err}");
}

#[test]
fn baselines_are_checked_like_targets() {
    let plan = ssm(&[
        "i-0123456789abcdef0",
        "--baseline",
        "i-0123456789abcdef1",
        "--bucket",
        "bkt",
    ])
    .unwrap();
    assert!(matches!(plan.baseline, Some(Target::Ids(ref v)) if v.len() == 1));
    let plan = ssm(&["--asg", "a", "--baseline-tag", "Role=ok", "--bucket", "bkt"]).unwrap();
    assert_eq!(
        plan.baseline,
        Some(Target::Tags(vec![("Role".into(), "ok".into())]))
    );
    assert_eq!(
        ssm(&["--asg", "a", "--bucket", "bkt"]).unwrap().baseline,
        None
    );

    let err = ssm(&["--asg", "a", "--baseline", "i-zz", "--bucket", "bkt"]).unwrap_err();
    assert!(err.to_string().starts_with("--baseline \"i-zz\""), "{err}");
    let err = ssm(&["--asg", "a", "--baseline-tag", "x", "--bucket", "bkt"]).unwrap_err();
    assert!(err.to_string().starts_with("--baseline-tag \"x\""), "{err}");
    let same = "i-0123456789abcdef0";
    let err = ssm(&[same, "--baseline", same, "--bucket", "bkt"]).unwrap_err();
    assert!(
        err.to_string().contains("both a target and a --baseline"),
        "{err}"
    );
    assert!(
        Cli::try_parse_from([
            "flamefire",
            "ssm",
            "--asg",
            "a",
            "--baseline",
            same,
            "--baseline-tag",
            "a=b"
        ])
        .is_err(),
        "--baseline and --baseline-tag conflict"
    );
}

fn window(args: &[&str]) -> Result<Window> {
    let mut argv = vec!["flamefire", "diff", "a", "b"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("parses").command {
        Command::Diff(a) => a.plan().map(|p| p.window),
        other => panic!("{other:?}"),
    }
}

#[test]
fn windows_are_seconds_from_the_first_sample() {
    assert_eq!(window(&[]).unwrap(), Window::default());
    assert_eq!(
        window(&["--from", "1.5", "--to", "3"]).unwrap(),
        Window {
            from_s: Some(1.5),
            to_s: Some(3.0)
        }
    );
    assert!(
        window(&["--from=-1"])
            .unwrap_err()
            .to_string()
            .starts_with("--from")
    );
    assert!(
        window(&["--to", "NaN"])
            .unwrap_err()
            .to_string()
            .starts_with("--to")
    );
    let err = window(&["--from", "3", "--to", "2"]).unwrap_err();
    assert!(err.to_string().contains("must be after --from"), "{err}");
}

#[test]
fn event_and_weight_choose_what_is_folded() {
    let fold = |args: &[&str]| {
        let mut argv = vec!["flamefire", "render", "x.perf"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Render(a) => a.plan().map(|p| p.fold),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(fold(&[]).unwrap(), FoldPlan::default());
    let plan = fold(&["--event", "cycles:u", "--weight", "period"]).unwrap();
    assert_eq!(plan.event.as_deref(), Some("cycles:u"));
    assert_eq!(plan.weight, Weight::Period);
    let err = fold(&["--event", ""]).unwrap_err();
    assert!(err.to_string().starts_with("--event"), "{err}");
    assert!(
        Cli::try_parse_from(["flamefire", "render", "x", "--weight", "ns"]).is_err(),
        "--weight is sample or period"
    );
    for command in ["diff a b", "local", "fetch 20261127T080000Z-abcd"] {
        let mut argv = vec!["flamefire"];
        argv.extend(command.split(' '));
        argv.extend(["--event", "page-faults", "--weight", "period"]);
        assert!(Cli::try_parse_from(&argv).is_ok(), "{command}");
    }
}

#[test]
fn diff_inputs_are_paths_for_now() {
    let plan = match Cli::try_parse_from(["flamefire", "diff", "h.perf.gz", "s.perf.gz"])
        .unwrap()
        .command
    {
        Command::Diff(a) => a.plan().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(plan.before, DiffInput::File("h.perf.gz".into()));
    assert_eq!(plan.after.to_string(), "s.perf.gz");
    assert_eq!(plan.out, PathBuf::from("."));
}

#[test]
fn diff_inputs_are_files_or_past_run_hosts() {
    let run = DiffInput::parse(std::path::Path::new(
        "20261127T080000Z-abcd/i-0123456789abcdef0",
    ));
    assert_eq!(run.to_string(), "20261127T080000Z-abcd/i-0123456789abcdef0");
    assert!(matches!(run, DiffInput::Run { .. }));
    for file in [
        "sick.perf.gz",
        "dir/i-nothex",
        "a;b/i-0123456789abcdef0",
        "src",
    ] {
        assert!(
            matches!(
                DiffInput::parse(std::path::Path::new(file)),
                DiffInput::File(_)
            ),
            "{file}"
        );
    }
}

#[test]
fn tag_values_of_up_to_255_characters_are_accepted() {
    let ok = format!("Role={}", "a".repeat(255));
    assert!(ssm(&["--tag", &ok, "--bucket", "bkt"]).is_ok());
    let long = format!("Role={}", "a".repeat(256));
    let err = ssm(&["--tag", &long, "--bucket", "bkt"]).unwrap_err();
    assert!(err.to_string().starts_with("--tag Role="), "{err}");
    let err = ssm(&["--asg", "a", "--bucket", "bkt", "--opt-in-tag", "x"]).unwrap_err();
    assert!(err.to_string().starts_with("--opt-in-tag"), "{err}");
    let plan = ssm(&["--asg", "a", "--bucket", "bkt", "--opt-in-tag", ""]).unwrap();
    assert_eq!(plan.opt_in, None);
    let plan = ssm(&["--asg", "a", "--bucket", "bkt"]).unwrap();
    assert_eq!(plan.opt_in, Some(("flamefire".into(), "enabled".into())));
}

#[test]
fn prefix_is_normalised() {
    assert_eq!(normalise_prefix("flamefire").unwrap(), "flamefire/");
    assert_eq!(normalise_prefix("a/b/").unwrap(), "a/b/");
    assert_eq!(normalise_prefix("").unwrap(), "");
    for bad in ["/a", "-o/x", "a/../b", "a//b", ".hidden/", "a b/"] {
        assert!(normalise_prefix(bad).is_err(), "{bad}");
    }
}

#[test]
fn run_ids_match_the_documents_pattern() {
    let id = new_run_id(SystemTime::now());
    document::embedded()
        .unwrap()
        .check("RunId", &id, "--run-id")
        .unwrap();
}
