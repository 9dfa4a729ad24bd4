//! Stage **collapse**: `perf script` text (plain or gzip) or already-folded
//! stacks → [`Folded`] stacks, one per input.
//!
//! It must not render, download or touch the network: it reads local files and
//! hands plain data to `render`. inferno's types stop here.
//!
//! Two deliberate differences from `inferno-collapse-perf` output:
//! * every sample counts 1. `perf script` prints the sample period
//!   (`10101010` ns for `cpu-clock` at 99 Hz) and inferno weights stacks by
//!   it, which makes an SVG claim billions of "samples" and disagree with the
//!   `samples` count in `meta.json`. The period is dropped from event lines
//!   before inferno sees them.
//! * JIT frames without a symbol (Node without `--perf-basic-prof`) are
//!   `[unknown]_[j]`, not `[perf-<pid>.map]_[j]`, so that the workers of a
//!   cluster, which differ only by pid, fold together.
//!
//! The work is streamed: an input is read in blocks of whole events
//! ([`Blocks`]), each normalised ([`normalize`]: no comments, no periods,
//! one blank line after every event) and folded by inferno on its own, on
//! several threads for a big input. Memory is a few blocks per thread plus
//! the *distinct* stacks, whatever the size of the input.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

use flate2::bufread::MultiGzDecoder;
use inferno::collapse::Collapse;
use inferno::collapse::perf::{Folder, Options};

/// Read buffer per input. inferno uses the same size for its own CLI.
const READ_CAPACITY: usize = 128 * 1024;

/// Size of the blocks of whole events that threads fold on their own. Big
/// enough that per-block costs (inferno's setup and sorted output) vanish,
/// small enough that a few blocks per thread are little memory.
const BLOCK_BYTES: usize = 256 << 10;

/// Lines looked at to tell `perf script` from folded stacks.
const DETECT_LINES: usize = 16;

/// Upper bound on the bytes read ahead for detection, in case of huge lines.
const DETECT_BYTES: usize = 256 * 1024;

/// Characters of an offending line quoted in an error message.
const SNIPPET_CHARS: usize = 80;

/// Folded stacks of one input: what `render` draws and summaries rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    /// Label for this input (file name without `.gz` and one more extension,
    /// e.g. `cluster-basic-prof`); callers set it to a host name for fleets.
    pub name: String,
    /// `frame;frame;frame` (root first) and its sample count, sorted by
    /// stack, each stack once, so that output is deterministic.
    pub stacks: Vec<(String, u64)>,
    /// Sum of all counts.
    pub samples: u64,
}

/// A leaf frame and the share of samples spent in it (self time).
#[derive(Clone, Debug, PartialEq)]
pub struct TopFunction {
    pub name: String,
    pub samples: u64,
    /// `samples / Folded::samples`, in `0.0..=1.0`.
    pub share: f64,
}

impl Folded {
    /// Builds a `Folded`, merging repeated stacks and sorting them.
    pub fn new(name: impl Into<String>, stacks: impl IntoIterator<Item = (String, u64)>) -> Self {
        let mut merged: BTreeMap<String, u64> = BTreeMap::new();
        for (stack, count) in stacks {
            *merged.entry(stack).or_insert(0) += count;
        }
        let samples = merged.values().sum();
        Folded {
            name: name.into(),
            stacks: merged.into_iter().collect(),
            samples,
        }
    }

    /// Writes the standard folded format, one `stack count` line per stack.
    pub fn write_to(&self, writer: impl Write) -> io::Result<()> {
        let mut writer = io::BufWriter::new(writer);
        for (stack, count) in &self.stacks {
            writeln!(writer, "{stack} {count}")?;
        }
        writer.flush()
    }

    /// The `n` leaf frames with the most self time, largest first (ties by
    /// name, for stable summaries). Names are shown as in the SVG, without
    /// inferno's `_[j]` / `_[k]` / `_[i]` annotations.
    pub fn top_functions(&self, n: usize) -> Vec<TopFunction> {
        let mut by_leaf: HashMap<&str, u64> = HashMap::new();
        for (stack, count) in &self.stacks {
            let leaf = stack.rsplit(';').next().unwrap_or(stack);
            let leaf = ["_[j]", "_[k]", "_[i]"]
                .iter()
                .find_map(|annotation| leaf.strip_suffix(annotation))
                .unwrap_or(leaf);
            *by_leaf.entry(leaf).or_insert(0) += count;
        }
        let mut leaves: Vec<(&str, u64)> = by_leaf.into_iter().collect();
        leaves.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        leaves
            .into_iter()
            .take(n)
            .map(|(name, samples)| TopFunction {
                name: name.to_string(),
                samples,
                share: if self.samples == 0 {
                    0.0
                } else {
                    samples as f64 / self.samples as f64
                },
            })
            .collect()
    }

