//! Time in an input: its origin (the first event line), and each folded
//! sample's offset from it and stack, which report.html's time selection
//! and the heat map's buckets are built from.

use super::Weight;
use super::script::parse_event_line;

/// The timestamp of the first event line in the head, if it has one.
pub(super) fn first_event_time(head: &[u8]) -> Option<u64> {
    head.split(|&b| b == b'\n')
        .filter(|line| line.first() != Some(&b'#'))
        .find_map(parse_event_line)?
        .time
}

/// Every sample's time as ns after `origin`, in time order; empty without
/// an origin (no timestamps).
pub(super) fn offsets(times: &[u64], origin: Option<u64>) -> Vec<u64> {
    let Some(origin) = origin else {
        return Vec::new();
    };
    let mut offsets: Vec<u64> = times.iter().map(|t| t.saturating_sub(origin)).collect();
    // blocks are folded in any order
    offsets.sort_unstable();
    offsets
}

/// The folded samples in time order, each with its index in the sorted
/// `stacks` (stacks weighing 0 are left out) and its weight.
pub(super) fn timed_samples(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_from_the_origin_and_in_time_order() {
        // blocks fold in any order, so times arrive unsorted
        assert_eq!(offsets(&[30, 10, 20], Some(10)), vec![0, 10, 20]);
        assert!(offsets(&[30, 10], None).is_empty());
    }

    #[test]
    fn timed_samples_point_at_sorted_stacks_and_skip_weightless_ones() {
        // ids are the order of first sight; stacks are sorted by name, and a
        // stack weighing 0 (left out of `stacks`) has no index
        let stacks = vec![("a".to_string(), 1, 1), ("b".to_string(), 2, 0)];
        let timed = [(105, 0, 7), (101, 1, 3), (103, 2, 5)];
        assert_eq!(
            timed_samples(&timed, &stacks, Some(100), Weight::Sample),
            vec![(1, 0, 1), (5, 1, 1)]
        );
        assert_eq!(
            timed_samples(&timed, &stacks, Some(100), Weight::Period),
            vec![(1, 0, 3), (5, 1, 7)]
        );
        assert!(timed_samples(&timed, &stacks, None, Weight::Sample).is_empty());
    }
}
