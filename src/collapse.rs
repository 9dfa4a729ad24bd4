//! Stage **collapse**: `perf script` text (plain or gzip) or already-folded
//! stacks → [`Folded`] stacks, one per input, with the per-sample timestamps
//! that the heat map needs, from one pass over the bytes.
//!
//! It must not render, download or touch the network: it reads local files and
//! hands plain data to `render` and `heatmap`.
//!
//! The parser is flamefire's own (inferno stays for drawing). It reads what
//! perf prints, as laid out by `tools/perf/builtin-script.c` in the Linux tree:
//! `perf_sample__fprintf_start` (comm as `%s ` or `%16s `, pid/tid as
//! `%7d/%-7d `, cpu as `[%03d] `, time as `%12s: ` or `%5lu.%09llu: ` with
//! `--ns`), `process_event` (period as `%10lu `, event name as `%*s: `, then
//! `'\n'` before a call chain or `' '` before a one-line `ip sym (dso)`), and
//! `sample__fprintf_callchain` in `tools/perf/util/evsel_fprintf.c` (one frame
//! per line: `\t%16lx sym+0xoff (dso)`, ` (inlined)` for inline frames).
//! Each field can be missing (`perf script -F`), so an event line is found by
//! its anchors, not by field positions; see [`parse_event_line`].
//!
//! Frames are named as `inferno-collapse-perf --jit --kernel` names them
//! (offsets dropped, argument lists dropped, `[unknown]` replaced by
//! `[dso]`, `_[k]` for kernel, `_[j]` for JIT, `_[i]` for inline frames),
//! with three deliberate differences:
//! * the default weight is one per sample (`--weight period` to weight by the
//!   period, as `perf report` does), so that an SVG's counts agree with the
//!   `samples` count in `meta.json`;
//! * JIT frames without a symbol (Node without `--perf-basic-prof`) are
//!   `[unknown]_[j]`, not `[perf-<pid>.map]_[j]`, so that the workers of a
//!   cluster, which differ only by pid, fold together;
//! * an event without frames still counts, under its command name alone.
//!
//! Big inputs are read in blocks of whole events ([`Blocks`]) that worker
//! threads fold on their own. Memory is a few blocks per thread plus the
//! *distinct* stacks and one timestamp per sample.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

use flate2::bufread::MultiGzDecoder;

/// Read buffer per input.
const READ_CAPACITY: usize = 128 * 1024;

/// Size of the blocks of whole events that threads fold on their own. Big
/// enough that per-block costs vanish, small enough that a few blocks per
/// thread are little memory.
const BLOCK_BYTES: usize = 256 << 10;

/// Lines looked at to tell `perf script` from folded stacks.
const DETECT_LINES: usize = 16;

/// Upper bound on the bytes read ahead for detection, in case of huge lines.
const DETECT_BYTES: usize = 256 * 1024;

/// Characters of an offending line quoted in an error message.
const SNIPPET_CHARS: usize = 80;

/// What one sample weighs in the folded counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weight {
    /// Every sample counts 1 (right for `cpu-clock` at a fixed frequency).
    #[default]
    Sample,
    /// Every sample counts its period (`cycles` in frequency mode), so that
    /// shares match `perf report`'s.
    Period,
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Weight::Sample => "sample",
            Weight::Period => "period",
        })
    }
}

/// Which samples of an input to fold, and how to count them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Select {
    pub window: Window,
    /// The event type to fold (`cycles`, `cycles:u`, `sched:sched_switch`);
    /// `None` for the input's first event type.
    pub event: Option<String>,
    pub weight: Weight,
}

/// Folded stacks of one input: what `render` draws and summaries rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    /// Label for this input (file name without `.gz` and one more extension,
    /// e.g. `cluster-basic-prof`); callers set it to a host name for fleets.
    pub name: String,
    /// `frame;frame;frame` (root first) and its count, sorted by stack, each
    /// stack once, so that output is deterministic.
    pub stacks: Vec<(String, u64)>,
    /// Sum of all counts: samples, or periods with [`Weight::Period`].
    pub samples: u64,
    /// The event type folded (`cpu-clock:ppp`); `None` for folded input.
    pub event: Option<String>,
    /// How the counts were weighted.
    pub weight: Weight,
    /// Samples folded, each counted once whatever the weight.
    pub sample_count: u64,
    /// The input's other event types and their sample counts (not folded).
    pub other_events: Vec<(String, u64)>,
    /// Each sample of the folded event type (the whole input, whatever the
    /// window), in ns after the input's first event; empty without timestamps.
    pub offsets_ns: Vec<u64>,
    /// Each folded sample (inside the window) as (ns after the input's first
    /// event, index in `stacks`, its weight), for report.html's time
    /// selection; empty without timestamps.
    pub timed: Vec<(u64, u32, u64)>,
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
    /// Builds a `Folded`, merging repeated stacks and sorting them. Each
    /// count is taken as that many samples.
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
            event: None,
            weight: Weight::Sample,
            sample_count: samples,
            other_events: Vec::new(),
            offsets_ns: Vec::new(),
            timed: Vec::new(),
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

    /// What the counts are, for labels: `1234 samples of cpu-clock`, or
    /// `cycles weighted by period (5.2e9 over 1234 samples)`.
    pub fn describe(&self) -> String {
        let event = self
            .event
            .as_deref()
            .map(|e| if e.is_empty() { "unnamed events" } else { e });
        match (self.weight, event) {
            (Weight::Sample, Some(event)) => {
                format!("{} samples of {event} (1 per sample)", self.sample_count)
            }
            (Weight::Sample, None) => format!("{} samples", self.samples),
            (Weight::Period, event) => format!(
                "{} weighted by period: {} over {} samples",
                event.unwrap_or("samples"),
                self.samples,
                self.sample_count
            ),
        }
    }

    /// The `n` leaf frames with the most self time, largest first (ties by
    /// name, for stable summaries). Names are shown as in the SVG, without
    /// the `_[j]` / `_[k]` / `_[i]` annotations.
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
            // Prefixing every key with the same string keeps them sorted.
            stacks: self
                .stacks
                .iter()
                .map(|(stack, count)| (format!("{root};{stack}"), *count))
                .collect(),
            ..self.clone()
        }
    }
}

