//! The script parses and runs under every host shell the agent can meet, as
//! `sh -c _script.sh`: bash 4.2 (Amazon Linux 2, CentOS 7) and 4.4 (RHEL 8)
//! in POSIX mode as `sh` and as `bash`, this machine's bash as `sh`, dash
//! (Debian, Ubuntu), and bash directly. Real perf, real Node: every run must
//! record and deliver.
//!
//! Regression (issue 8 §1): bash < 5.1 in POSIX mode refuses process
//! substitution, and `BASH_VERSION` is set there, so the old re-exec guard
//! never fired and every Amazon Linux 2 host failed with a syntax error.

use std::path::PathBuf;

use crate::agent::{AgentRun, Shells, describe, old_bash};
use crate::support::{NodeApp, require};

fn records_and_delivers(shells: Shells) {
    require("perf");
    let app = NodeApp::start("sick", 2, &["--perf-basic-prof"]);
    let run = AgentRun::local(shells.clone(), &app.pids, 2);
    let out = run.run();
    assert!(out.status.success(), "{shells:?}: {}", describe(&out));
    let meta = run.meta();
    assert!(
        meta["samples"].as_u64().unwrap_or(0) > 20,
        "{shells:?}: too few samples: {meta}\n{}",
        describe(&out)
    );
    assert_eq!(meta["targets"].as_array().unwrap().len(), app.pids.len());
    assert_eq!(meta["event"], "cpu-clock");
    let stacks = run.stacks();
    assert!(
        stacks.contains("tokenizeHtml"),
        "{shells:?}: the hot JS function is in the stacks"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("syntax error") && !stderr.contains("unbound variable"),
        "{shells:?}: {stderr}"
    );
}

#[test]
fn bash_4_2_as_sh_and_bash_amazon_linux_2() {
    records_and_delivers(Shells::same(old_bash("4.2")));
}

#[test]
fn bash_4_4_as_sh_and_bash_rhel_8() {
    records_and_delivers(Shells::same(old_bash("4.4")));
}

#[test]
fn this_machines_bash_as_sh() {
    records_and_delivers(Shells::same(PathBuf::from("/bin/bash")));
}

#[test]
fn dash_as_sh_debian_ubuntu() {
    records_and_delivers(Shells::debian());
}

#[test]
fn bash_directly() {
    require("perf");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let run = AgentRun::local(Shells::same(PathBuf::from("/bin/bash")), &app.pids, 1);
    // Not `sh -c`: bash runs the file itself, as `flamefire local` does.
    let cmd = run.command();
    let script = run.out().join("../_script.sh");
    let out = std::process::Command::new("/bin/bash")
        .arg(&script)
        .current_dir(run.out())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(run.meta()["samples"].as_u64().unwrap_or(0) > 0);
}

/// bash started in POSIX mode through the environment must still leave it
/// (the re-exec drops POSIXLY_CORRECT, and `set +o posix` follows).
#[test]
fn posixly_correct_in_the_environment_does_not_break_the_script() {
    require("perf");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let mut run = AgentRun::local(Shells::same(old_bash("4.2")), &app.pids, 1);
    run.env.insert("POSIXLY_CORRECT".into(), "1".into());
    let out = run.run();
    assert!(out.status.success(), "{}", describe(&out));
}

/// The deployed script is the commented source without its comment lines
/// (scripts/build-document.sh): the two never drift apart.
#[test]
fn the_document_script_is_its_source_without_comments() {
    let source =
        std::fs::read_to_string(crate::support::repo().join("ssm-documents/flamefire-record.sh"))
            .expect("ssm-documents/flamefire-record.sh");
    let mut expected = String::new();
    for (i, line) in source.lines().enumerate() {
        if i >= 2 && line.trim_start().starts_with('#') {
            continue;
        }
        expected.push_str(line);
        expected.push('\n');
    }
    let deployed = &flamefire::document::embedded().unwrap().script;
    assert!(
        *deployed == expected,
        "ssm-documents/flamefire-record.yaml is out of date with flamefire-record.sh: run scripts/build-document.sh"
    );
    // SSM's 64 KB document limit counts runtime parameters: keep room for
    // the largest presigned POST (policy 8 KB, session token 4 KB).
    assert!(
        flamefire::document::YAML.len() < 50 * 1024,
        "the document is {} bytes; SSM allows 64 KB including parameter values",
        flamefire::document::YAML.len()
    );
}
