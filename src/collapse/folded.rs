//! [`Folded`]: the stacks of one input, what collapse returns, `render`
//! draws and summaries rank; plus the helpers that read it.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use super::Weight;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