/// A time window relative to the input's first event, in seconds: events
/// with `from_s <= t - t0 < to_s` are kept. `None` leaves that side open.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub from_s: Option<f64>,
    pub to_s: Option<f64>,
}

impl Window {
    fn is_open(&self) -> bool {
        self.from_s.is_none() && self.to_s.is_none()
    }

    fn contains_ns(&self, offset_ns: u64) -> bool {
        let offset_s = offset_ns as f64 / 1e9;
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
        "{path}:{line}: input format not recognised: no `perf script` event line in the file; line {line} is not understood: `{snippet}`\n  next step: expected `perf script` output or folded stacks: event lines such as `node 1234 [001] 56.789012: 10101010 cpu-clock:` each followed by frames such as `\t7f3a1c func+0x1a (/usr/bin/node)`, or folded lines `frame;frame 12`"
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
        "{path} has no `{wanted}` samples; it holds {found}\n  next step: pass one of those to --event"
    )]
    NoSuchEvent {
        path: PathBuf,
        wanted: String,
        found: String,
    },

    #[error(
        "{path}: --weight period needs a period on every event line, and {missing} of the `{event}` events have none\n  next step: re-run `perf script` with `-F +period`, or use --weight sample"
    )]
    NoPeriods {
        path: PathBuf,
        event: String,
        missing: u64,
    },
}

/// Collapses one input, using every core for a big `perf script` file.
pub fn file(path: &Path) -> Result<Folded, CollapseError> {
    file_with(path, &Select::default())
}

/// Like [`file`], keeping only the events inside `window`.
pub fn file_window(path: &Path, window: Window) -> Result<Folded, CollapseError> {
    file_with(
        path,
        &Select {
            window,
            ..Select::default()
        },
    )
}

/// Like [`file`], folding the samples that `select` picks.
pub fn file_with(path: &Path, select: &Select) -> Result<Folded, CollapseError> {
    collapse(path, select, cores())
}

/// Collapses several inputs in parallel (see [`files_with`]).
pub fn files(paths: &[PathBuf]) -> Vec<Result<Folded, CollapseError>> {
    files_with(paths, &Select::default())
}

