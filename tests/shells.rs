//! The script parses and runs under every shell Debian ships that a host
//! may have as `/bin/sh`, started as the agent starts it (`sh -c
//! _script.sh`): dash (Debian, Ubuntu), bash as `sh` and `bash --posix`
//! (Amazon Linux, RHEL), busybox sh and mksh, and bash directly. Real perf,
//! real Node: every run must record and deliver.
//!
//! Old bash (4.2 on Amazon Linux 2 and CentOS 7, 4.4 on RHEL 8) is not
//! installable here, and a binary built from a fetched repository must not
//! be kept (issue 16): instead, a static check refuses every construct that
//! bash's own NEWS (shipped with Debian's bash) lists after 4.2.
//!
//! Regression (issue 8 §1): bash < 5.1 in POSIX mode refuses process
//! substitution, and `BASH_VERSION` is set there, so the old re-exec guard
//! never fired and every Amazon Linux 2 host failed with a syntax error.

use std::path::{Path, PathBuf};

use crate::agent::{AgentRun, Shells, describe};
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

/// A Debian package's shell, or a failure that says how to install it.
fn debian_shell(path: &str, package: &str) -> PathBuf {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: run scripts/test.sh (scripts/bootstrap.sh --for-tests installs Debian's {package})"
    );
    PathBuf::from(path)
}

/// `bash --posix` as `/bin/sh` (bash as `sh` also starts in POSIX mode;
/// this is the explicit flag, through a wrapper, as a host's sh may be).
fn bash_posix_wrapper(dir: &Path) -> PathBuf {
    let wrapper = dir.join("bash-posix");
    std::fs::write(&wrapper, "#!/bin/bash\nexec /bin/bash --posix \"$@\"\n").unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    wrapper
}

#[test]
fn bash_posix_as_sh_amazon_linux_rhel() {
    let dir = tempfile::tempdir().unwrap();
    records_and_delivers(Shells {
        sh: bash_posix_wrapper(dir.path()),
        bash: PathBuf::from("/bin/bash"),
    });
}

#[test]
fn busybox_sh_as_sh() {
    records_and_delivers(Shells {
        sh: debian_shell("/bin/busybox", "busybox"),
        bash: PathBuf::from("/bin/bash"),
    });
}

#[test]
fn mksh_as_sh() {
    records_and_delivers(Shells {
        sh: debian_shell("/bin/mksh", "mksh"),
        bash: PathBuf::from("/bin/bash"),
    });
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
    let mut run = AgentRun::local(Shells::same(PathBuf::from("/bin/bash")), &app.pids, 1);
    run.env.insert("POSIXLY_CORRECT".into(), "1".into());
    let out = run.run();
    assert!(out.status.success(), "{}", describe(&out));
}

/// The deployed script is the commented source without its comment lines
/// and indentation (scripts/build-document.sh): bash must parse the same
/// program from both. `declare -f` prints a function as bash parsed it, so
/// the whole text, wrapped in one function, compares parsed programs: a
/// changed command, a dropped line or whitespace lost inside a multi-line
/// string shows; comments and indentation do not.
#[test]
fn the_document_script_is_its_source_without_comments() {
    let source =
        std::fs::read_to_string(crate::support::repo().join("ssm-documents/flamefire-record.sh"))
            .expect("ssm-documents/flamefire-record.sh");
    let deployed = &flamefire::document::embedded().unwrap().script;
    let (parsed_source, parsed_deployed) = (parsed(&source), parsed(deployed));
    assert!(
        parsed_source == parsed_deployed,
        "ssm-documents/flamefire-record.yaml is out of date with flamefire-record.sh: run scripts/build-document.sh"
    );
    // The canary: a one-word change must show.
    assert_ne!(
        parsed(&deployed.replacen("exit 1", "exit 9", 1)),
        parsed_deployed
    );
    // The deployed text has no comment line but the first two and
    // ShellCheck's directives, and no indentation.
    for line in deployed.lines().skip(2) {
        assert!(
            (!line.starts_with('#') || line.starts_with("# shellcheck disable="))
                && !line.starts_with([' ', '\t']),
            "the deployed script keeps a comment or indentation: {line:?}"
        );
    }
}

/// `text` as bash parses it: wrapped in a function and printed by `declare -f`.
fn parsed(text: &str) -> String {
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            "eval \"__flamefire_whole() {\n$1\n}\" && declare -f __flamefire_whole",
            "_",
            text,
        ])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash could not parse the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A construct that bash added after 4.2, with the entry of bash's own NEWS
/// (`/usr/share/doc/bash/NEWS.gz` in Debian's bash) that says so, and an
/// example that the rule must catch (so that the check can fail).
struct After42 {
    what: &'static str,
    news: &'static str,
    pattern: &'static str,
    example: &'static str,
}

