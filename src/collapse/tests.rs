//! Collapse end to end: bytes in, `Folded` or `CollapseError` out.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::blocks::{BLOCK_BYTES, last_event_start};
use super::pick::event_matches;
use super::*;

/// Collapses the file at `path` as a caller would.
fn file(path: &Path) -> Result<Folded, CollapseError> {
    collapse(path, &Select::default(), cores())
}

fn file_with(path: &Path, select: &Select) -> Result<Folded, CollapseError> {
    collapse(path, select, cores())
}

fn file_window(path: &Path, window: Window) -> Result<Folded, CollapseError> {
    let select = Select {
        window,
        ..Select::default()
    };
    collapse(path, &select, cores())
}

fn collapse(path: &Path, select: &Select, threads: usize) -> Result<Folded, CollapseError> {
    read_on(path, File::open(path).unwrap(), select, threads)
}

const PERF: &str = "\
# ========
# captured on: today
# ========
node  9495   10.000000:   10101010 cpu-clock:ppp: 
\t    7f5b867c66e2 JS:*tokenizeHtml /app/work.js:1:22+0x322 (/tmp/perf-9495.map)
\t    7f5b867c6000 JS:*parseHtmlDocument /app/work.js:2:27+0x10 (/tmp/perf-9495.map)
\t          866cc8 node::Start+0x154 (/usr/bin/node)

node  9495   10.010101:   10101010 cpu-clock:ppp: 
\tffffffff8103ce3b native_safe_halt ([kernel.kallsyms])
\t          866cc8 node::Start+0x154 (/usr/bin/node)

node  9495   12.500000:   10101010 cpu-clock:ppp: 
\t    7f5b867c66e2 JS:*tokenizeHtml /app/work.js:1:22+0x322 (/tmp/perf-9495.map)
\t    7f5b867c6000 JS:*parseHtmlDocument /app/work.js:2:27+0x10 (/tmp/perf-9495.map)
\t          866cc8 node::Start+0x154 (/usr/bin/node)

";

const TOKENIZE: &str = "node;node::Start;JS:*parseHtmlDocument /app/work.js:2:27_[j];JS:*tokenizeHtml /app/work.js:1:22_[j]";

const HALT: &str = "node;node::Start;native_safe_halt_[k]";

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn perf_expected(name: &str) -> Folded {
    Folded::new(name, [(TOKENIZE.to_string(), 2), (HALT.to_string(), 1)])
}

#[test]
fn perf_script_counts_samples_not_periods_and_annotates_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "app.perf", PERF.as_bytes());
    assert_eq!(file(&path).unwrap().stacks, perf_expected("app").stacks);
}

#[test]
fn gzip_is_detected_by_magic_bytes_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "app.perf", &gzip(PERF.as_bytes()));
    assert_eq!(file(&path).unwrap().stacks, perf_expected("app").stacks);
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = PERF.split_at(PERF.find("node  9495   12.5").unwrap());
    let mut bytes = gzip(first.as_bytes());
    bytes.extend(gzip(second.as_bytes()));
    let path = write(&dir, "app.perf.gz", &bytes);
    assert_eq!(file(&path).unwrap().stacks, perf_expected("app").stacks);
}

#[test]
fn folded_input_is_detected_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    let text = "# comment\nnode;b;c 3\nnode;a 1\n\nnode;b;c 2\n";
    for (name, bytes) in [
        ("x.folded", text.as_bytes().to_vec()),
        ("y.folded.gz", gzip(text.as_bytes())),
    ] {
        let path = write(&dir, name, &bytes);
        let folded = file(&path).unwrap();
        assert_eq!(
            folded.stacks,
            vec![("node;a".to_string(), 1), ("node;b;c".to_string(), 5)]
        );
        assert_eq!(folded.samples, 6);
    }
}