/// Collapses several inputs in parallel, one input per core at a time (with
/// fewer inputs than cores, each input is folded on the cores left over).
/// Results are in input order; one bad input does not affect the others.
pub fn files_with(paths: &[PathBuf], select: &Select) -> Vec<Result<Folded, CollapseError>> {
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
                    let result = collapse(path, select, threads_per_input);
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

fn collapse(path: &Path, select: &Select, threads: usize) -> Result<Folded, CollapseError> {
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
    let folded = match format {
        Format::Blank => Folded::new(default_name(path), []),
        Format::Folded if !select.window.is_open() => {
            return Err(CollapseError::NoTimestamps {
                path: path.to_path_buf(),
            });
        }
        Format::Folded => Folded::new(default_name(path), read_folded(head).map_err(io_error)?),
        Format::Perf | Format::Unknown(_) => {
            // The time origin: the first event line of the input.
            let origin = first_event_time(head.get_ref().0.get_ref());
            if !select.window.is_open() && origin.is_none() {
                return Err(CollapseError::NoTimestamps {
                    path: path.to_path_buf(),
                });
            }
            let parsed = fold_perf(head, select.window, origin, threads).map_err(io_error)?;
            parsed.into_folded(path, select, origin)?
        }
    };
    if folded.samples == 0 {
        return Err(CollapseError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(folded)
}

/// The timestamp of the first event line in the head, if it has one.
fn first_event_time(head: &[u8]) -> Option<u64> {
    head.split(|&b| b == b'\n')
        .filter(|line| line.first() != Some(&b'#'))
        .find_map(parse_event_line)?
        .time
}

/// One event type's samples, as a worker folds them.
#[derive(Default)]
struct EventStacks {
    name: Vec<u8>,
    /// Where the type first appeared: (block number, event number in block).
    first_seen: (u64, u64),
    /// stack → (samples, sum of periods, id: its order of first sight here)
    stacks: HashMap<Vec<u8>, (u64, u64, u32), foldhash::fast::FixedState>,
    /// Folded samples with a timestamp: (absolute time, stack id, period).
    timed: Vec<(u64, u32, u64)>,
    /// Samples folded (inside the window).
    samples: u64,
    /// Absolute timestamps of every sample of this type, window or not.
    times: Vec<u64>,
    /// Every event line of this type, folded or not.
    seen: u64,
    /// Folded samples whose event line had no period.
    without_period: u64,
}

impl EventStacks {
    fn merge(&mut self, other: EventStacks) {
        self.first_seen = self.first_seen.min(other.first_seen);
        // the other worker's stack ids → ours
        let mut ids = vec![0; other.stacks.len()];
        for (stack, (samples, period, id)) in other.stacks {
            let next = self.stacks.len() as u32;
            let entry = self.stacks.entry(stack).or_insert((0, 0, next));
            entry.0 += samples;
            entry.1 += period;
            ids[id as usize] = entry.2;
        }
        self.timed.extend(
            other
                .timed
                .into_iter()
                .map(|(t, id, p)| (t, ids[id as usize], p)),
        );
        self.samples += other.samples;
        self.seen += other.seen;
        self.times.extend(other.times);
        self.without_period += other.without_period;
    }
}

/// Per block: its number, its line count, and the first line in it that was
/// neither a comment, an event nor a frame (number within the block, text).
type BlockLines = (u64, u64, Option<(u64, String)>);

/// Everything one pass learns about a `perf script` input.
#[derive(Default)]
struct Parsed {
    events: Vec<EventStacks>,
    event_lines: u64,
    blocks: Vec<BlockLines>,
    /// Lines that were neither comments, events nor frames.
    odd_lines: u64,
}

impl Parsed {
    fn merge(&mut self, other: Parsed) {
        for event in other.events {
            match self.events.iter_mut().find(|e| e.name == event.name) {
                Some(mine) => mine.merge(event),
                None => self.events.push(event),
            }
        }
        self.event_lines += other.event_lines;
        self.blocks.extend(other.blocks);
        self.odd_lines += other.odd_lines;
    }

    /// Picks the event type (see [`Select::event`]) and weight, and builds
    /// the result; or says why the input gives none.
    fn into_folded(
        mut self,
        path: &Path,
        select: &Select,
        origin: Option<u64>,
    ) -> Result<Folded, CollapseError> {
        if self.event_lines == 0 {
            self.blocks.sort_by_key(|b| b.0);
            let mut before = 0;
            for (_, lines, odd) in &self.blocks {
                if let Some((line, snippet)) = odd {
                    return Err(CollapseError::Unrecognised {
                        path: path.to_path_buf(),
                        line: before + line,
                        snippet: snippet.clone(),
                    });
                }
                before += lines;
            }
            return Ok(Folded::new(default_name(path), []));
        }
        if self.odd_lines > 0 {
            tracing::warn!(
                "{}: skipped {} line(s) that are neither events nor frames",
                path.display(),
                self.odd_lines
            );
        }
        self.events.sort_by_key(|e| e.first_seen);
        let chosen = match &select.event {
            None => 0,
            Some(wanted) => self
                .events
                .iter()
                .position(|e| event_matches(&e.name, wanted))
                .ok_or_else(|| CollapseError::NoSuchEvent {
                    path: path.to_path_buf(),
                    wanted: wanted.clone(),
                    found: self
                        .events
                        .iter()
                        .map(|e| format!("`{}` ({} samples)", event_name(&e.name), e.seen))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?,
        };
        let event = self.events.remove(chosen);
        let name = event_name(&event.name);
        if select.weight == Weight::Period && event.without_period > 0 {
            return Err(CollapseError::NoPeriods {
                path: path.to_path_buf(),
                event: name,
                missing: event.without_period,
            });
        }
        let mut stacks: Vec<(String, u64, u32)> = event
            .stacks
            .into_iter()
            .map(|(stack, (samples, period, id))| {
                let count = match select.weight {
                    Weight::Sample => samples,
                    Weight::Period => period,
                };
                let stack = match String::from_utf8(stack) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                (stack, count, id)
            })
            .filter(|(_, count, _)| *count > 0)
            .collect();
        stacks.sort_unstable();
        let origin = origin.or_else(|| event.times.iter().copied().min());
        let timed = timed_samples(&event.timed, &stacks, origin, select.weight);
        let stacks: Vec<(String, u64)> = stacks.into_iter().map(|(s, c, _)| (s, c)).collect();
        let mut offsets_ns: Vec<u64> = match origin {
            Some(origin) => event
                .times
                .iter()
                .map(|t| t.saturating_sub(origin))
                .collect(),
            None => Vec::new(),
        };
        // blocks are folded in any order
        offsets_ns.sort_unstable();
        Ok(Folded {
            name: default_name(path),
            samples: stacks.iter().map(|(_, c)| c).sum(),
            stacks,
            event: Some(name),
            weight: select.weight,
            sample_count: event.samples,
            other_events: self
                .events
                .iter()
                .map(|e| (event_name(&e.name), e.seen))
                .collect(),
            offsets_ns,
            timed,
        })
    }
}

/// The folded samples in time order, each with its index in the sorted
/// `stacks` (stacks weighing 0 are left out) and its weight.
fn timed_samples(
    timed: &[(u64, u32, u64)],
    stacks: &[(String, u64, u32)],
    origin: Option<u64>,
    weight: Weight,
) -> Vec<(u64, u32, u64)> {
    let Some(origin) = origin else {
        return Vec::new();
    };
    let mut index = vec![u32::MAX; stacks.iter().map(|s| s.2 as usize + 1).max().unwrap_or(0)];
    for (i, (_, _, id)) in stacks.iter().enumerate() {
        index[*id as usize] = i as u32;
    }
    let mut out: Vec<(u64, u32, u64)> = timed
        .iter()
        .filter_map(|&(t, id, period)| {
            let i = *index.get(id as usize)?;
            let w = match weight {
                Weight::Sample => 1,
                Weight::Period => period,
            };
            (i != u32::MAX && w > 0).then_some((t.saturating_sub(origin), i, w))
        })
        .collect();
    out.sort_unstable();
    out
}

fn event_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--event cycles` picks `cycles`, and also `cycles:u` or `cycles:ppp`
/// (the same event with modifiers, see perf-list(1) "EVENT MODIFIERS");
/// `--event cycles:u` picks only that one.
fn event_matches(name: &[u8], wanted: &str) -> bool {
    let wanted = wanted.as_bytes();
    if name == wanted {
        return true;
    }
    match name.strip_prefix(wanted) {
        Some([b':', modifiers @ ..]) => {
            !modifiers.is_empty() && modifiers.iter().all(|b| b"ukhIGHpPSDWeb".contains(b))
        }
        _ => false,
    }
}

/// The event being read: its line's facts, and its frames so far.
struct Current {
    event: usize,
    time: Option<u64>,
    period: Option<u64>,
    /// Outside the window: its frames are read but not folded.
    outside: bool,
}

/// A worker's state: what it has folded, plus buffers reused for every
/// event so that no frame allocates.
#[derive(Default)]
struct Folder {
    parsed: Parsed,
    /// The root frame (the command name) of the current event.
    comm: Vec<u8>,
    /// Frame names of the current event, leaf first, end offsets in `names`.
    names: Vec<u8>,
    ends: Vec<usize>,
    /// The stack being built, root first.
    key: Vec<u8>,
    /// Index in `parsed.events` of the last event type seen.
    last_event: usize,
}

impl Folder {
    /// Folds one block of whole events (block number `seq`).
    fn block(
        &mut self,
        block: &[u8],
        seq: u64,
        window: Window,
        origin: Option<u64>,
    ) -> io::Result<()> {
        let mut current: Option<Current> = None;
        let (mut lines, mut events_in_block) = (0u64, 0u64);
        let mut odd: Option<(u64, String)> = None;
        let mut rest = block;
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let raw = &rest[..end];
            rest = &rest[(end + 1).min(rest.len())..];
            lines += 1;
            let line = trim_end(raw);
            if line.is_empty() {
                self.finish(current.take());
                continue;
            }
            if line[0] == b'#' {
                continue;
            }
            // perf prints call-chain frames after a tab; nothing else starts with one.
            if line[0] == b'\t' && current.is_some() && self.frame(line) {
                continue;
            }
            if let Some(event) = parse_event_line(line) {
                self.finish(current.take());
                self.parsed.event_lines += 1;
                events_in_block += 1;
                let index =
                    self.event_index(&line[event.name.0..event.name.1], seq, events_in_block);
                let outside = match event.time {
                    Some(time) => {
                        !window.is_open()
                            && !window.contains_ns(time.saturating_sub(origin.unwrap_or(time)))
                    }
                    None if !window.is_open() => {
                        return Err(io::Error::other(Marker::NoTimestamps));
                    }
                    None => false,
                };
                self.comm.clear();
                self.comm.extend(
                    line[event.comm.0..event.comm.1]
                        .iter()
                        .map(|&b| if b == b' ' || b == b';' { b'_' } else { b }),
                );
                current = Some(Current {
                    event: index,
                    time: event.time,
                    period: event.period,
                    outside,
                });
                // a one-line stack: `… cpu-clock:  7f12 func+0x1 (dso)`
                if event.rest < line.len() {
                    let tail = &line[event.rest..];
                    if parse_frame(tail).is_some() {
                        self.frame(tail);
                    }
                }
                continue;
            }
            if current.is_some() && self.frame(line) {
                continue;
            }
            self.parsed.odd_lines += 1;
            if odd.is_none() {
                odd = Some((lines, snippet(&String::from_utf8_lossy(line))));
            }
        }
        self.finish(current.take());
        self.parsed.blocks.push((seq, lines, odd));
        Ok(())
    }

    fn event_index(&mut self, name: &[u8], seq: u64, nth: u64) -> usize {
        let events = &mut self.parsed.events;
        if events.get(self.last_event).is_some_and(|e| e.name == name) {
            return self.last_event;
        }
        let index = match events.iter().position(|e| e.name == name) {
            Some(index) => index,
            None => {
                events.push(EventStacks {
                    name: name.to_vec(),
                    first_seen: (seq, nth),
                    ..EventStacks::default()
                });
                events.len() - 1
            }
        };
        self.last_event = index;
        index
    }

    /// Reads a frame line into `names`; false if it is not one.
    fn frame(&mut self, line: &[u8]) -> bool {
        let Some(frame) = parse_frame(line) else {
            return false;
        };
        let java = self.comm.starts_with(b"java");
        push_frame_names(&frame, java, &mut self.names, &mut self.ends);
        true
    }

    /// Folds the event that just ended.
    fn finish(&mut self, current: Option<Current>) {
        let Some(current) = current else { return };
        let event = &mut self.parsed.events[current.event];
        event.seen += 1;
        if let Some(time) = current.time {
            event.times.push(time);
        }
        if !current.outside {
            let key = &mut self.key;
            key.clear();
            key.extend_from_slice(&self.comm);
            let mut end = self.names.len();
            // frames were pushed leaf first: walk them backwards for root first
            let mut starts = self.ends.len();
            while starts > 0 {
                starts -= 1;
                let start = if starts == 0 {
                    0
                } else {
                    self.ends[starts - 1]
                };
                if !key.is_empty() {
                    key.push(b';');
                }
                key.extend_from_slice(&self.names[start..end]);
                end = start;
            }
            if key.is_empty() {
                key.extend_from_slice(b"[unknown]");
            }
            let period = current.period.unwrap_or(0);
            if current.period.is_none() {
                event.without_period += 1;
            }
            event.samples += 1;
            let id = match event.stacks.get_mut(key.as_slice()) {
                Some(counts) => {
                    counts.0 += 1;
                    counts.1 += period;
                    counts.2
                }
                None => {
                    let id = event.stacks.len() as u32;
                    event.stacks.insert(key.clone(), (1, period, id));
                    id
                }
            };
            if let Some(time) = current.time {
                event.timed.push((time, id, period));
            }
        }
        self.names.clear();
        self.ends.clear();
    }
}

fn trim_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

fn trim_start(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    &line[start..]
}

/// The parts of a `perf script` event line that flamefire needs; byte
/// ranges are into the line.
#[derive(Debug, PartialEq)]
struct EventLine {
    /// The command name (may hold spaces and digits); empty without `comm`.
    comm: (usize, usize),
    /// Nanoseconds, when the line has a `time:` field.
    time: Option<u64>,
    period: Option<u64>,
    /// The event name with its modifiers (`cycles:ppp`, `sched:sched_switch`).
    name: (usize, usize),
    /// Where what follows the event name starts (a one-line frame, or a
    /// tracepoint's fields).
    rest: usize,
}

/// Reads an event line whatever `perf script -F` left out. perf prints
/// (`perf_sample__fprintf_start` and `process_event` in
/// tools/perf/builtin-script.c), each field optional:
///
/// ```text
/// comm  pid/tid  [cpu]  time:  period  event:  [one-line frame | tracepoint fields]
/// node  9495   296.427171:   10101010 cpu-clock:ppp:
/// V8 WorkerThread 24636/25607 [000] 94564.109216: cycles:
/// node 9495 [001]  5000.123456789: sched:sched_switch: prev_comm=node …
/// ```
///
/// The anchors are the colons followed by a space (or ending the line):
/// event names may hold colons (`sched:sched_switch`, `cycles:u`) but never
/// `": "`. The word before the first such colon is the time when it is a
/// number with a dot (`296.427171`, `--ns` gives 9 decimals); the event name
/// is then the last word before the next one, with the period before it.
/// Without a time, the event name is the last word before the first such
/// colon. What is left of the time (or of the period and event) is
/// `comm pid[/tid] [cpu]`, read from the right so that a command name may hold
/// spaces and digit-only words. A line needs a time or a pid to count.
fn parse_event_line(line: &[u8]) -> Option<EventLine> {
    let line = trim_end(line);
    let first = colon_separator(line, 0)?;
    let head = &line[..first];
    let last_start = word_start(head);
    let (time, before, name, period, rest) = match parse_time(&head[last_start..]) {
        Some(time) => {
            let after = first + 1;
            match colon_separator(line, after) {
                Some(second) => {
                    let segment = &line[after..second];
                    let name_start = after + word_start(segment);
                    let (period, _) = digits_word_before(line, after, name_start);
                    (
                        Some(time),
                        last_start,
                        (name_start, second),
                        period,
                        second + 1,
                    )
                }
                None => {
                    // no event name (`-F` without `event`): maybe a period
                    let tail = trim_start(&line[after..]);
                    let tail_at = line.len() - tail.len();
                    let word_end =
                        tail_at + tail.iter().position(|&b| b == b' ').unwrap_or(tail.len());
                    let word = &line[tail_at..word_end];
                    let period = (!word.is_empty() && word.iter().all(u8::is_ascii_digit))
                        .then(|| parse_u64(word))
                        .flatten();
                    let rest = if period.is_some() { word_end } else { after };
                    (Some(time), last_start, (after, after), period, rest)
                }
            }
        }
        None => {
            let name = &head[last_start..];
            if !name.iter().any(u8::is_ascii_alphabetic) {
                return None;
            }
            // `comm pid[/tid] [cpu] [period] event:`: the number before the
            // event is the pid, unless it cannot be one (above
            // PID_MAX_LIMIT, 2^22, see proc(5) /proc/sys/kernel/pid_max) or
            // a cpu or pid/tid comes before it. (`comm pid period` with a
            // small period is read as a command name ending in a number.)
            let (period, period_start) = digits_word_before(line, 0, last_start);
            let before = match period {
                Some(p) if p > 1 << 22 || period_context(&line[..period_start]) => period_start,
                _ => last_start,
            };
            let period = period.filter(|_| before == period_start);
            (None, before, (last_start, first), period, first + 1)
        }
    };
    let (comm, pid) = comm_and_pid(&line[..before]);
    if time.is_none() && !pid {
        return None;
    }
    Some(EventLine {
        comm,
        time,
        period,
        name,
        rest: rest.min(line.len()),
    })
}

/// The first `:` at or after `from` that is followed by a space or ends the line.
fn colon_separator(line: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b':', &line[at..]) {
        let colon = at + i;
        if colon + 1 == line.len() || line[colon + 1] == b' ' {
            return Some(colon);
        }
        at = colon + 1;
    }
    None
}

/// Start of the last space-separated word of `text` (trailing spaces skipped).
fn word_start(text: &[u8]) -> usize {
    let text = trim_end(text);
    memchr::memrchr(b' ', text).map_or(0, |i| i + 1)
}

/// The all-digit word that ends right before `end` (after spaces), if any,
/// and where it starts; only looks at `line[from..end]`.
fn digits_word_before(line: &[u8], from: usize, end: usize) -> (Option<u64>, usize) {
    let text = trim_end(&line[from..end]);
    let start = word_start(text);
    let word = &text[start..];
    if !word.is_empty() && word.iter().all(u8::is_ascii_digit) {
        (parse_u64(word), from + start)
    } else {
        (None, end)
    }
}

/// Whether `text` ends with a cpu (`[001]`) or a `pid/tid`, which a period
/// may follow.
fn period_context(text: &[u8]) -> bool {
    let text = trim_end(text);
    let word = &text[word_start(text)..];
    is_cpu(word) || (is_pid(word) && word.contains(&b'/'))
}

fn is_pid(word: &[u8]) -> bool {
    !word.is_empty()
        && word[0].is_ascii_digit()
        && word.iter().all(|&b| b.is_ascii_digit() || b == b'/')
        && word.iter().filter(|&&b| b == b'/').count() <= 1
}

fn is_cpu(word: &[u8]) -> bool {
    word.len() > 2
        && word[0] == b'['
        && word[word.len() - 1] == b']'
        && word[1..word.len() - 1].iter().all(u8::is_ascii_digit)
}

/// `comm pid[/tid] [cpu]` → the comm's range, and whether a pid was there.
fn comm_and_pid(text: &[u8]) -> ((usize, usize), bool) {
    let mut end = trim_end(text).len();
    let word = |end: usize| {
        let start = word_start(&text[..end]);
        (start, &text[start..end])
    };
    let (start, last) = word(end);
    if is_cpu(last) {
        end = trim_end(&text[..start]).len();
    }
    let (start, last) = word(end);
    let pid = is_pid(last);
    if pid {
        end = trim_end(&text[..start]).len();
    }
    let comm_start = text.len() - trim_start(text).len();
    ((comm_start.min(end), end), pid)
}

/// `296.427171` or `5000.123456789` → nanoseconds.
fn parse_time(word: &[u8]) -> Option<u64> {
    let dot = memchr::memchr(b'.', word)?;
    let (secs, frac) = (&word[..dot], &word[dot + 1..]);
    if secs.is_empty()
        || frac.is_empty()
        || frac.len() > 9
        || !secs.iter().all(u8::is_ascii_digit)
        || !frac.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut nanos = parse_u64(frac)?;
    for _ in frac.len()..9 {
        nanos *= 10;
    }
    parse_u64(secs)?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &b| {
        n.checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))
    })
}

/// One frame line: `ip sym+0xoff (dso)` (see `sample__fprintf_callchain`
/// in tools/perf/util/evsel_fprintf.c: `\t%16lx`, ` sym`, `+0xoff`,
/// ` (dso)` unless the frame is inlined, then ` (inlined)`); `sym` and `dso`
/// may each be missing (`-F ip,dso`, `-F ip,sym`).
#[derive(Debug, PartialEq)]
struct Frame<'a> {
    sym: &'a [u8],
    dso: Option<&'a [u8]>,
    inlined: bool,
}

