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
