//! A host's samples over time, as numbers: the sub-second heat map and the
//! timeline report.html selects from. Built by the `heatmap` stage from
//! `collapse`'s offsets; drawn by `html`. Plain data here, so that a
//! report row (`HostOutcome`) can carry it.

use serde::Serialize;

use super::Weight;

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
    /// What `entry_weight` counts: report.html's unit.
    #[serde(skip)]
    pub weight: Weight,
}

/// Nanoseconds in one cell: a second over [`ROWS`].
pub const CELL_NS: u64 = 1_000_000_000 / ROWS as u64;

impl Timeline {
    /// From folded stacks and their timed samples (`Folded::timed`), whose
    /// weights count `weight`.
    pub fn new(stacks: &[(String, u64)], timed: &[(u64, u32, u64)], weight: Weight) -> Timeline {
        let mut t = Timeline {
            weight,
            ..Timeline::default()
        };
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