fn parse_frame(line: &[u8]) -> Option<Frame<'_>> {
    let line = trim_start(trim_end(line));
    let ip_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let ip = &line[..ip_end];
    if ip.is_empty() || !ip.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let rest = trim_start(&line[ip_end..]);
    let (mut sym, mut dso) = (rest, None);
    if rest.last() == Some(&b')') {
        // the matching `(`: a dso may itself hold one, `(/x.so (deleted))`
        let mut depth = 0usize;
        for i in (0..rest.len()).rev() {
            match rest[i] {
                b')' => depth += 1,
                b'(' => {
                    depth -= 1;
                    if depth == 0 {
                        sym = trim_end(&rest[..i]);
                        dso = Some(&rest[i + 1..rest.len() - 1]);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let inlined = dso == Some(&b"inlined"[..]);
    if inlined {
        // an inlined frame carries no dso (see above)
        dso = None;
    }
    Some(Frame { sym, dso, inlined })
}

/// Appends the flamegraph names of one frame line to `names` (leaf first;
/// `a->b` Java inlining gives two names, `b` being the leaf).
fn push_frame_names(frame: &Frame<'_>, java: bool, names: &mut Vec<u8>, ends: &mut Vec<usize>) {
    let mut sym = frame.sym;
    // `func+0x1f` → `func`
    if let Some(plus) = memchr::memrchr(b'+', sym) {
        let offset = &sym[plus + 1..];
        if offset.len() > 2
            && offset.starts_with(b"0x")
            && offset[2..].iter().all(u8::is_ascii_hexdigit)
        {
            sym = &sym[..plus];
        }
    }
    let dso = frame
        .dso
        .map(|d| d.strip_suffix(b" (deleted)").unwrap_or(d));
    if sym.is_empty() || sym == b"[unknown]" {
        // inferno's fallback: the dso's file name, bracketed
        match dso {
            Some(dso) if dso != b"[unknown]" && !is_perf_map(dso) => {
                let base = memchr::memrchr(b'/', dso).map_or(dso, |i| &dso[i + 1..]);
                // `[kernel.kallsyms]` is bracketed already
                if base.starts_with(b"[") && base.ends_with(b"]") {
                    names.extend_from_slice(base);
                } else {
                    names.push(b'[');
                    names.extend_from_slice(base);
                    names.push(b']');
                }
            }
            _ => names.extend_from_slice(b"[unknown]"),
        }
        annotate(dso, frame.inlined, false, names);
        ends.push(names.len());
        return;
    }
    // Java inlining (perf-map-agent's `unfoldall`): `caller->callee` in a
    // perf map, the callees marked inlined; pushed leaf first like the rest.
    // (Elsewhere `->` is C++'s `operator->`, not a split.)
    if dso.is_some_and(is_jit) && memchr::memmem::find(sym, b"->").is_some() {
        let parts: Vec<&[u8]> = split_arrows(sym);
        for (i, part) in parts.iter().enumerate().rev() {
            push_symbol(part, java, names);
            annotate(dso, frame.inlined, i > 0, names);
            ends.push(names.len());
        }
        return;
    }
    push_symbol(sym, java, names);
    annotate(dso, frame.inlined, false, names);
    ends.push(names.len());
}

fn split_arrows(sym: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = sym;
    while let Some(i) = memchr::memmem::find(rest, b"->") {
        parts.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    parts.push(rest);
    parts
}

/// A symbol as inferno's `tidy_generic` and `tidy_java` leave it: `;`
/// becomes `:` (it separates frames), and a top-level argument list is
/// dropped, except Go's `pkg.(*T).f` and C++'s `(anonymous namespace)`.
fn push_symbol(sym: &[u8], java: bool, names: &mut Vec<u8>) {
    let mut sym = sym;
    if java && sym.first() == Some(&b'L') && memchr::memchr(b'/', sym).is_some() {
        sym = &sym[1..];
    }
    if memchr::memchr(b'(', sym).is_some() {
        let mut depth = 0i32;
        let mut last_dot = None;
        for (i, &b) in sym.iter().enumerate() {
            match b {
                b'<' | b'{' | b'[' => depth += 1,
                b'>' | b'}' | b']' | b')' => depth -= 1,
                b'(' => {
                    if depth == 0
                        && last_dot != Some(i)
                        && !sym[i..].starts_with(b"(anonymous namespace)")
                    {
                        sym = &sym[..i];
                        break;
                    }
                    depth += 1;
                }
                b'.' => last_dot = Some(i + 1),
                _ => {}
            }
        }
    }
    let start = names.len();
    names.extend_from_slice(sym);
    if memchr::memchr(b';', sym).is_some() {
        for b in &mut names[start..] {
            if *b == b';' {
                *b = b':';
            }
        }
    }
}

/// inferno's annotations: `_[i]` inlined, else `_[k]` kernel, else `_[j]` JIT.
fn annotate(dso: Option<&[u8]>, inlined: bool, java_inlined: bool, names: &mut Vec<u8>) {
    if inlined || java_inlined {
        names.extend_from_slice(b"_[i]");
    } else if dso.is_some_and(is_kernel) {
        names.extend_from_slice(b"_[k]");
    } else if dso.is_some_and(is_jit) {
        names.extend_from_slice(b"_[j]");
    }
}

/// `[kernel.kallsyms]`, `[nf_conntrack]`, `x.ko`, `…/vmlinux-5.4` (inferno's `is_kernel`).
fn is_kernel(dso: &[u8]) -> bool {
    if dso == b"[unknown]" {
        return false;
    }
    if dso.first() == Some(&b'[') || dso.ends_with(b".ko") {
        return true;
    }
    // the last `vmlinux`, followed only by a version-like suffix
    memchr::memrchr_iter(b'v', dso)
        .find(|&at| dso[at..].starts_with(b"vmlinux"))
        .is_some_and(|at| {
            dso[at..]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        })
}

/// `/tmp/perf-<pid>.map` (perf map files) or `…/jitted-<pid>-<n>.so` (jitdump).
fn is_jit(dso: &[u8]) -> bool {
    is_perf_map(dso) || (dso.ends_with(b".so") && memchr::memmem::find(dso, b"/jitted-").is_some())
}

fn is_perf_map(dso: &[u8]) -> bool {
    dso.starts_with(b"/tmp/perf-") && dso.ends_with(b".map")
}

/// Folds `perf script` text on `threads` threads.
///
/// The input is read in blocks of whole events (see [`Blocks`]). With more
/// than one thread, workers fold blocks on their own while this thread reads
/// the next ones. Blocks in flight are bounded, so memory stays a few blocks
/// per thread.
fn fold_perf(
    input: Head,
    window: Window,
    origin: Option<u64>,
    threads: usize,
) -> io::Result<Parsed> {
    let mut blocks = Blocks {
        input,
        carry: Vec::new(),
    };
    if threads <= 1 {
        let mut folder = Folder::default();
        let (mut spare, mut seq) = (Vec::new(), 0);
        while let Some(block) = blocks.next(spare)? {
            folder.block(&block, seq, window, origin)?;
            seq += 1;
            spare = block;
        }
        return Ok(folder.parsed);
    }

    let (sender, receiver) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads);
    let receiver = Mutex::new(receiver);
    // Folded blocks come back to be filled again: fresh buffers would cost
    // a page fault per 4 KiB read.
    let (spare_sender, spares) = mpsc::channel::<Vec<u8>>();
    let failed = AtomicBool::new(false);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let spare_sender = spare_sender.clone();
                let (receiver, failed) = (&receiver, &failed);
                scope.spawn(move || {
                    let mut folder = Folder::default();
                    loop {
                        let block = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((seq, block)) = block else { break };
                        if let Err(e) = folder.block(&block, seq, window, origin) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        let _ = spare_sender.send(block);
                    }
                    Ok(folder.parsed)
                })
            })
            .collect();

        let mut read = Ok(());
        let mut seq = 0;
        while !failed.load(Ordering::Relaxed) {
            match blocks.next(spares.try_recv().unwrap_or_default()) {
                Ok(Some(block)) => {
                    if sender.send((seq, block)).is_err() {
                        break;
                    }
                    seq += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        drop(sender);

        let mut outcome: io::Result<Parsed> = read.map(|()| Parsed::default());
        for worker in workers {
            match worker.join() {
                Ok(Ok(part)) => {
                    if let Ok(all) = &mut outcome {
                        all.merge(part);
                    }
                }
                Ok(Err(e)) => {
                    if outcome.is_ok() {
                        outcome = Err(e);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        outcome
    })
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

/// Offset in `block` where a block can end: after the last blank line
/// (events with call chains end with one), or else, for one-line events,
/// at the start of the last complete event line. `None` if there is none
/// after the first byte.
fn last_event_start(block: &[u8]) -> Option<usize> {
    if let Some(blank) = memchr::memmem::rfind(block, b"\n\n") {
        return Some(blank + 2);
    }
    // no blank line: one-line events; cut at the last event line
    let mut end = block.len();
    for newline in memchr::memrchr_iter(b'\n', block).take(64) {
        let start = newline + 1;
        if start < end && start > 0 {
            let line = &block[start..end];
            if line[0] != b'\t' && line[0] != b'#' && parse_event_line(line).is_some() {
                return Some(start);
            }
        }
        end = newline;
    }
    None
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
    let format = detect(&head);
    Ok((io::Cursor::new(head).chain(input), format))
}

fn is_skippable(line: &[u8]) -> bool {
    line.first() == Some(&b'#') || line.iter().all(u8::is_ascii_whitespace)
}

/// Tells `perf script` output from folded stacks by the first meaningful
/// line (blank lines and `#` comments are skipped): an event line or a
/// frame line → `perf script`; `stack count` with an integer count, not
/// indented → folded (later lines are checked as they are read).
fn detect(head: &[u8]) -> Format {
    let Some((index, first)) = head
        .split(|&b| b == b'\n')
        .enumerate()
        .find(|(_, line)| !is_skippable(line))
    else {
        return Format::Blank;
    };
    if parse_event_line(first).is_some() || parse_frame(first).is_some() {
        return Format::Perf;
    }
    if parse_folded_line(&String::from_utf8_lossy(first)).is_some() {
        return Format::Folded;
    }
    Format::Unknown(index as u64 + 1)
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

/// Why folding stopped, carried inside an `io::Error`.
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
                write!(f, "line {line} is not a folded line: {snippet}")
            }
        }
    }
}

impl std::error::Error for Marker {}

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
    fn detection_rules() {
        assert_eq!(detect(PERF.as_bytes()), Format::Perf);
        assert_eq!(
            detect(b"\t7f5b867c66e2 foo+0x1 (/usr/bin/node)\n"),
            Format::Perf
        );
        assert_eq!(detect(b"a;b 1\nc 2\n"), Format::Folded);
        // later lines of a folded file are checked as they are read
        assert_eq!(detect(b"a;b 1\nc;d"), Format::Folded);
        assert_eq!(detect(b"\n# only a comment\n\n"), Format::Blank);
        assert_eq!(detect(b"hello world\n"), Format::Unknown(1));
        assert_eq!(detect(b"\na;b 1.5\n"), Format::Unknown(2));
        assert_eq!(detect(b"  a;b 1\n"), Format::Unknown(1));
    }

    type Parts = Option<(String, Option<u64>, Option<u64>, String)>;

    fn event(line: &str) -> Parts {
        let e = parse_event_line(line.as_bytes())?;
        Some((
            line[e.comm.0..e.comm.1].to_string(),
            e.time,
            e.period,
            line[e.name.0..e.name.1].to_string(),
        ))
    }

    fn some(comm: &str, time: Option<u64>, period: Option<u64>, name: &str) -> Parts {
        Some((comm.to_string(), time, period, name.to_string()))
    }

    #[test]
    fn event_lines_in_every_field_layout() {
        const T: Option<u64> = Some(296_427_171_000);
        // default fields, cpu-clock at 99 Hz
        assert_eq!(
            event("node  9495   296.427171:   10101010 cpu-clock:ppp: "),
            some("node", T, Some(10101010), "cpu-clock:ppp")
        );
        // comm with spaces, pid/tid, cpu, no period
        assert_eq!(
            event("V8 WorkerThread 24636/25607 [000]   296.427171: cycles:"),
            some("V8 WorkerThread", T, None, "cycles")
        );
        // comm with a digit-only word: the pid is the last one
        assert_eq!(
            event("worker 2 24636 [003] 296.427171: 1 cpu-clock:uhH:"),
            some("worker 2", T, Some(1), "cpu-clock:uhH")
        );
        // --ns
        assert_eq!(
            event("node 9495 5000.123456789: 250000 cycles:u:"),
            some("node", Some(5_000_123_456_789), Some(250000), "cycles:u")
        );
        // no time
        assert_eq!(
            event("node 9495 cpu-clock:"),
            some("node", None, None, "cpu-clock")
        );
        assert_eq!(
            event("node 9495 [001] 10101010 cpu-clock:"),
            some("node", None, Some(10101010), "cpu-clock")
        );
        // no pid; no comm
        assert_eq!(
            event("node 296.427171: cpu-clock:"),
            some("node", T, None, "cpu-clock")
        );
        assert_eq!(
            event("  296.427171: 7 page-faults:"),
            some("", T, Some(7), "page-faults")
        );
        // comm padded to 16 (events without call chains), one-line frame
        assert_eq!(
            event(
                "            node  9495 [001]   296.427171: 1 page-faults:  7f3a1c2b foo+0x1 (/lib/x.so)"
            ),
            some("node", T, Some(1), "page-faults")
        );
        // tracepoint with its fields
        assert_eq!(
            event(
                "node 9495 [001] 296.427171: sched:sched_switch: prev_comm=node prev_pid=9495 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120"
            ),
            some("node", T, None, "sched:sched_switch")
        );
        // no event name
        assert_eq!(event("node 9495 296.427171: "), some("node", T, None, ""));
        // a comm cut by the kernel in the middle of a UTF-8 character
        let cut = b"caf\xc3 77 5.5: 3 cpu-clock:\n";
        let e = parse_event_line(cut).unwrap();
        assert_eq!((e.time, e.period), (Some(5_500_000_000), Some(3)));
        for line in [
            "node 9495 no colon here",
            "a;b;c 12",
            "hello world: not an event",
            "\t7f12 foo (/x: y)",
        ] {
            assert_eq!(parse_event_line(line.as_bytes()), None, "{line}");
        }
    }

    fn names(line: &str, java: bool) -> Vec<String> {
        let frame = parse_frame(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
        let (mut names, mut ends) = (Vec::new(), Vec::new());
        push_frame_names(&frame, java, &mut names, &mut ends);
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let name = String::from_utf8(names[start..end].to_vec()).unwrap();
                start = end;
                name
            })
            .collect()
    }

    #[test]
    fn frames_are_named_like_inferno() {
        let one = |line: &str| names(line, false).join(" | ");
        assert_eq!(
            one("\t    7f5b867c66e2 JS:*tokenizeHtml /app/work.js:1:22+0x322 (/tmp/perf-9495.map)"),
            "JS:*tokenizeHtml /app/work.js:1:22_[j]"
        );
        assert_eq!(
            one("\tffffffff8103ce3b native_safe_halt+0xb ([kernel.kallsyms])"),
            "native_safe_halt_[k]"
        );
        assert_eq!(
            one("7f533952bc77 _dl_map+0x597 (/usr/lib/ld-2.28.so)"),
            "_dl_map",
            "unindented"
        );
        assert_eq!(one("    7f53389994d0 [unknown] ([unknown])"), "[unknown]");
        assert_eq!(
            one("\t7f53389994d0 [unknown] (/usr/lib/libc.so.6)"),
            "[libc.so.6]"
        );
        assert_eq!(
            one("\t7f9f4a7c6d69 [unknown] (/tmp/perf-1234.map)"),
            "[unknown]_[j]"
        );
        assert_eq!(
            one("\t7f1e2215d058  (/lib/x86_64-linux-gnu/libc-2.15.so)"),
            "[libc-2.15.so]"
        );
        assert_eq!(
            one("\t7f12 handler+0x10 (/opt/app/lib.so (deleted))"),
            "handler"
        );
        assert_eq!(
            one("\t7f12 [unknown] (/opt/app/lib.so (deleted))"),
            "[lib.so]"
        );
        assert_eq!(one("\t55d5e0a1b2c3 inner_fn (inlined)"), "inner_fn_[i]");
        assert_eq!(
            one("\t55d5e0a1b2c3 v8::internal::Runtime_X(int, unsigned long*)+0x2a (/usr/bin/node)"),
            "v8::internal::Runtime_X"
        );
        assert_eq!(
            one("\t55d5e0a1b2c3 net/http.(*Client).Do+0x2a (/app/go)"),
            "net/http.(*Client).Do"
        );
        assert_eq!(
            one("\t55d5e0a1b2c3 (anonymous namespace)::f() (/app/cc)"),
            "(anonymous namespace)::f"
        );
        assert_eq!(one("\t55d5e0a1b2c3 a;b (/app/x)"), "a:b");
        assert_eq!(one("\t55d5e0a1b2c3"), "[unknown]", "-F ip only");
        assert_eq!(
            one("\tffffffff8103ce3b ([kernel.kallsyms])"),
            "[kernel.kallsyms]_[k]",
            "-F ip,dso"
        );
        assert_eq!(one("\t55d5e0a1b2c3 main"), "main", "-F ip,sym");
        assert_eq!(
            one("\t8c3453 tcp_sendmsg (/lib/modules/4.3.0/build/vmlinux)"),
            "tcp_sendmsg_[k]"
        );
        // Java: perf-map-agent's inlining and class names
        assert_eq!(
            names(
                "\t7f722d142778 Lcom/A;::run->Lcom/B;::call (/tmp/perf-19982.map)",
                true
            ),
            ["com/B:::call_[i]", "com/A:::run_[j]"].map(String::from)
        );
        assert_eq!(parse_frame(b"node 9495 1.0: cpu-clock:"), None);
        assert_eq!(parse_frame(b"  cluster.js:100"), None);
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
        assert_eq!(
            results[2].as_ref().unwrap().stacks,
            perf_expected("c").stacks
        );
        assert_eq!(results[3].as_ref().unwrap().samples, 2);
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
}