    /// The same stacks under one extra root frame, as merged fleet graphs
    /// need. `;` and line breaks in `root` would split or end the stack, so
    /// they become `_`.
    pub fn with_root(&self, root: &str) -> Folded {
        let root: String = root
            .chars()
            .map(|c| {
                if matches!(c, ';' | '\n' | '\r') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        Folded {
            name: self.name.clone(),
            // Prefixing every key with the same string keeps them sorted.
            stacks: self
                .stacks
                .iter()
                .map(|(stack, count)| (format!("{root};{stack}"), *count))
                .collect(),
            samples: self.samples,
        }
    }
}

/// A time window relative to the first sample's timestamp, in seconds:
/// events with `from_s <= t - t0 < to_s` are kept. `None` leaves that side open.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub from_s: Option<f64>,
    pub to_s: Option<f64>,
}

impl Window {
    fn is_open(&self) -> bool {
        self.from_s.is_none() && self.to_s.is_none()
    }

    fn contains(&self, offset_s: f64) -> bool {
        self.from_s.is_none_or(|from| offset_s >= from) && self.to_s.is_none_or(|to| offset_s < to)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollapseError {
    #[error(
        "could not read stacks from {path}\n  next step: check that the file exists and is readable"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "{path} is not a valid gzip file (truncated or corrupt)\n  next step: re-download or re-record it"
    )]
    CorruptGzip {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "{path}:{line}: unrecognised stack format near `{snippet}`\n  next step: expected `perf script` output or folded stacks (`frame;frame count`)"
    )]
    Unrecognised {
        path: PathBuf,
        line: u64,
        snippet: String,
    },

    #[error(
        "{path} holds no samples\n  next step: record for longer or while the process is busy, or widen the time window"
    )]
    Empty { path: PathBuf },

    #[error(
        "{path} has no timestamps, so a time window cannot be applied\n  next step: collapse it without a window, or record with `perf script` default fields (they include `time`)"
    )]
    NoTimestamps { path: PathBuf },

    #[error(
        "inferno's perf parser gave up on {path}\n  next step: check that it is `perf script` output; if it is, report this with the file"
    )]
    Parser { path: PathBuf },
}

/// Collapses one input, using every core for a big `perf script` file.
pub fn file(path: &Path) -> Result<Folded, CollapseError> {
    file_window(path, Window::default())
}

/// Like [`file`], keeping only the events inside `window`.
pub fn file_window(path: &Path, window: Window) -> Result<Folded, CollapseError> {
    collapse(path, window, cores())
}

/// Collapses several inputs in parallel, one input per core at a time (with
/// fewer inputs than cores, each input is folded on the cores left over).
/// Results are in input order; one bad input does not affect the others.
pub fn files(paths: &[PathBuf]) -> Vec<Result<Folded, CollapseError>> {
    let workers = cores().min(paths.len()).max(1);
    let threads_per_input = (cores() / workers).max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Folded, CollapseError>>>> =
        paths.iter().map(|_| Mutex::new(None)).collect();
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                // A shared cursor rather than fixed shares: inputs differ in
                // size, so whichever thread is free takes the next one.
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let result = collapse(path, Window::default(), threads_per_input);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every input is collapsed before the scope ends")
        })
        .collect()
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// What an input holds, decided from its first meaningful lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Perf,
    Folded,
    /// Nothing but blank and comment lines.
    Blank,
    /// Neither; carries the 1-based number of the first line that fits neither.
    Unknown(u64),
}

