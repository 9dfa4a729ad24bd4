//! The perf layout corpus (issue 10): `tests/data/corpus/NAME.perf.gz`,
//! real `perf script` output in every layout that `-F`, `--ns`, `--header`,
//! several events, a tracepoint and recording without call graphs give (see
//! that directory's README.md). Each must fold to
//! `tests/data/corpus/expected/NAME.folded`, with every sample accounted for.
//!
//! The expected files come from [`reference`] below, a deliberately plain
//! folder that shares no code with `src/` and reads event lines another way
//! (whitespace tokens, from the event name leftwards, where `src/` anchors
//! on `": "`). So the two can disagree, and a disagreement fails the test.
//! A missing expected file fails too; only `FLAMEFIRE_BLESS=1` writes them,
//! from the reference, never from `src/`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use flamefire::collapse::Folded;
use flamefire::stacks;
use predicates::prelude::*;

use crate::support::{flamefire, repo};

fn corpus_dir() -> PathBuf {
    repo().join("tests/data/corpus")
}

fn corpus() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "cannot list {}: {e} (see scripts/record-corpus.sh)",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".perf.gz"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "the corpus in {} is incomplete",
        dir.display()
    );
    paths
}

fn name_of(path: &Path) -> String {
    let file = path.file_name().unwrap().to_string_lossy();
    file.strip_suffix(".perf.gz").unwrap().to_string()
}