#[test]
fn window_keeps_events_by_offset_from_first_sample() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "app.perf", PERF.as_bytes());
    let early = Window {
        from_s: None,
        to_s: Some(1.0),
    };
    let folded = file_window(&path, early).unwrap();
    assert_eq!(
        folded.stacks,
        vec![(TOKENIZE.to_string(), 1), (HALT.to_string(), 1)]
    );
    let late = Window {
        from_s: Some(2.0),
        to_s: None,
    };
    assert_eq!(
        file_window(&path, late).unwrap().stacks,
        vec![(TOKENIZE.to_string(), 1)]
    );
    let after = Window {
        from_s: Some(60.0),
        to_s: None,
    };
    assert!(matches!(
        file_window(&path, after),
        Err(CollapseError::Empty { .. })
    ));
}

#[test]
fn window_needs_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let window = Window {
        from_s: Some(1.0),
        to_s: None,
    };
    let folded = write(&dir, "x.folded", b"a;b 1\n");
    assert!(matches!(
        file_window(&folded, window),
        Err(CollapseError::NoTimestamps { .. })
    ));
    let untimed = write(
        &dir,
        "x.perf",
        b"node 9495 cpu-clock:\n\t866cc8 node::Start+0x154 (/usr/bin/node)\n\n",
    );
    assert!(file(&untimed).is_ok());
    assert!(matches!(
        file_window(&untimed, window),
        Err(CollapseError::NoTimestamps { .. })
    ));
}

#[test]
fn single_line_events_without_call_graphs_are_folded() {
    let dir = tempfile::tempdir().unwrap();
    let text = "node 1 1.0: 1 cpu-clock:  866cc8 node::Start+0x154 (/usr/bin/node)\n\
                node 1 1.1: 1 cpu-clock:  866cc8 node::Start+0x154 (/usr/bin/node)\n";
    let path = write(&dir, "flat.perf", text.as_bytes());
    assert_eq!(
        file(&path).unwrap().stacks,
        vec![("node;node::Start".to_string(), 2)]
    );
}

#[test]
fn corrupt_gzip_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let whole = gzip(PERF.repeat(50).as_bytes());
    let path = write(&dir, "cut.perf.gz", &whole[..whole.len() / 2]);
    let error = file(&path).unwrap_err();
    assert!(
        matches!(error, CollapseError::CorruptGzip { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("re-download or re-record"));
}

#[test]
fn empty_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.perf", Vec::new()),
        ("empty.perf.gz", gzip(b"")),
        ("comments.perf", b"# header only\n\n".to_vec()),
    ] {
        let path = write(&dir, name, &bytes);
        let error = file(&path).unwrap_err();
        assert!(
            matches!(error, CollapseError::Empty { .. }),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn unrecognised_input_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "notes.txt", b"\nhello world\n");
    let error = file(&path).unwrap_err();
    assert!(
        matches!(&error, CollapseError::Unrecognised { line: 2, snippet, .. } if snippet == "hello world"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("notes.txt:2"), "{message}");
    assert!(message.contains("expected `perf script` output or folded stacks"));
    assert!(!message.contains("record for longer"), "{message}");

    // Regression (issue 10): a header comment is never an event line,
    // and a file with no event line is a format error naming its line.
    let header = write(
        &dir,
        "header.perf",
        b"# ========\n# captured on: Sun Oct 25 23:31:43 2015\n# ========\n#\nsome text here\n\tnot a frame\n",
    );
    let error = file(&header).unwrap_err();
    assert!(
        matches!(&error, CollapseError::Unrecognised { line: 5, snippet, .. } if snippet == "some text here"),
        "{error:?}"
    );

    let late = write(
        &dir,
        "late.folded",
        format!("{}oops\n", "a;b 1\n".repeat(40)).as_bytes(),
    );
    assert!(matches!(
        file(&late),
        Err(CollapseError::Unrecognised { line: 41, .. })
    ));
}

#[test]
fn threads_fold_blocks_like_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    // several blocks, so that cuts between events are exercised
    let repeats = 3 * BLOCK_BYTES / PERF.len();
    let path = write(&dir, "big.perf", PERF.repeat(repeats).as_bytes());
    let single = collapse(&path, &Select::default(), 1).unwrap();
    let multi = collapse(&path, &Select::default(), 3).unwrap();
    assert_eq!(single, multi);
    assert_eq!(single.samples, 3 * repeats as u64);

    // the window's origin is the input's first event, in every block
    let window = Window {
        from_s: Some(1.0),
        to_s: None,
    };
    let late = collapse(
        &path,
        &Select {
            window,
            ..Select::default()
        },
        3,
    )
    .unwrap();
    assert_eq!(
        late,
        collapse(
            &path,
            &Select {
                window,
                ..Select::default()
            },
            1
        )
        .unwrap()
    );
    assert_eq!(late.samples, repeats as u64);
}

