//! Stage **heatmap** (beside collapse): the timestamps of `perf script`
//! events → a sub-second heat map, in the manner of FlameScope.
//!
//! Columns are seconds from the first sample, rows are equal slices of a
//! second (50 × 20 ms by default), and each cell counts the samples that fell
//! in it. A 1 s burst every 3 s, invisible in a 30 s flamegraph, shows as
//! bright columns three apart; `render --from/--to` then draws one of them.
//!
//! It must not fold stacks or draw: it reads one input and returns numbers
//! for `html` to draw. The time origin and which events count follow
//! `collapse`'s rules, so that a window read off the map selects the same
//! samples that `collapse::file_window` folds: offsets are from the first
//! event's timestamp, only events of the first event's type count, and an
//! event without any frame line does not count.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use serde::Serialize;

use crate::collapse::CollapseError;

/// Rows per second: 20 ms buckets, FlameScope's default.
pub const ROWS: usize = 50;

/// Samples per (second, sub-second bucket).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Heatmap {
    /// Buckets per second.
    pub rows: usize,
    /// `counts[second][bucket]`: samples at offsets in
    /// `[second + bucket/rows, second + (bucket+1)/rows)` seconds from the first one.
    pub counts: Vec<Vec<u32>>,
    /// The largest cell, for colour scales.
    pub max: u32,
    /// Sum of all cells.
    pub samples: u64,
}

impl Heatmap {
    /// Builds the grid from offsets in seconds (negative ones are dropped).
    pub fn from_offsets(offsets: impl IntoIterator<Item = f64>, rows: usize) -> Heatmap {
        let rows = rows.max(1);
        let mut map = Heatmap {
            rows,
            ..Heatmap::default()
        };
        for offset in offsets {
            if !(offset >= 0.0 && offset.is_finite()) {
                continue;
            }
            let second = offset.floor();
            let column = second as usize;
            let row = (((offset - second) * rows as f64) as usize).min(rows - 1);
            if map.counts.len() <= column {
                map.counts.resize(column + 1, vec![0; rows]);
            }
            let cell = &mut map.counts[column][row];
            *cell += 1;
            map.max = map.max.max(*cell);
            map.samples += 1;
        }
        map
    }

    /// Samples per second, one per column.
    pub fn column_totals(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|column| column.iter().map(|&c| u64::from(c)).sum())
            .collect()
    }
}

/// The heat map of one `perf script` file (plain or gzip), with [`ROWS`] rows.
pub fn file(path: &Path) -> Result<Heatmap, CollapseError> {
    let offsets = offsets(path)?;
    if offsets.is_empty() {
        return Err(CollapseError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Heatmap::from_offsets(offsets, ROWS))
}

/// Each counted event's offset from the first event, in seconds, in file order.
pub fn offsets(path: &Path) -> Result<Vec<f64>, CollapseError> {
    let read_error = |source| CollapseError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = BufReader::new(File::open(path).map_err(read_error)?);
    let gzip = raw
        .fill_buf()
        .map_err(read_error)?
        .starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let times = event_times(input).map_err(|source| {
        if gzip {
            CollapseError::CorruptGzip {
                path: path.to_path_buf(),
                source,
            }
        } else {
            read_error(source)
        }
    })?;
    let times = times.ok_or_else(|| CollapseError::NoTimestamps {
        path: path.to_path_buf(),
    })?;
    let origin = times.first().copied().unwrap_or_default();
    Ok(times.into_iter().map(|t| t - origin).collect())
}

/// Timestamps of the counted events; `None` if an event has none (folded
/// stacks, or `perf script -F` without `time`).
fn event_times(mut input: impl BufRead) -> io::Result<Option<Vec<f64>>> {
    let mut times = Vec::new();
    let mut first_event: Option<String> = None;
    // The event line read last, until a frame line confirms it has a stack.
    let mut pending: Option<f64> = None;
    let (mut meaningful, mut events) = (false, false);
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim_end();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            pending = None;
            continue;
        }
        if trimmed.starts_with([' ', '\t']) {
            if let Some(time) = pending.take() {
                times.push(time);
            }
            continue;
        }
        pending = None;
        meaningful = true;
        let Some(event) = parse_event_line(trimmed) else {
            continue;
        };
        events = true;
        let first = first_event.get_or_insert_with(|| event.name.to_string());
        if event.name != first {
            continue;
        }
        match event.time {
            Some(time) => pending = Some(time),
            None => return Ok(None),
        }
    }
    // Folded stacks (`a;b 3`) have lines but no event line.
    Ok((events || !meaningful).then_some(times))
}