fn collapse(path: &Path, window: Window, threads: usize) -> Result<Folded, CollapseError> {
    let read_error = |source| CollapseError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = BufReader::with_capacity(READ_CAPACITY, File::open(path).map_err(read_error)?);
    let gzip = raw
        .fill_buf()
        .map_err(read_error)?
        .starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            READ_CAPACITY,
            MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    let io_error = |source: io::Error| match source.get_ref().and_then(|e| e.downcast_ref()) {
        Some(Marker::NoTimestamps) => CollapseError::NoTimestamps {
            path: path.to_path_buf(),
        },
        Some(Marker::Unrecognised { line, snippet }) => CollapseError::Unrecognised {
            path: path.to_path_buf(),
            line: *line,
            snippet: snippet.clone(),
        },
        None if gzip => CollapseError::CorruptGzip {
            path: path.to_path_buf(),
            source,
        },
        None => read_error(source),
    };

    let (head, format) = sniff(input).map_err(io_error)?;
    let stacks = match format {
        Format::Blank => Vec::new(),
        Format::Unknown(line) => {
            return Err(CollapseError::Unrecognised {
                path: path.to_path_buf(),
                line,
                snippet: snippet_of_line(head.get_ref().0.get_ref(), line),
            });
        }
        Format::Folded if !window.is_open() => {
            return Err(CollapseError::NoTimestamps {
                path: path.to_path_buf(),
            });
        }
        Format::Folded => read_folded(head).map_err(io_error)?,
        Format::Perf => {
            let first = first_event(head.get_ref().0.get_ref());
            if !window.is_open() && first.time.is_none() {
                return Err(CollapseError::NoTimestamps {
                    path: path.to_path_buf(),
                });
            }
            // The folding runs on inferno's parser, which asserts on input
            // it cannot follow; one odd file must not take down a fleet run.
            match panic::catch_unwind(AssertUnwindSafe(|| {
                fold_perf(head, &first, window, threads)
            })) {
                Ok(stacks) => stacks.map_err(io_error)?,
                Err(_) => {
                    return Err(CollapseError::Parser {
                        path: path.to_path_buf(),
                    });
                }
            }
        }
    };
    let folded = Folded::new(default_name(path), stacks);
    if folded.samples == 0 {
        return Err(CollapseError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(folded)
}

/// The first event of an input: its type is the only one folded (as
/// inferno does, since mixing e.g. cycles and cpu-clock misleads) and its
/// timestamp is the origin of a time window.
struct FirstEvent {
    event: String,
    time: Option<f64>,
}

/// Finds the first event line in the head; `detect` has checked that the
/// first meaningful line of a `perf script` input is one (or a frame line).
fn first_event(head: &[u8]) -> FirstEvent {
    head.split(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b" ") && !line.starts_with(b"\t"))
        .find_map(|line| {
            let event = parse_event_line(line)?;
            Some(FirstEvent {
                event: String::from_utf8_lossy(&line[event.event.0..event.event.1]).into_owned(),
                time: event.time,
            })
        })
        .unwrap_or(FirstEvent {
            event: String::new(),
            time: None,
        })
}

/// Folds `perf script` text with inferno, on `threads` threads.
///
/// The input is read in blocks of whole events (see [`Blocks`]). With more
/// than one thread, workers fold blocks on their own while this thread reads
/// the next ones; that beats inferno's own multithreading, where one thread
/// hands out every line and workers share one locked map. Blocks in flight
/// are bounded, so memory stays a few blocks per thread.
fn fold_perf(
    input: Head,
    first: &FirstEvent,
    window: Window,
    threads: usize,
) -> io::Result<Vec<(String, u64)>> {
    let mut options = Options::default();
    options.annotate_jit = true;
    options.annotate_kernel = true;
    options.include_pid = false;
    options.include_tid = false;
    // Set up front so that every block filters alike, and so that inferno
    // never has to guess it from a block's first event.
    options.event_filter = Some(first.event.clone());
    options.nthreads = 1;
    let fold = |block: &[u8], text: &mut Vec<u8>, totals: &mut HashMap<String, u64>| {
        normalize(block, window, first.time, text)?;
        let mut sink = FoldedSink::default();
        Folder::from(options.clone()).collapse(&text[..], &mut sink)?;
        for (stack, count) in sink.stacks {
            *totals.entry(without_map_pids(stack)).or_insert(0) += count;
        }
        io::Result::Ok(())
    };

    let mut blocks = Blocks {
        input,
        carry: Vec::new(),
    };
    let mut totals = HashMap::new();
    if threads <= 1 {
        let (mut spare, mut text) = (Vec::new(), Vec::new());
        while let Some(block) = blocks.next(spare)? {
            fold(&block, &mut text, &mut totals)?;
            spare = block;
        }
        return Ok(totals.into_iter().collect());
    }

    let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(threads);
    let receiver = Mutex::new(receiver);
    // Folded blocks come back to be filled again: fresh megabyte buffers
    // would cost a page fault per 4 KiB read.
    let (spare_sender, spares) = mpsc::channel::<Vec<u8>>();
    let failed = AtomicBool::new(false);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let spare_sender = spare_sender.clone();
                let (receiver, failed, fold) = (&receiver, &failed, &fold);
                scope.spawn(move || {
                    let (mut totals, mut text) = (HashMap::new(), Vec::new());
                    loop {
                        let block = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(block) = block else { break };
                        if let Err(e) = fold(&block, &mut text, &mut totals) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        let _ = spare_sender.send(block);
                    }
                    Ok(totals)
                })
            })
            .collect();

        let mut read = Ok(());
        while !failed.load(Ordering::Relaxed) {
            match blocks.next(spares.try_recv().unwrap_or_default()) {
                Ok(Some(block)) => {
                    if sender.send(block).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        drop(sender);

        let mut outcome: io::Result<()> = read;
        for worker in workers {
            match worker.join() {
                Ok(Ok(part)) => {
                    for (stack, count) in part {
                        *totals.entry(stack).or_insert(0) += count;
                    }
                }
                Ok(Err(e)) => outcome = outcome.and(Err(e)),
                Err(panic) => panic::resume_unwind(panic),
            }
        }
        outcome
    })?;
    Ok(totals.into_iter().collect())
}

