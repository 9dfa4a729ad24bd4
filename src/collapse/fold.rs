//! Folding one block of whole `perf script` events: each event line starts
//! an event, its frame lines are named into reused buffers, and at its end
//! the stack is counted under its event type. No allocation per line: only
//! a stack seen for the first time is copied.

use std::collections::HashMap;

use super::Window;
use super::error::{Stop, snippet};
use super::names::push_frame_names;
use super::script::{parse_event_line, parse_frame, trim_end};

/// One event type's samples, as a worker folds them.
#[derive(Default)]
pub(super) struct EventStacks {
    pub(super) name: Vec<u8>,
    /// Where the type first appeared: (block number, event number in block).
    pub(super) first_seen: (u64, u64),
    /// stack → (samples, sum of periods, id: its order of first sight here)
    pub(super) stacks: HashMap<Vec<u8>, (u64, u64, u32), foldhash::fast::FixedState>,
    /// Folded samples with a timestamp: (absolute time, stack id, period).
    pub(super) timed: Vec<(u64, u32, u64)>,
    /// Samples folded (inside the window).
    pub(super) samples: u64,
    /// Absolute timestamps of every sample of this type, window or not.
    pub(super) times: Vec<u64>,
    /// Every event line of this type, folded or not.
    pub(super) seen: u64,
    /// Folded samples whose event line had no period.
    pub(super) without_period: u64,
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
pub(super) type BlockLines = (u64, u64, Option<(u64, String)>);

/// Everything one pass learns about a `perf script` input.
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) events: Vec<EventStacks>,
    pub(super) event_lines: u64,
    pub(super) blocks: Vec<BlockLines>,
    /// Lines that were neither comments, events nor frames.
    pub(super) odd_lines: u64,
}

impl Parsed {
    pub(super) fn merge(&mut self, other: Parsed) {
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
pub(super) struct Folder {
    pub(super) parsed: Parsed,
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
    pub(super) fn block(
        &mut self,
        block: &[u8],
        seq: u64,
        window: Window,
        origin: Option<u64>,
    ) -> Result<(), Stop> {
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
                        return Err(Stop::NoTimestamps);
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
