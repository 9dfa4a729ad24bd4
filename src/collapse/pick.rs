//! Everything folded → one [`Folded`]: picks the event type the caller
//! asked for (or the input's first), weighs its stacks, and says why the
//! input gives none when it does not.

use std::path::Path;

use super::error::Stop;
use super::fold::Parsed;
use super::{Folded, Select, Weight, default_name, timeline};

impl Parsed {
    /// Picks the event type (see [`Select::event`]) and weight, and builds
    /// the result; or says why the input gives none.
    pub(super) fn into_folded(
        mut self,
        path: &Path,
        select: &Select,
        origin: Option<u64>,
    ) -> Result<Folded, Stop> {
        if self.event_lines == 0 {
            self.blocks.sort_by_key(|b| b.0);
            let mut before = 0;
            for (_, lines, odd) in &self.blocks {
                if let Some((line, snippet)) = odd {
                    return Err(Stop::Unrecognised {
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
                .ok_or_else(|| Stop::NoSuchEvent {
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
            return Err(Stop::NoPeriods {
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
        let timed = timeline::timed_samples(&event.timed, &stacks, origin, select.weight);
        let stacks: Vec<(String, u64)> = stacks.into_iter().map(|(s, c, _)| (s, c)).collect();
        let offsets_ns = timeline::offsets(&event.times, origin);
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

fn event_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--event cycles` picks `cycles`, and also `cycles:u` or `cycles:ppp`
/// (the same event with modifiers, see perf-list(1) "EVENT MODIFIERS");
/// `--event cycles:u` picks only that one.
pub(super) fn event_matches(name: &[u8], wanted: &str) -> bool {
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