/// Reads `perf script` text in blocks of about [`BLOCK_BYTES`] that end
/// where an event starts, so that each block can be folded on its own.
struct Blocks {
    input: Head,
    /// The start of the event that the last block cut off.
    carry: Vec<u8>,
}

impl Blocks {
    /// The next block, filled into `spare` (any old block) to reuse its
    /// memory; `None` at the end of the input.
    fn next(&mut self, mut spare: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        spare.clear();
        spare.reserve(BLOCK_BYTES + self.carry.len());
        let mut block = spare;
        block.append(&mut self.carry);
        loop {
            let read = (&mut self.input)
                .take(BLOCK_BYTES as u64)
                .read_to_end(&mut block)?;
            if read == 0 {
                return Ok((!block.is_empty()).then_some(block));
            }
            // one event bigger than a block: keep reading it
            if let Some(cut) = last_event_start(&block) {
                self.carry.extend_from_slice(&block[cut..]);
                block.truncate(cut);
                return Ok(Some(block));
            }
        }
    }
}

/// Offset of the last line in `block` that can start an event: any line
/// that is not an indented frame line. `None` if there is none after the
/// first byte.
fn last_event_start(block: &[u8]) -> Option<usize> {
    (1..block.len())
        .rev()
        .find(|&i| block[i - 1] == b'\n' && !matches!(block[i], b' ' | b'\t'))
}

/// Input with its already-read head put back in front.
type Head = io::Chain<io::Cursor<Vec<u8>>, Box<dyn BufRead + Send>>;

/// Reads the first few meaningful lines, classifies them, and returns the
/// input with those lines put back.
fn sniff(mut input: Box<dyn BufRead + Send>) -> io::Result<(Head, Format)> {
    let mut head = Vec::new();
    let mut meaningful = 0;
    while meaningful < DETECT_LINES && head.len() < DETECT_BYTES {
        let start = head.len();
        if input.read_until(b'\n', &mut head)? == 0 {
            break;
        }
        if !is_skippable(&head[start..]) {
            meaningful += 1;
        }
    }
    let format = detect(&String::from_utf8_lossy(&head));
    Ok((io::Cursor::new(head).chain(input), format))
}

fn is_skippable(line: &[u8]) -> bool {
    line.first() == Some(&b'#') || line.iter().all(u8::is_ascii_whitespace)
}

