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

use crate::collapse::{CollapseError, Folded};
use crate::stacks;

pub use crate::model::heatmap::{CELL_NS, Heatmap, ROWS, Timeline};

/// The heat map of a folded input's samples, with [`ROWS`] rows: offsets
/// come from the same pass that folded the stacks (`Folded::offsets_ns`).
/// `None` when the input has no timestamps (folded stacks, `-F` without time).
pub fn of(folded: &Folded) -> Option<Heatmap> {
    if folded.offsets_ns.is_empty() {
        return None;
    }
    let mut map = Heatmap::from_offsets(folded.offsets_ns.iter().map(|&ns| ns as f64 / 1e9), ROWS);
    if !folded.timed.is_empty() {
        map.timeline = Some(Timeline::new(&folded.stacks, &folded.timed, folded.weight));
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
        let t = Timeline::new(&stacks, &timed, crate::model::Weight::Sample);
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