const AFTER_4_2: &[After42] = &[
    After42 {
        what: "nameref (declare/local/typeset/unset -n)",
        news: "bash-4.3 NEWS, new features w",
        pattern: r"\b(declare|local|typeset|unset)\s+-[A-Za-z]*n",
        example: "local -n ref=$1",
    },
    After42 {
        what: "negative array subscript",
        news: "bash-4.3 NEWS, new features x",
        pattern: r"\[\s*-\s*[0-9]+\s*\]",
        example: "echo ${a[-1]}",
    },
    After42 {
        what: "wait -n (or -p, -f)",
        news: "bash-4.3 NEWS, new features cc; bash-5.1 NEWS q",
        pattern: r"\bwait\s+-[A-Za-z]*[npf]",
        example: "wait -n",
    },
    After42 {
        what: "test -v on an array element",
        news: "bash-4.3 NEWS, new features ll",
        pattern: r"-v\s+[A-Za-z_][A-Za-z0-9_]*\[",
        example: "[[ -v seen[$pid] ]]",
    },
    After42 {
        what: "${parameter@operator} transformations",
        news: "bash-4.4 NEWS, new features o",
        pattern: r"\$\{[^}]*@[QEPAaKkUuL]\}",
        example: "echo ${x@Q}",
    },
    After42 {
        what: "mapfile/readarray -d",
        news: "bash-4.4 NEWS, new features d",
        pattern: r"\b(mapfile|readarray)\b[^;|&]*\s-[A-Za-z]*d",
        example: "mapfile -d '' -t arr",
    },
    After42 {
        what: "local -",
        news: "bash-4.4 NEWS, new features s",
        pattern: r"\blocal\s+-(\s|;|$)",
        example: "local -",
    },
    After42 {
        what: "$EPOCHSECONDS / $EPOCHREALTIME",
        news: "bash-5.0 NEWS, new features b",
        pattern: r"EPOCH(SECONDS|REALTIME)",
        example: "echo $EPOCHSECONDS",
    },
    After42 {
        what: "BASH_ARGV0",
        news: "bash-5.0 NEWS, new features e",
        pattern: r"BASH_ARGV0",
        example: "BASH_ARGV0=x",
    },
    After42 {
        what: "`&` in a ${x/pattern/replacement} (patsub_replacement changes its meaning)",
        news: "bash-5.2 NEWS, new features x",
        pattern: r"\$\{[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?//?[^}/]*/[^}]*&|patsub_replacement",
        example: "echo ${x//a/&&}",
    },
];

/// Process substitution in POSIX mode arrived in bash 5.1 (NEWS, new
/// features u): before the script leaves POSIX mode (`set +o posix`, after
/// its re-exec into plain bash), `<(` and `>(` are syntax errors on bash 4.2.
const POSIX_PART_END: &str = "set +o posix";

fn constructs_after_4_2(script: &str) -> Vec<String> {
    let rules: Vec<(regex::Regex, &After42)> = AFTER_4_2
        .iter()
        .map(|r| (regex::Regex::new(r.pattern).unwrap(), r))
        .collect();
    let mut found = Vec::new();
    let mut posix_part = true;
    for (n, line) in script.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with('#') {
            continue;
        }
        if code == POSIX_PART_END {
            posix_part = false;
        }
        if posix_part && (code.contains("<(") || code.contains(">(")) {
            found.push(format!(
                "line {}: process substitution while bash may be in POSIX mode (bash-5.1 NEWS u): {code}",
                n + 1
            ));
        }
        for (re, rule) in &rules {
            if re.is_match(code) {
                found.push(format!(
                    "line {}: {} ({}): {code}",
                    n + 1,
                    rule.what,
                    rule.news
                ));
            }
        }
    }
    found
}

/// Issue 16 §4: the script keeps to what bash 4.2 has (Amazon Linux 2,
/// CentOS 7), checked against bash's own record of each release.
#[test]
fn the_script_uses_nothing_that_bash_added_after_4_2() {
    for rule in AFTER_4_2 {
        assert!(
            !constructs_after_4_2(rule.example).is_empty(),
            "the rule for {} does not catch its own example {:?}",
            rule.what,
            rule.example
        );
    }
    assert!(
        !constructs_after_4_2("cat <(true)\nset +o posix\n").is_empty(),
        "process substitution before `set +o posix` is caught"
    );
    let source =
        std::fs::read_to_string(crate::support::repo().join("ssm-documents/flamefire-record.sh"))
            .unwrap();
    assert!(
        source.lines().any(|l| l.trim() == POSIX_PART_END),
        "the script leaves POSIX mode with `{POSIX_PART_END}` after its re-exec"
    );
    let found = constructs_after_4_2(&source);
    assert!(
        found.is_empty(),
        "ssm-documents/flamefire-record.sh uses what bash 4.2 lacks:\n{}",
        found.join("\n")
    );
}