/// Tells `perf script` output from folded stacks by the first meaningful
/// line (blank lines and `#` comments are skipped):
/// * an event line (`comm pid[/tid] [cpu] time: [period] event:`, as inferno
///   parses it) or an indented `addr symbol (dso)` frame line → `perf script`;
/// * `stack count` with an integer count, not indented → folded, provided
///   every other meaningful line read so far is folded too.
fn detect(head: &str) -> Format {
    let mut lines = head
        .lines()
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line))
        .filter(|(_, line)| !is_skippable(line.as_bytes()));
    let Some((first_no, first)) = lines.next() else {
        return Format::Blank;
    };
    if parse_event_line(first.as_bytes()).is_some() || is_frame_line(first) {
        return Format::Perf;
    }
    if parse_folded_line(first).is_none() {
        return Format::Unknown(first_no);
    }
    // A truncated last line of the head is still a folded line minus its
    // count; only complete lines are judged, so `lines()` on a head that
    // ends mid-line would wrongly reject it.
    let complete = &head[..head.rfind('\n').map_or(head.len(), |i| i + 1)];
    for (no, line) in complete
        .lines()
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line))
        .filter(|(_, line)| !is_skippable(line.as_bytes()))
    {
        if parse_folded_line(line).is_none() {
            return Format::Unknown(no);
        }
    }
    Format::Folded
}

fn is_frame_line(line: &str) -> bool {
    let starts_indented = line.starts_with([' ', '\t']);
    let mut words = line.split_whitespace();
    let addr_is_hex = words
        .next()
        .is_some_and(|w| w.bytes().all(|b| b.is_ascii_hexdigit()));
    starts_indented && addr_is_hex && line.trim_end().ends_with(')')
}

fn parse_folded_line(line: &str) -> Option<(&str, u64)> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let (stack, count) = line.rsplit_once(' ')?;
    let stack = stack.trim_end();
    if stack.is_empty() || count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stack, count.parse().ok()?))
}

fn snippet_of_line(head: &[u8], line: u64) -> String {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().nth(line as usize - 1).unwrap_or("");
    snippet(line)
}

fn snippet(line: &str) -> String {
    let line = line.trim_end();
    if line.chars().count() > SNIPPET_CHARS {
        let cut: String = line.chars().take(SNIPPET_CHARS).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

fn read_folded(mut input: Head) -> io::Result<Vec<(String, u64)>> {
    // Merged as read: a big folded file usually repeats few stacks.
    let mut merged: HashMap<String, u64> = HashMap::new();
    let mut line = String::new();
    let mut no = 0;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        no += 1;
        if is_skippable(line.as_bytes()) {
            continue;
        }
        let Some((stack, count)) = parse_folded_line(&line) else {
            return Err(io::Error::other(Marker::Unrecognised {
                line: no,
                snippet: snippet(&line),
            }));
        };
        match merged.get_mut(stack) {
            Some(total) => *total += count,
            None => {
                merged.insert(stack.to_string(), count);
            }
        }
    }
    Ok(merged.into_iter().collect())
}

/// The parts of a `perf script` event line that flamefire needs.
#[derive(Debug, PartialEq)]
struct EventLine {
    /// Seconds, when the line has a `time:` field.
    time: Option<f64>,
    /// Byte range of the sample period, which inferno would weight by.
    period: Option<(usize, usize)>,
    /// Byte range of the event name (`cpu-clock`), as inferno reads it.
    event: (usize, usize),
}

/// Parses an event line the way inferno's perf folder does, so that both
/// agree on which lines are events, which period to drop and which event
/// type comes first. Examples:
///
/// ```text
/// node  9495   296.427171:   10101010 cpu-clock:ppp:
/// V8 WorkerThread 24636/25607 [000] 94564.109216: cycles:
/// ```
///
/// It works on bytes, as comm names truncated by the kernel may end in half
/// a UTF-8 character; every byte it looks for is ASCII, so offsets are the
/// same as in inferno's lossily decoded line. Trailing whitespace is ignored.
fn parse_event_line(line: &[u8]) -> Option<EventLine> {
    let end = line.len()
        - line
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let line = &line[..end];
    // The pid (or pid/tid) is the first all-digit word followed by a space;
    // the command name before it may itself contain spaces.
    let mut all_digits = false;
    let mut last_was_space = false;
    let mut after_pid = None;
    for (idx, &b) in line.iter().enumerate() {
        if b == b' ' {
            if all_digits && !last_was_space {
                after_pid = Some(idx + 1);
                break;
            }
            all_digits = true;
        } else if b != b'/' && !b.is_ascii_digit() {
            all_digits = false;
        }
        last_was_space = b == b' ';
    }
    let after_pid = after_pid?;
    // inferno reads the event name after the first colon; without one it
    // never learns the event type.
    let first_colon = after_pid + position(&line[after_pid..], b':')?;

    let before_colon = &line[after_pid..first_colon];
    let time_word = &before_colon[rposition(before_colon, b' ').map_or(0, |i| i + 1)..];
    let time = Some(time_word)
        .filter(|t| !t.is_empty() && t.iter().all(|b| b.is_ascii_digit() || *b == b'.'))
        .and_then(|t| std::str::from_utf8(t).ok()?.parse::<f64>().ok());

    // inferno takes the word before the event name, between the first and
    // second colons, as the period.
    let piece_start = first_colon + 1;
    let piece = &line[piece_start..];
    let piece = &piece[..position(piece, b':').unwrap_or(piece.len())];
    let event_space = rposition(piece, b' ');
    let event = (
        piece_start + event_space.map_or(0, |i| i + 1),
        piece_start + piece.len(),
    );
    let period = event_space.and_then(|event_space| {
        let before = &piece[..event_space];
        let start = rposition(before, b' ').map_or(0, |i| i + 1);
        let word = &before[start..];
        let is_period = std::str::from_utf8(word).is_ok_and(|w| w.parse::<u64>().is_ok());
        is_period.then_some((piece_start + start, piece_start + event_space))
    });
    Some(EventLine {
        time,
        period,
        event,
    })
}

fn position(bytes: &[u8], byte: u8) -> Option<usize> {
    bytes.iter().position(|&b| b == byte)
}

fn rposition(bytes: &[u8], byte: u8) -> Option<usize> {
    bytes.iter().rposition(|&b| b == byte)
}

/// Why [`normalize`] or [`read_folded`] stopped, carried inside an `io::Error`.
#[derive(Debug)]
enum Marker {
    NoTimestamps,
    Unrecognised { line: u64, snippet: String },
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::NoTimestamps => f.write_str("event line without a timestamp"),
            Marker::Unrecognised { line, snippet } => {
                write!(f, "line {line} is not a perf event line: {snippet}")
            }
        }
    }
}

