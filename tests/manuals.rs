//! Shell completions and man pages, generated through the real binary.
//!
//! The list of subcommands is read from `flamefire --help`, not from `src/`,
//! so that a subcommand the generators leave out fails here.

use std::process::Command;

use crate::support::flamefire;

/// Subcommand names as `--help` lists them under "Commands:" (without `help`).
fn subcommands() -> Vec<String> {
    let out = flamefire().arg("--help").output().expect("flamefire runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("help is UTF-8");
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    for expected in ["local", "ssm", "doctor", "completions", "man"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from the parsed --help list {names:?}:\n{help}"
        );
    }
    names
}

fn stdout_of(args: &[&str]) -> String {
    let out = flamefire().args(args).output().expect("flamefire runs");
    assert!(
        out.status.success(),
        "flamefire {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "results only on stdout");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn completions_cover_every_subcommand_in_bash_zsh_and_fish() {
    let names = subcommands();
    let bash = stdout_of(&["completions", "bash"]);
    let zsh = stdout_of(&["completions", "zsh"]);
    let fish = stdout_of(&["completions", "fish"]);
    for name in &names {
        // How each generator names a subcommand: bash's `case` on the words
        // so far, zsh's `'name:description'` list, fish's `-a "name"`.
        assert!(bash.contains(&format!("flamefire,{name})")), "bash: {name}");
        assert!(zsh.contains(&format!("'{name}:")), "zsh: {name}");
        assert!(fish.contains(&format!("-a \"{name}\"")), "fish: {name}");
    }
    // Options of a subcommand are completed too.
    for script in [&bash, &zsh, &fish] {
        assert!(script.contains("baseline-tag"));
    }
    // The bash script is valid bash.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &bash).expect("write");
    let status = Command::new("bash")
        .arg("-n")
        .arg(file.path())
        .status()
        .expect("bash runs");
    assert!(status.success(), "bash -n rejects the completion script");

    flamefire()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bash"));
}

#[test]
fn man_page_lists_every_subcommand_and_dir_writes_one_page_each() {
    let names = subcommands();
    let page = stdout_of(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH flamefire 1"),
        "roff"
    );
    for name in &names {
        // clap_mangen lists subcommands as `flamefire\-NAME(1)` (roff escapes `-`).
        assert!(
            page.contains(&format!("flamefire\\-{name}(1)")),
            "man page lacks {name}"
        );
    }
    assert!(page.contains("FLAMEFIRE_BUCKET") || page.contains("130"));

    let dir = tempfile::tempdir().expect("temp dir");
    let listed = stdout_of(&["man", "--dir", dir.path().to_str().expect("utf-8 path")]);
    let mut expected = vec![dir.path().join("flamefire.1")];
    expected.extend(
        names
            .iter()
            .map(|n| dir.path().join(format!("flamefire-{n}.1"))),
    );
    for path in &expected {
        assert!(path.is_file(), "{} not written", path.display());
        assert!(
            listed.lines().any(|l| l == path.to_str().unwrap()),
            "{} not printed",
            path.display()
        );
    }
    let ssm = std::fs::read_to_string(dir.path().join("flamefire-ssm.1")).expect("read");
    assert!(
        ssm.contains("baseline\\-tag"),
        "subcommand pages hold its options"
    );
}
