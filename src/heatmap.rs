//! Stage **heatmap** (beside collapse): the timestamps of `perf script`
//! events → a sub-second heat map, in the manner of FlameScope.
//!
//! Columns are seconds from the first sample, rows are equal slices of a
//! second (50 × 20 ms by default), and each cell counts the samples that fell
//! in it. A 1 s burst every 3 s, invisible in a 30 s flamegraph, shows as
//! bright columns three apart; `render --from/--to` then draws one of them.
//!
//! It must not parse or draw: it turns the per-sample offsets that
//! `collapse` keeps (from the same single pass over the input) into numbers
//! for `html` to draw. So a window read off the map selects the same samples
//! that `stacks::file_window` folds: offsets are from the input's first
//! event, and only samples of the folded event type count.

use std::path::Path;

use serde::Serialize;

use crate::collapse::{CollapseError, Folded};
use crate::stacks;

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
    /// Which stacks fell in which cell, for report.html's time selection;
    /// `None` when the input gives no per-sample stacks.
    #[serde(skip)]
    pub timeline: Option<Timeline>,
}

/// One input's samples in the compact form report.html embeds: the stacks as
/// a tree of frames (each distinct stack is a node of it), and per cell of
/// the heat map the weight of each stack that has samples there. Cells are
/// `ns / CELL_NS` after the input's first event, the integer form of the
/// boundaries `render --from/--to` compares with, so a stretch of whole
/// cells selects exactly the samples that `render` folds for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// Distinct frame names.
    pub frames: Vec<String>,
    /// Node `i + 1`'s parent node (0 is the root, above every stack).
    pub parent: Vec<u32>,
    /// Node `i + 1`'s frame, an index in `frames`.
    pub frame: Vec<u32>,
    /// Each stack's node, in `Folded::stacks` order.
    pub stacks: Vec<u32>,
    /// Cells that hold samples, ascending.
    pub cells: Vec<u32>,
    /// Where each cell's entries end in `entry_stack` / `entry_weight`.
    pub cell_end: Vec<u32>,
    pub entry_stack: Vec<u32>,
    pub entry_weight: Vec<u64>,
}

/// Nanoseconds in one cell: a second over [`ROWS`].
pub const CELL_NS: u64 = 1_000_000_000 / ROWS as u64;

impl Timeline {
    /// From folded stacks and their timed samples (`Folded::timed`).
    pub fn new(stacks: &[(String, u64)], timed: &[(u64, u32, u64)]) -> Timeline {
        let mut t = Timeline::default();
        let mut frame_ids: std::collections::HashMap<&str, u32> = Default::default();
        let mut children: std::collections::HashMap<(u32, u32), u32> = Default::default();
        for (stack, _) in stacks {
            let mut node = 0u32;
            for name in stack.split(';') {
                let f = *frame_ids.entry(name).or_insert_with(|| {
                    t.frames.push(name.to_string());
                    t.frames.len() as u32 - 1
                });
                node = *children.entry((node, f)).or_insert_with(|| {
                    t.parent.push(node);
                    t.frame.push(f);
                    t.parent.len() as u32
                });
            }
            t.stacks.push(node);
        }
        // `timed` is in time order: group it by cell, then by stack
        let mut i = 0;
        while i < timed.len() {
            let cell = timed[i].0 / CELL_NS;
            let mut j = i;
            while j < timed.len() && timed[j].0 / CELL_NS == cell {
                j += 1;
            }
            let mut entries: Vec<(u32, u64)> = timed[i..j].iter().map(|s| (s.1, s.2)).collect();
            entries.sort_unstable();
            let mut k = 0;
            while k < entries.len() {
                let stack = entries[k].0;
                let mut weight = 0;
                while k < entries.len() && entries[k].0 == stack {
                    weight += entries[k].1;
                    k += 1;
                }
                t.entry_stack.push(stack);
                t.entry_weight.push(weight);
            }
            t.cells.push(u32::try_from(cell).unwrap_or(u32::MAX));
            t.cell_end.push(t.entry_stack.len() as u32);
            i = j;
        }
        t
    }
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

/// The heat map of a folded input's samples, with [`ROWS`] rows: offsets
/// come from the same pass that folded the stacks (`Folded::offsets_ns`).
/// `None` when the input has no timestamps (folded stacks, `-F` without time).
pub fn of(folded: &Folded) -> Option<Heatmap> {
    if folded.offsets_ns.is_empty() {
        return None;
    }
    let mut map = Heatmap::from_offsets(folded.offsets_ns.iter().map(|&ns| ns as f64 / 1e9), ROWS);
    if !folded.timed.is_empty() {
        map.timeline = Some(Timeline::new(&folded.stacks, &folded.timed));
    }
    Some(map)
}

/// The heat map of one `perf script` file (plain or gzip): collapses it
/// and keeps the timestamps. Callers that have the `Folded` use [`of`].
pub fn file(path: &Path) -> Result<Heatmap, CollapseError> {
    let folded = stacks::file(path)?;
    of(&folded).ok_or_else(|| CollapseError::NoTimestamps {
        path: path.to_path_buf(),
    })
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
    fn samples_of_the_folded_event_type_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.perf");
        let text = "# header\n\
            node 1 10.0: 1 cpu-clock:\n\t1 a (x)\n\n\
            node 1 10.5: 1 page-faults:\n\t1 a (x)\n\n\
            node 1 11.0: 1 cpu-clock:\n\n\
            node 1 12.25: 1 cpu-clock:\n\t1 a (x)\n\t2 b (x)\n\n";
        std::fs::write(&path, text).unwrap();
        let map = file(&path).unwrap();
        assert_eq!(map.samples, 3);
        assert_eq!(map.column_totals(), vec![1, 1, 1]);
        assert_eq!(
            map.counts[2][12], 1,
            "12.25 s is 2.25 s after the first event"
        );
        std::fs::write(&path, "node 1 cpu-clock:\n\t1 a (x)\n").unwrap();
        assert!(matches!(
            file(&path),
            Err(CollapseError::NoTimestamps { .. })
        ));
    }

    #[test]
    fn the_timeline_holds_each_cells_stacks_as_a_tree() {
        let stacks = vec![("a;b".to_string(), 2), ("a;c".to_string(), 1)];
        let timed = [(0, 0, 1), (5, 1, 1), (CELL_NS * 3 + 1, 0, 1)];
        let t = Timeline::new(&stacks, &timed);
        assert_eq!(t.frames, ["a", "b", "c"]);
        assert_eq!(
            (t.parent.clone(), t.frame.clone()),
            (vec![0, 1, 1], vec![0, 1, 2])
        );
        assert_eq!(t.stacks, [2, 3]);
        assert_eq!(t.cells, [0, 3]);
        assert_eq!(t.cell_end, [2, 3]);
        assert_eq!(
            (t.entry_stack, t.entry_weight),
            (vec![0, 1, 0], vec![1, 1, 1])
        );
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