impl std::error::Error for Marker {}

/// Normalises a block of `perf script` text on its way to inferno (see the
/// module docs) into `out`: drops comments and periods, applies the time
/// window, and ends every event with exactly one blank line.
///
/// Most lines are frames that pass unchanged; they are found with
/// `skip_until` (a `memchr`) and copied in runs, not line by line.
fn normalize(
    block: &[u8],
    window: Window,
    origin: Option<f64>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    let mut rest = block;
    // Unchanged lines from `run` up to the current line wait to be copied.
    let mut run = 0;
    let mut started = false;
    let mut closed = true;
    let mut skipping = false;
    while !rest.is_empty() {
        let start = block.len() - rest.len();
        (&mut rest).skip_until(b'\n')?;
        let end = block.len() - rest.len();
        let line = &block[start..end];
        let is_frame = matches!(line[0], b' ' | b'\t') && !is_skippable(line);
        if is_frame && started && !skipping {
            closed = false;
            continue;
        }
        // Anything else ends the run of unchanged lines.
        out.extend_from_slice(&block[run..start]);
        run = end;
        if is_frame || line[0] == b'#' {
            // a frame of a dropped event, or a comment
            continue;
        }
        // A blank line or an event line ends the event.
        if !closed {
            out.push(b'\n');
            closed = true;
        }
        if is_skippable(line) {
            skipping = false;
            continue;
        }
        // inferno logs and skips odd event lines; so do we, quietly.
        let Some(event) = parse_event_line(line) else {
            skipping = true;
            continue;
        };
        if !window.is_open() {
            let time = event
                .time
                .ok_or_else(|| io::Error::other(Marker::NoTimestamps))?;
            skipping = !window.contains(time - origin.unwrap_or(time));
            if skipping {
                continue;
            }
        }
        skipping = false;
        match event.period {
            Some((from, to)) => {
                out.extend_from_slice(&line[..from]);
                out.extend_from_slice(&line[to..]);
            }
            None => out.extend_from_slice(line),
        }
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
        started = true;
        closed = false;
    }
    out.extend_from_slice(&block[run..]);
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    if !closed {
        out.push(b'\n');
    }
    Ok(())
}