struct EventLine<'a> {
    time: Option<f64>,
    name: &'a str,
}

/// `comm pid[/tid] [cpu] time: [period] event[:modifiers]: …`, read as
/// `collapse` reads it: the pid is the first all-digit word after the
/// command name (which may hold spaces), the time is the word before the
/// next colon, and the event is the last word before the colon after that.
fn parse_event_line(line: &str) -> Option<EventLine<'_>> {
    // Byte offsets of the words, split on single spaces as perf prints them.
    let mut after_pid = None;
    let mut offset = 0;
    for (index, word) in line.split(' ').enumerate() {
        let end = offset + word.len();
        let is_pid = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit() || b == b'/');
        if index > 0 && is_pid && end < line.len() {
            after_pid = Some(end + 1);
            break;
        }
        offset = end + 1;
    }
    let rest = &line[after_pid?..];
    let (before_colon, after_colon) = rest.split_once(':')?;
    let time = before_colon
        .split_whitespace()
        .last()
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .and_then(|t| t.parse::<f64>().ok());
    let piece = after_colon.split(':').next().unwrap_or_default();
    let name = piece.split_whitespace().last().unwrap_or_default();
    Some(EventLine { time, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_fall_in_second_columns_and_sub_second_rows() {
        let map = Heatmap::from_offsets([0.0, 0.019, 0.02, 0.999, 2.5, -1.0, f64::NAN], 50);
        assert_eq!(map.counts.len(), 3);
        assert_eq!(map.counts[0][0], 2);
        assert_eq!(map.counts[0][1], 1);
        assert_eq!(map.counts[0][49], 1);
        assert_eq!(map.counts[2][25], 1);
        assert_eq!(map.column_totals(), vec![4, 0, 1]);
        assert_eq!((map.max, map.samples), (2, 5));
    }

    #[test]
    fn event_lines_are_read_like_collapse() {
        let e = parse_event_line("node  9495   296.427171:   10101010 cpu-clock:ppp:").unwrap();
        assert_eq!((e.time, e.name), (Some(296.427171), "cpu-clock"));
        let e =
            parse_event_line("V8 WorkerThread 24636/25607 [000] 94564.109216: cycles:").unwrap();
        assert_eq!((e.time, e.name), (Some(94564.109216), "cycles"));
        assert_eq!(parse_event_line("node 9495 cpu-clock:").unwrap().time, None);
        assert!(parse_event_line("a;b;c 12").is_none());
    }

    fn times(text: &str) -> Option<Vec<f64>> {
        event_times(text.as_bytes()).unwrap()
    }

    #[test]
    fn only_first_event_type_with_frames_counts() {
        let text = "# header\n\
            node 1 10.0: 1 cpu-clock:\n\t1 a (x)\n\n\
            node 1 10.5: 1 page-faults:\n\t1 a (x)\n\n\
            node 1 11.0: 1 cpu-clock:\n\n\
            node 1 12.25: 1 cpu-clock:\n\t1 a (x)\n\t2 b (x)\n\n";
        assert_eq!(times(text), Some(vec![10.0, 12.25]));
        assert_eq!(times("node 1 cpu-clock:\n\t1 a (x)\n"), None);
    }

    #[test]
    fn folded_input_has_no_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.folded");
        std::fs::write(&path, "a;b 1\n").unwrap();
        assert!(matches!(
            file(&path),
            Err(CollapseError::NoTimestamps { .. })
        ));
        std::fs::write(&path, "# nothing\n\n").unwrap();
        assert!(matches!(file(&path), Err(CollapseError::Empty { .. })));
    }
}