fn text_of(path: &Path) -> String {
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn folded_text(stacks: &BTreeMap<String, u64>) -> String {
    stacks.iter().map(|(s, n)| format!("{s} {n}\n")).collect()
}

fn src_text(folded: &Folded) -> String {
    let mut out = Vec::new();
    folded.write_to(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn corpus_folds_to_the_reference_stacks() {
    let bless = std::env::var_os("FLAMEFIRE_BLESS").is_some_and(|v| v == "1");
    let expected_dir = corpus_dir().join("expected");
    let mut failures = Vec::new();
    for path in corpus() {
        let name = name_of(&path);
        let reference = reference(&text_of(&path));
        let expected_path = expected_dir.join(format!("{name}.folded"));
        if bless {
            std::fs::create_dir_all(&expected_dir).unwrap();
            std::fs::write(&expected_path, folded_text(&reference.stacks)).unwrap();
            eprintln!(
                "wrote {} from the reference folder",
                expected_path.display()
            );
        }
        let Ok(expected) = std::fs::read_to_string(&expected_path) else {
            failures.push(format!(
                "{} is missing: run FLAMEFIRE_BLESS=1 cargo test corpus and read it before committing",
                expected_path.display()
            ));
            continue;
        };
        if folded_text(&reference.stacks) != expected {
            failures.push(format!(
                "{name}: the reference folder no longer gives {}",
                expected_path.display()
            ));
        }
        let folded = match stacks::file(&path) {
            Ok(folded) => folded,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let actual = src_text(&folded);
        if actual != expected {
            let line = actual
                .lines()
                .zip(expected.lines())
                .position(|(a, e)| a != e)
                .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
            failures.push(format!(
                "{name}: flamefire differs from {} at line {} ({:?} vs {:?})",
                expected_path.display(),
                line + 1,
                actual.lines().nth(line),
                expected.lines().nth(line)
            ));
        }
        // every sample of the folded event type is accounted for
        assert_eq!(folded.sample_count, reference.samples, "{name}");
        assert_eq!(folded.samples, reference.samples, "{name}");
        assert_eq!(
            folded.event.as_deref(),
            Some(reference.event.as_str()),
            "{name}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn timestamps_come_from_the_same_pass() {
    for name in [
        "default",
        "ns",
        "header",
        "one-line",
        "two-events",
        "tracepoint",
        "java",
    ] {
        let path = corpus_dir().join(format!("{name}.perf.gz"));
        let folded = stacks::file(&path).unwrap();
        let map = flamefire::heatmap::of(&folded).unwrap_or_else(|| panic!("{name} has times"));
        assert_eq!(map.samples, folded.sample_count, "{name}");
    }
    for name in ["no-time", "minimal"] {
        let folded = stacks::file(&corpus_dir().join(format!("{name}.perf.gz"))).unwrap();
        assert!(flamefire::heatmap::of(&folded).is_none(), "{name}");
    }
}

#[test]
fn the_second_event_type_is_chosen_with_event_and_named_in_the_output() {
    let path = corpus_dir().join("two-events.perf.gz");
    let text = text_of(&path);
    let cpu = text.lines().filter(|l| l.contains(" cpu-clock:u:")).count() as u64;
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args(["render", "--event", "cpu-clock", "--out"])
        .arg(out.path())
        .arg(&path)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("folded cpu-clock:u")
                .and(predicate::str::contains("page-faults")),
        );
    let folded = std::fs::read_to_string(out.path().join("two-events.folded")).unwrap();
    let samples: u64 = folded
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(samples, cpu);
    let svg = std::fs::read_to_string(out.path().join("two-events.svg")).unwrap();
    assert!(
        svg.contains(&format!("{cpu} samples of cpu-clock:u (1 per sample)")),
        "the subtitle names the event and weight"
    );

    // --weight period states it too
    let out = tempfile::tempdir().unwrap();
    flamefire()
        .args(["render", "--weight", "period", "--out"])
        .arg(out.path())
        .arg(corpus_dir().join("default.perf.gz"))
        .assert()
        .success();
    let svg = std::fs::read_to_string(out.path().join("default.svg")).unwrap();
    assert!(svg.contains("cpu-clock:ppp weighted by period"), "subtitle");
    let report = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        report.contains("sample period"),
        "report.html names the weight"
    );

    flamefire()
        .args(["render", "--event", "cycles", "--out"])
        .arg(out.path())
        .arg(&path)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no `cycles` samples")
                .and(predicate::str::contains("`cpu-clock:u`")),
        );
}

#[test]
fn a_file_without_event_lines_is_a_format_error_not_an_empty_profile() {
    // Regression (issue 10): a `--header` file whose events were lost, or
    // any other text, used to "hold no samples" with advice to record longer.
    let dir = tempfile::tempdir().unwrap();
    let header: String = text_of(&corpus_dir().join("header.perf.gz"))
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.path().join("mangled.perf");
    std::fs::write(
        &path,
        format!("{header}this is not perf output\n\tneither is this\n"),
    )
    .unwrap();
    let line = header.lines().count() + 1;
    flamefire()
        .args(["render", "--out"])
        .arg(dir.path())
        .arg(&path)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(format!("mangled.perf:{line}"))
                .and(predicate::str::contains("this is not perf output"))
                .and(predicate::str::contains("expected `perf script` output"))
                .and(predicate::str::contains("record for longer").not()),
        );
}

/// What the reference folder makes of a file.
struct Reference {
    event: String,
    samples: u64,
    stacks: BTreeMap<String, u64>,
}

/// A plain `perf script` folder, for the corpus only: the first event type,
/// one count per sample, frames named as documented in src/collapse/mod.rs (and names.rs).
fn reference(text: &str) -> Reference {
    let mut stacks = BTreeMap::new();
    let mut first_event: Option<String> = None;
    let mut samples = 0;
    // (comm, event, frames leaf first) of the event being read
    let mut current: Option<(String, String, Vec<String>)> = None;
    let mut finish = |current: Option<(String, String, Vec<String>)>, first: &Option<String>| {
        let Some((comm, event, frames)) = current else {
            return;
        };
        if Some(&event) != first.as_ref() {
            return;
        }
        let mut parts: Vec<String> = Vec::new();
        if !comm.is_empty() {
            parts.push(comm.replace([' ', ';'], "_"));
        }
        parts.extend(frames.into_iter().rev());
        if parts.is_empty() {
            parts.push("[unknown]".into());
        }
        *stacks.entry(parts.join(";")).or_insert(0) += 1;
        samples += 1;
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            finish(current.take(), &first_event);
            continue;
        }
        if let Some((comm, _, frames)) = &mut current {
            if let Some(name) = reference_frame(line.trim(), comm) {
                frames.push(name);
                continue;
            }
        }
        let (comm, event, rest) =
            reference_event(line).unwrap_or_else(|| panic!("reference: not understood: {line}"));
        finish(current.take(), &first_event);
        first_event.get_or_insert_with(|| event.clone());
        let mut frames = Vec::new();
        if let Some(name) = reference_frame(&rest, &comm) {
            frames.push(name);
        }
        current = Some((comm, event, frames));
    }
    finish(current.take(), &first_event);
    Reference {
        event: first_event.unwrap_or_default(),
        samples,
        stacks,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// `comm pid[/tid] [cpu] time: period event: rest` with any field missing →
/// (comm, event, rest): the event is the first word that ends in `:` and
/// holds a letter; the words before it are read from the right.
fn reference_event(line: &str) -> Option<(String, String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.ends_with(':') && w.chars().any(|c| c.is_ascii_alphabetic()))?;
    let event = words[at].trim_end_matches(':').to_string();
    let rest = words[at + 1..].join(" ");
    let mut before: Vec<&str> = words[..at].to_vec();
    let is_time = |w: &str| {
        w.strip_suffix(':')
            .and_then(|t| t.split_once('.'))
            .is_some_and(|(s, f)| is_digits(s) && is_digits(f))
    };
    let is_cpu = |w: &str| w.starts_with('[') && w.ends_with(']') && is_digits(&w[1..w.len() - 1]);
    let is_pid = |w: &str| w.split('/').all(is_digits) && w.split('/').count() <= 2;
    // The period is the number right before the event after a time; with no
    // time, a number there is the pid unless it cannot be one (above
    // PID_MAX_LIMIT, 2^22) or a cpu or pid/tid comes before it.
    if before.len() >= 2 && is_digits(before[before.len() - 1]) {
        let previous = before[before.len() - 2];
        let big = before[before.len() - 1].parse::<u64>().unwrap() > 1 << 22;
        if is_time(previous)
            || is_cpu(previous)
            || (is_pid(previous) && previous.contains('/'))
            || big
        {
            before.pop();
        }
    }
    if before.last().is_some_and(|w| is_time(w)) {
        before.pop();
    }
    if before.last().is_some_and(|w| is_cpu(w)) {
        before.pop();
    }
    if before.last().is_some_and(|w| is_pid(w)) {
        before.pop();
    }
    Some((before.join(" "), event, rest))
}

/// `ip [sym[+0xoff]] [(dso)]` → the frame's name, or `None` if not a frame.
fn reference_frame(line: &str, comm: &str) -> Option<String> {
    let (ip, rest) = line.split_once(' ').unwrap_or((line, ""));
    if ip.is_empty()
        || !ip
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return None;
    }
    let rest = rest.trim();
    let (mut sym, dso) = match rest.strip_suffix(')') {
        Some(open) => match open.rfind('(') {
            Some(i) => (open[..i].trim(), Some(&open[i + 1..])),
            None => (rest, None),
        },
        None => (rest, None),
    };
    if let Some(i) = sym.rfind("+0x") {
        if sym[i + 3..].chars().all(|c| c.is_ascii_hexdigit()) {
            sym = &sym[..i];
        }
    }
    let perf_map = |d: &str| d.starts_with("/tmp/perf-") && d.ends_with(".map");
    let mut name = if sym.is_empty() || sym == "[unknown]" {
        match dso {
            Some(d) if d.starts_with('[') && d.ends_with(']') && d != "[unknown]" => d.to_string(),
            Some(d) if d != "[unknown]" && !perf_map(d) => {
                format!("[{}]", d.rsplit('/').next().unwrap())
            }
            _ => "[unknown]".to_string(),
        }
    } else {
        let mut s = sym.to_string();
        if comm.starts_with("java") && s.starts_with('L') && s.contains('/') {
            s.remove(0);
        }
        s = s.replace(';', ":");
        // drop an argument list at nesting depth 0, unless it is Go's
        // `.(` or C++'s `(anonymous namespace)`
        let mut depth = 0;
        let mut cut = None;
        let chars: Vec<char> = s.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            match c {
                '<' | '{' | '[' => depth += 1,
                '>' | '}' | ']' | ')' => depth -= 1,
                '(' => {
                    let go = i > 0 && chars[i - 1] == '.';
                    let anonymous = chars[i..]
                        .iter()
                        .collect::<String>()
                        .starts_with("(anonymous namespace)");
                    if depth == 0 && !go && !anonymous {
                        cut = Some(i);
                        break;
                    }
                    depth += 1;
                }
                _ => {}
            }
        }
        if let Some(i) = cut {
            s = chars[..i].iter().collect();
        }
        s
    };
    match dso {
        Some("inlined") => name.push_str("_[i]"),
        Some(d)
            if (d.starts_with('[') && d != "[unknown]")
                || d.ends_with(".ko")
                || d.contains("vmlinux") =>
        {
            name.push_str("_[k]")
        }
        Some(d) if perf_map(d) => name.push_str("_[j]"),
        _ => {}
    }
    Some(name)
}