/// Receives inferno's folded output (`stack count\n`, written piecemeal)
/// and keeps it as pairs, without holding the whole text.
#[derive(Default)]
struct FoldedSink {
    partial: Vec<u8>,
    stacks: Vec<(String, u64)>,
}

impl Write for FoldedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let line = String::from_utf8_lossy(&self.partial);
            if let Some((stack, count)) = parse_folded_line(&line) {
                self.stacks.push((stack.to_string(), count));
            }
            self.partial.clear();
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// inferno names a JIT frame that has no symbol after the map file perf
/// looked in (`[perf-1234.map]`). The pid in that name would split the same
/// stack of a cluster's workers into siblings, so it becomes `[unknown]`.
fn without_map_pids(stack: String) -> String {
    const OPEN: &str = "[perf-";
    const CLOSE: &str = ".map]";
    if !stack.contains(OPEN) {
        return stack;
    }
    let mut out = String::with_capacity(stack.len());
    let mut rest = stack.as_str();
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(CLOSE) {
            out.push_str(&rest[..start]);
            out.push_str("[unknown]");
            rest = &after[digits + CLOSE.len()..];
        } else {
            out.push_str(&rest[..start + OPEN.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `dir/cluster-basic-prof.perf.gz` → `cluster-basic-prof`.
fn default_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

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
        assert_eq!(file(&path).unwrap(), perf_expected("app"));
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes_not_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "app.perf", &gzip(PERF.as_bytes()));
        assert_eq!(file(&path).unwrap(), perf_expected("app"));
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = PERF.split_at(PERF.find("node  9495   12.5").unwrap());
        let mut bytes = gzip(first.as_bytes());
        bytes.extend(gzip(second.as_bytes()));
        let path = write(&dir, "app.perf.gz", &bytes);
        assert_eq!(file(&path).unwrap(), perf_expected("app"));
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
    fn detection_rules() {
        assert_eq!(detect(PERF), Format::Perf);
        assert_eq!(
            detect("\t7f5b867c66e2 foo+0x1 (/usr/bin/node)\n"),
            Format::Perf
        );
        assert_eq!(detect("a;b 1\nc 2\n"), Format::Folded);
        // a head cut in the middle of a line is judged on its complete lines
        assert_eq!(detect("a;b 1\nc;d"), Format::Folded);
        assert_eq!(detect("\n# only a comment\n\n"), Format::Blank);
        assert_eq!(detect("hello world\n"), Format::Unknown(1));
        assert_eq!(detect("a;b 1\nnot folded\n"), Format::Unknown(2));
        assert_eq!(detect("a;b 1.5\n"), Format::Unknown(1));
        assert_eq!(detect("  a;b 1\n"), Format::Unknown(1));
    }

    #[test]
    fn event_lines_are_parsed_like_inferno() {
        let line = "node  9495   296.427171:   10101010 cpu-clock:ppp: ";
        let event = parse_event_line(line.as_bytes()).unwrap();
        assert_eq!(event.time, Some(296.427171));
        let (start, end) = event.period.unwrap();
        assert_eq!(&line[start..end], "10101010");
        let (start, end) = event.event;
        assert_eq!(&line[start..end], "cpu-clock");

        let threaded = b"V8 WorkerThread 24636/25607 [000] 94564.109216: cycles:";
        let event = parse_event_line(threaded).unwrap();
        assert_eq!((event.time, event.period), (Some(94564.109216), None));
        assert_eq!(&threaded[event.event.0..event.event.1], b"cycles");
        assert_eq!(
            parse_event_line(b"node 9495 cpu-clock:").unwrap().time,
            None
        );
        assert_eq!(parse_event_line(b"node 9495 no colon here"), None);
        assert_eq!(parse_event_line(b"a;b;c 12"), None);
        // a comm cut by the kernel in the middle of a UTF-8 character
        let cut = b"caf\xc3 77 5.5: 3 cpu-clock:\n";
        let event = parse_event_line(cut).unwrap();
        assert_eq!(event.time, Some(5.5));
        assert_eq!(event.period.map(|(a, b)| &cut[a..b]), Some(&b"3"[..]));
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
            // events whose frames are all missing fold to nothing
            ("frameless.perf", b"node 1 1.0: 1 cpu-clock:\n\n".to_vec()),
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
    fn missing_file_is_a_read_error() {
        let error = file(Path::new("/nonexistent/stacks.gz")).unwrap_err();
        assert!(matches!(error, CollapseError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/stacks.gz"));
    }

    #[test]
    fn files_keeps_input_order_and_isolates_failures() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(&dir, "a.folded", b"x;y 2\n");
        let bad = write(&dir, "b.perf", b"");
        let other = write(&dir, "c.perf", PERF.as_bytes());
        let results = files(&[good.clone(), bad, other, good]);
        assert_eq!(results.len(), 4);
        assert_eq!(results[0].as_ref().unwrap().name, "a");
        assert!(matches!(results[1], Err(CollapseError::Empty { .. })));
        assert_eq!(results[2].as_ref().unwrap(), &perf_expected("c"));
        assert_eq!(results[3].as_ref().unwrap().samples, 2);
    }

    #[test]
    fn threads_fold_blocks_like_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        // several blocks, so that cuts between events are exercised
        let repeats = 3 * BLOCK_BYTES / PERF.len();
        let path = write(&dir, "big.perf", PERF.repeat(repeats).as_bytes());
        let single = collapse(&path, Window::default(), 1).unwrap();
        let multi = collapse(&path, Window::default(), 3).unwrap();
        assert_eq!(single, multi);
        assert_eq!(single.samples, 3 * repeats as u64);

        // the window's origin is the input's first event, in every block
        let window = Window {
            from_s: Some(1.0),
            to_s: None,
        };
        let late = collapse(&path, window, 3).unwrap();
        assert_eq!(late, collapse(&path, window, 1).unwrap());
        assert_eq!(late.samples, repeats as u64);
    }

    #[test]
    fn an_event_bigger_than_a_block_stays_whole() {
        let dir = tempfile::tempdir().unwrap();
        let frame = "\t866cc8 deep+0x1 (/usr/bin/node)\n";
        let depth = BLOCK_BYTES / frame.len() + 10;
        let text = format!(
            "{PERF}node 1 20.0: 1 cpu-clock:\n{}\n{PERF}",
            frame.repeat(depth)
        );
        let path = write(&dir, "deep.perf", text.as_bytes());
        for threads in [1, 3] {
            let folded = collapse(&path, Window::default(), threads).unwrap();
            assert_eq!(folded.samples, 7);
            let deep = folded.stacks.iter().find(|(s, _)| s.ends_with(";deep"));
            assert_eq!(deep.unwrap().0.matches(";deep").count(), depth);
        }
        assert_eq!(last_event_start(b"node 1\n\tframe\n\tframe\n"), None);
        assert_eq!(last_event_start(b"node 1\n\tframe\nnode 2\n\tfr"), Some(14));
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
    fn helpers_write_rank_and_reroot() {
        let folded = Folded::new(
            "host-a",
            [
                ("node;main;work".to_string(), 6),
                ("node;main;idle".to_string(), 3),
                ("node;gc;work_[j]".to_string(), 1),
            ],
        );
        let mut text = Vec::new();
        folded.write_to(&mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "node;gc;work_[j] 1\nnode;main;idle 3\nnode;main;work 6\n"
        );

        let top = folded.top_functions(1);
        assert_eq!(top.len(), 1);
        assert_eq!((top[0].name.as_str(), top[0].samples), ("work", 7));
        assert!((top[0].share - 0.7).abs() < 1e-9);

        let rooted = folded.with_root("i-0abc;x");
        assert_eq!(rooted.stacks[0].0, "i-0abc_x;node;gc;work_[j]");
        assert_eq!(rooted.samples, folded.samples);
    }

    #[test]
    fn jit_frames_without_symbols_lose_the_pid() {
        assert_eq!(
            without_map_pids("node;[perf-123.map]_[j];[perf-9.map]_[j];x".to_string()),
            "node;[unknown]_[j];[unknown]_[j];x"
        );
        assert_eq!(
            without_map_pids("node;[perf-abc.map];[perf-".to_string()),
            "node;[perf-abc.map];[perf-"
        );

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
}
