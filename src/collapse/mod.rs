//! Stage **collapse**: `perf script` text (plain or gzip) or already-folded
//! stacks → [`Folded`] stacks, one per input, with the per-sample timestamps
//! that the heat map needs, from one pass over the bytes.
//!
//! It reads from a reader that its caller opened (`stacks` opens local
//! files) and hands plain data to `render` and `heatmap`. It must not open
//! files, render, download or touch the network.
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
//! its anchors, not by field positions; see [`script::parse_event_line`].
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
//! Big inputs are read in blocks of whole events that worker threads fold
//! on their own. Memory is a few blocks per thread plus the *distinct*
//! stacks and one timestamp per sample.
//!
//! The files, in the order the bytes flow through them (as inferno's
//! `src/collapse/` splits its own):
//!
//! ```text
//! format    gzip or not; perf script, folded stacks or neither (first lines);
//!           the folded-stacks reader
//! blocks    perf script text → blocks of whole events, folded on threads
//! fold      one block → stacks per event type (no allocation per line)
//!   script    the perf script line parser: event lines, frame lines
//!   names     a frame's flamegraph name (inferno's cleanup and annotations)
//! pick      everything folded → one `Folded`: event type, weight, window
//!   timeline  per-sample times for the heat map and report.html
//! options   Select, Weight, Window: what the caller asks for
//! folded    Folded, the result, and its helpers
//! error     CollapseError, with the input and the line at fault
//! ```

mod blocks;
mod error;
mod fold;
mod folded;
mod format;
mod names;
mod options;
mod pick;
mod script;
mod timeline;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::thread;

use flate2::bufread::MultiGzDecoder;

pub use error::CollapseError;
pub use folded::{Folded, TopFunction};
pub use options::{Select, Weight, Window};

use error::Stop;
use format::Format;

/// Read buffer per input.
const READ_CAPACITY: usize = 128 * 1024;

/// Collapses one input read from `input` (plain or gzip `perf script`
/// text, or folded stacks), using every core for a big one. `path` names
/// the input: in errors, and as [`Folded::name`] (see [`default_name`]).
pub fn read(path: &Path, input: impl Read, select: &Select) -> Result<Folded, CollapseError> {
    read_on(path, input, select, cores())
}

/// Like [`read`], folding on `threads` threads (callers that collapse
/// several inputs at once share the cores out).
pub fn read_on(
    path: &Path,
    input: impl Read,
    select: &Select,
    threads: usize,
) -> Result<Folded, CollapseError> {
    let mut raw = BufReader::with_capacity(READ_CAPACITY, input);
    let gzip = match raw.fill_buf() {
        Ok(head) => head.starts_with(&[0x1f, 0x8b]),
        Err(source) => return Err(Stop::Read(source).at(path, false)),
    };
    let input: Box<dyn BufRead + '_> = if gzip {
        Box::new(BufReader::with_capacity(
            READ_CAPACITY,
            MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    collapse(path, input, select, threads).map_err(|stop| stop.at(path, gzip))
}

/// The cores this process may use.
pub fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn collapse(
    path: &Path,
    input: Box<dyn BufRead + '_>,
    select: &Select,
    threads: usize,
) -> Result<Folded, Stop> {
    let (head, format) = format::sniff(input)?;
    let folded = match format {
        Format::Blank => Folded::new(default_name(path), []),
        Format::Folded if !select.window.is_open() => return Err(Stop::NoTimestamps),
        Format::Folded => Folded::new(default_name(path), format::read_folded(head)?),
        Format::Perf | Format::Unknown(_) => {
            // The time origin: the first event line of the input.
            let origin = timeline::first_event_time(head.get_ref().0.get_ref());
            if !select.window.is_open() && origin.is_none() {
                return Err(Stop::NoTimestamps);
            }
            let parsed = blocks::fold_perf(head, select.window, origin, threads)?;
            parsed.into_folded(path, select, origin)?
        }
    };
    if folded.samples == 0 {
        return Err(Stop::Empty);
    }
    Ok(folded)
}

/// `dir/cluster-basic-prof.perf.gz` → `cluster-basic-prof`.
pub fn default_name(path: &Path) -> String {
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
mod tests;