#[test]
fn an_event_bigger_than_a_block_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let frame = "\t866cc8 deep+0x1 (/usr/bin/node)\n";
    let depth = BLOCK_BYTES / frame.len() + 10;
    let text = format!(
        "{PERF}node 1 20.0: 1 cpu-clock:ppp:\n{}\n{PERF}",
        frame.repeat(depth)
    );
    let path = write(&dir, "deep.perf", text.as_bytes());
    for threads in [1, 3] {
        let folded = collapse(&path, &Select::default(), threads).unwrap();
        assert_eq!(folded.samples, 7);
        let deep = folded.stacks.iter().find(|(s, _)| s.ends_with(";deep"));
        assert_eq!(deep.unwrap().0.matches(";deep").count(), depth);
    }
    assert_eq!(
        last_event_start(b"node 1 1.0: c:\n\tframe\n\tframe\n"),
        None
    );
    let two = b"node 1 1.0: c:\n\tframe\nnode 2 2.0: c:\n\tfr";
    assert_eq!(last_event_start(two), Some(22));
    assert_eq!(
        last_event_start(b"a 1 1.0: c:\n\tf\n\nb 1 2.0: c:\n\tf"),
        Some(16)
    );
    // one-line events, no blank lines
    assert_eq!(
        last_event_start(b"a 1 1.0: c:  1 f (x)\na 1 2.0: c:  1 f (x)\na 1"),
        Some(21)
    );
}

#[test]
fn only_the_first_event_type_is_folded() {
    let dir = tempfile::tempdir().unwrap();
    let text = "node 1 1.0: 1 cpu-clock:\n\t866cc8 node::Start+0x154 (/usr/bin/node)\n\n\
                node 1 1.1: 1 page-faults:\n\t866cc8 node::Start+0x154 (/usr/bin/node)\n\n\
                node 1 1.2: 1 cpu-clock:\n\t866cc8 node::Start+0x154 (/usr/bin/node)\n\n";
    let path = write(&dir, "mixed.perf", text.as_bytes());
    assert_eq!(file(&path).unwrap().samples, 2);
}

#[test]
fn jit_frames_without_symbols_lose_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let text = "node 1 1.0: 1 cpu-clock:\n\t7f9f4a7c6d69 [unknown] (/tmp/perf-1.map)\n\n\
                node 2 1.1: 1 cpu-clock:\n\t7f9f4a7c6d62 [unknown] (/tmp/perf-2.map)\n\n";
    let path = write(&dir, "workers.perf", text.as_bytes());
    assert_eq!(
        file(&path).unwrap().stacks,
        vec![("node;[unknown]_[j]".to_string(), 2)]
    );
}

#[test]
fn names_drop_gz_and_one_extension() {
    assert_eq!(
        default_name(Path::new("d/cluster-basic-prof.perf.gz")),
        "cluster-basic-prof"
    );
    assert_eq!(default_name(Path::new("stacks.gz")), "stacks");
    assert_eq!(default_name(Path::new(".hidden")), ".hidden");
}

#[test]
fn comments_anywhere_are_skipped_and_header_dates_are_not_events() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# captured on: Sun Oct 25 23:31:43 2015\n# cmdline : /usr/bin/perf record -g\n{PERF}# a comment between events\n{PERF}"
    );
    let path = write(&dir, "header.perf", text.as_bytes());
    let folded = file(&path).unwrap();
    assert_eq!(folded.samples, 6);
    assert_eq!(folded.event.as_deref(), Some("cpu-clock:ppp"));
    assert_eq!(folded.offsets_ns.len(), 6);
    assert_eq!(folded.offsets_ns[0], 0);
}

#[test]
fn frameless_events_count_under_their_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "frameless.perf", b"node 1 1.0: 1 cpu-clock:\n\n");
    assert_eq!(file(&path).unwrap().stacks, vec![("node".to_string(), 1)]);
}

#[test]
fn one_line_events_and_unindented_frames() {
    let dir = tempfile::tempdir().unwrap();
    // perf record without -g: `%16s` comm, one frame on the event line,
    // no blank lines between events
    let flat = "            node  1234 [001]     1.000000:          1 page-faults:  7f3a1c2b foo+0x1 (/lib/x.so)\n\
                V8 Worker 2  1235 [000]     1.100000:          3 page-faults:  7f3a1c2b foo+0x1 (/lib/x.so)\n";
    let path = write(&dir, "flat.perf", flat.as_bytes());
    let folded = file(&path).unwrap();
    assert_eq!(
        folded.stacks,
        vec![
            ("V8_Worker_2;foo".to_string(), 1),
            ("node;foo".to_string(), 1)
        ]
    );
    let unindented = "node 1 1.0: 1 cpu-clock:\n7f12 leaf+0x1 (/x)\n7f13 main (/x)\n\nnode 1 1.1: 1 cpu-clock:\n7f13 main (/x)\n";
    let path = write(&dir, "bare.perf", unindented.as_bytes());
    assert_eq!(
        file(&path).unwrap().stacks,
        vec![
            ("node;main".to_string(), 1),
            ("node;main;leaf".to_string(), 1)
        ]
    );
}

const MIXED: &str = "node 1 1.0: 10 cpu-clock:\n\t866cc8 node::Start+0x154 (/usr/bin/node)\n\n\
                     node 1 1.1: 1 page-faults:\n\t866cc9 memcpy (/lib/libc.so)\n\n\
                     node 1 1.2: 30 cpu-clock:\n\t866cc8 node::Start+0x154 (/usr/bin/node)\n\n\
                     node 1 1.3: 2 page-faults:u:\n\t866cc9 memcpy (/lib/libc.so)\n\n";

#[test]
fn only_the_chosen_event_type_is_folded_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "mixed.perf", MIXED.as_bytes());
    let first = file(&path).unwrap();
    assert_eq!(
        (first.samples, first.event.as_deref()),
        (2, Some("cpu-clock"))
    );
    assert_eq!(
        first.other_events,
        vec![
            ("page-faults".to_string(), 1),
            ("page-faults:u".to_string(), 1)
        ]
    );
    assert!(
        first.describe().contains("2 samples of cpu-clock"),
        "{}",
        first.describe()
    );
    let pick = |event: &str| {
        file_with(
            &path,
            &Select {
                event: Some(event.to_string()),
                ..Select::default()
            },
        )
    };
    let faults = pick("page-faults:u").unwrap();
    assert_eq!(faults.stacks, vec![("node;memcpy".to_string(), 1)]);
    assert_eq!(
        pick("page-faults").unwrap().event.as_deref(),
        Some("page-faults")
    );
    let error = pick("cycles").unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, CollapseError::NoSuchEvent { .. }),
        "{message}"
    );
    assert!(
        message.contains("`cpu-clock` (2 samples)") && message.contains("--event"),
        "{message}"
    );
    assert!(event_matches(b"cycles:ppp", "cycles"));
    assert!(!event_matches(b"cycles:ppp", "cyc"));
    assert!(!event_matches(b"sched:sched_switch", "sched"));
}

#[test]
fn period_weights_need_periods() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "mixed.perf", MIXED.as_bytes());
    let period = Select {
        weight: Weight::Period,
        ..Select::default()
    };
    let by_period = file_with(&path, &period).unwrap();
    assert_eq!(by_period.stacks, vec![("node;node::Start".to_string(), 40)]);
    assert_eq!((by_period.samples, by_period.sample_count), (40, 2));
    assert!(
        by_period.describe().contains("weighted by period"),
        "{}",
        by_period.describe()
    );
    let untimed = write(
        &dir,
        "noperiod.perf",
        b"node 1 1.0: cpu-clock:\n\t1 a (x)\n\n",
    );
    let error = file_with(&untimed, &period).unwrap_err();
    assert!(
        matches!(error, CollapseError::NoPeriods { missing: 1, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("-F +period"));
}
