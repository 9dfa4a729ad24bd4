//! Stage **diff**: two [`Folded`] profiles (BEFORE, AFTER) → the differential
//! folded stacks that `render::differential` draws, and the summary of the
//! functions whose share of samples changed the most.
//!
//! It must not read files or render: callers resolve the inputs (see
//! `app::diff`) and `render` draws. inferno's differential module is used
//! here and in `render.rs` only.
//!
//! The two profiles are compared by *share* of samples, never by raw counts:
//! a sick host at 100% CPU has eight times the samples of a healthy one, and
//! without normalising everything would look red. inferno's `normalize`
//! scales the first profile's counts to the second's total.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use inferno::differential;

use crate::collapse::Folded;

/// Differential folded stacks, ready to draw: `stack first second` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Differential {
    /// Sorted by stack. The second count gives each frame its width; the
    /// colour comes from `second − first`.
    pub lines: Vec<String>,
    /// Colour by `first − second` instead (inferno's `negate_differentials`).
    pub negate: bool,
    /// Samples of the profile whose shape is drawn (the second one).
    pub samples: u64,
}

/// AFTER's shape, coloured by growth since BEFORE: red where AFTER spends a
/// larger share of its samples, blue where smaller. Frames that only BEFORE
/// has are not drawn; see [`negated`].
pub fn growth(before: &Folded, after: &Folded) -> Differential {
    Differential {
        lines: differential_lines(before, after),
        negate: false,
        samples: after.samples,
    }
}

/// BEFORE's shape, with the same colours as [`growth`] (red grew, blue
/// shrank): the inputs are swapped and the differential negated, as in
/// Brendan Gregg's `difffolded.pl file2 file1 | flamegraph.pl --negate`.
/// Frames that disappeared in AFTER are drawn here, in blue.
pub fn negated(before: &Folded, after: &Folded) -> Differential {
    Differential {
        lines: differential_lines(after, before),
        negate: true,
        samples: before.samples,
    }
}

/// `stack first second` lines with `first` normalised to `second`'s total.
fn differential_lines(first: &Folded, second: &Folded) -> Vec<String> {
    let mut text = Vec::new();
    let options = differential::Options {
        // An empty profile cannot be scaled (inferno would divide by zero).
        normalize: first.samples > 0 && second.samples > 0,
        strip_hex: false,
    };
    differential::from_readers(
        options,
        folded_text(first).as_bytes(),
        folded_text(second).as_bytes(),
        &mut text,
    )
    .expect("reading and writing in memory cannot fail");
    // inferno writes in hash-map order; sorted lines make the SVG
    // deterministic and are what its flamegraph expects.
    let mut lines: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort_unstable_by(|a, b| stack_of(a).cmp(stack_of(b)));
    lines
}

fn folded_text(folded: &Folded) -> String {
    let mut text = String::new();
    for (stack, count) in &folded.stacks {
        text.push_str(stack);
        text.push(' ');
        text.push_str(&count.to_string());
        text.push('\n');
    }
    text
}

/// The stack part of a `stack first second` line.
fn stack_of(line: &str) -> &str {
    line.rsplitn(3, ' ').nth(2).unwrap_or(line)
}

/// How a function's inclusive share of samples changed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Change {
    /// As in the flamegraph, without inferno's `_[j]`-style annotations and
    /// without V8's tier mark (see [`function_name`]).
    pub function: String,
    /// Share of BEFORE's samples whose stack contains the function, `0.0..=1.0`.
    pub before: f64,
    /// The same share in AFTER.
    pub after: f64,
}

impl Change {
    /// `after − before`, in shares (`0.25` is 25 percentage points).
    pub fn delta(&self) -> f64 {
        self.after - self.before
    }
}

/// A caller is left out of the summary when one function it always calls
/// changed by at least this fraction of the caller's own change.
pub const EXPLAINED: f64 = 0.9;

/// The `n` functions whose inclusive share changed the most, largest
/// |change| first (ties by name). Unchanged functions are left out, and so
/// are callers whose change is explained by a callee: when G is always
/// called (directly or not) from F, in both profiles, and G's change is at
/// least [`EXPLAINED`] of F's, only G is listed. Otherwise the event loop
/// frames above a hot function (`uv_run`, `processImmediate`, …) would
/// crowd it out, since a caller's inclusive share is never below its
/// callee's.
pub fn changes(before: &Folded, after: &Folded, n: usize) -> Vec<Change> {
    let (b, a) = (inclusive_shares(before), inclusive_shares(after));
    let names: HashSet<&String> = b.keys().chain(a.keys()).collect();
    let delta = |name: &str| a.get(name).unwrap_or(&0.0) - b.get(name).unwrap_or(&0.0);
    let mut explained: HashSet<&str> = HashSet::new();
    let above = always_above(&[before, after]);
    for (callee, callers) in &above {
        let d = delta(callee);
        for caller in callers {
            let dc = delta(caller);
            if dc.abs() > 1e-9 && d / dc >= EXPLAINED {
                explained.insert(caller.as_str());
            }
        }
    }
    let mut changes: Vec<Change> = names
        .into_iter()
        .filter(|name| !explained.contains(name.as_str()))
        .map(|name| Change {
            function: name.clone(),
            before: b.get(name).copied().unwrap_or(0.0),
            after: a.get(name).copied().unwrap_or(0.0),
        })
        .filter(|c| c.delta().abs() > 1e-9)
        .collect();
    changes.sort_by(|x, y| {
        y.delta()
            .abs()
            .total_cmp(&x.delta().abs())
            .then_with(|| x.function.cmp(&y.function))
    });
    changes.truncate(n);
    changes
}

/// Function → the functions above it on every stack it is on, in all
/// `profiles` (itself excluded, when it recurses).
fn always_above(profiles: &[&Folded]) -> HashMap<String, HashSet<String>> {
    let mut above: HashMap<String, HashSet<String>> = HashMap::new();
    for folded in profiles {
        for (stack, _) in &folded.stacks {
            let frames: Vec<Cow<'_, str>> = stack.split(';').map(function_name).collect();
            // Where each function first appears on this stack: F is above
            // the frame at `i` iff it first appears before `i`.
            let mut first: HashMap<&str, usize> = HashMap::new();
            for (i, f) in frames.iter().enumerate() {
                first.entry(f.as_ref()).or_insert(i);
            }
            for (i, g) in frames.iter().enumerate() {
                let is_above = |f: &str| first.get(f).is_some_and(|&at| at < i) && f != g;
                match above.get_mut(g.as_ref()) {
                    Some(set) => set.retain(|f| is_above(f)),
                    None => {
                        let set = frames[..i]
                            .iter()
                            .filter(|f| f.as_ref() != g.as_ref())
                            .map(|f| f.to_string())
                            .collect();
                        above.insert(g.to_string(), set);
                    }
                }
            }
        }
    }
    above
}

/// Function → share of samples whose stack contains it (once per stack,
/// however often it recurses).
fn inclusive_shares(folded: &Folded) -> HashMap<String, f64> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for (stack, count) in &folded.stacks {
        let functions: HashSet<Cow<'_, str>> = stack.split(';').map(function_name).collect();
        for name in functions {
            *counts.entry(name.into_owned()).or_insert(0) += count;
        }
    }
    if folded.samples == 0 {
        return HashMap::new();
    }
    counts
        .into_iter()
        .map(|(name, count)| (name, count as f64 / folded.samples as f64))
        .collect()
}

/// A frame as a function: inferno's annotation (`_[j]` JIT, `_[k]` kernel,
/// `_[i]` inlined) dropped, and V8's tier mark after `JS:` (`*` TurboFan,
/// `+` Maglev, `^` Sparkplug, `~` interpreter) dropped too, so that a
/// function that was re-optimised between the two profiles is still one
/// function: `JS:*tokenizeHtml /app.js:1:2_[j]` → `JS:tokenizeHtml /app.js:1:2`.
pub fn function_name(frame: &str) -> Cow<'_, str> {
    let frame = ["_[j]", "_[k]", "_[i]"]
        .iter()
        .find_map(|annotation| frame.strip_suffix(annotation))
        .unwrap_or(frame);
    match frame
        .strip_prefix("JS:")
        .and_then(|rest| rest.strip_prefix(['*', '+', '^', '~']))
    {
        Some(name) => Cow::Owned(format!("JS:{name}")),
        None => Cow::Borrowed(frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(name: &str, stacks: &[(&str, u64)]) -> Folded {
        Folded::new(name, stacks.iter().map(|(s, c)| (s.to_string(), *c)))
    }

    fn healthy() -> Folded {
        folded(
            "healthy",
            &[
                ("node;main;JS:*serveJson /a.js:1:1_[j]", 8),
                ("node;main;idle", 2),
            ],
        )
    }

    fn sick() -> Folded {
        folded(
            "sick",
            &[
                (
                    "node;main;JS:*parse /a.js:2:1_[j];JS:*tokenize /a.js:3:1_[j]",
                    60,
                ),
                ("node;main;JS:^parse /a.js:2:1_[j]", 20),
                ("node;main;JS:*serveJson /a.js:1:1_[j]", 10),
                ("node;main;idle", 10),
            ],
        )
    }

    fn counts(line: &str) -> (u64, u64) {
        let mut words = line.rsplitn(3, ' ');
        let second = words.next().unwrap().parse().unwrap();
        let first = words.next().unwrap().parse().unwrap();
        (first, second)
    }

    #[test]
    fn growth_normalises_before_to_after_and_sorts() {
        let diff = growth(&healthy(), &sick());
        assert!(!diff.negate);
        assert_eq!(diff.samples, 100);
        let stacks: Vec<&str> = diff.lines.iter().map(|l| stack_of(l)).collect();
        let mut sorted = stacks.clone();
        sorted.sort_unstable();
        assert_eq!(stacks, sorted);
        let serve = diff.lines.iter().find(|l| l.contains("serveJson")).unwrap();
        // 8 of 10 samples before, scaled to 100: 80 → 10
        assert_eq!(counts(serve), (80, 10));
        let tokenize = diff.lines.iter().find(|l| l.contains("tokenize")).unwrap();
        assert_eq!(counts(tokenize), (0, 60));
    }

    #[test]
    fn negated_keeps_befores_shape() {
        let diff = negated(&healthy(), &sick());
        assert!(diff.negate);
        assert_eq!(diff.samples, 10);
        let serve = diff.lines.iter().find(|l| l.contains("serveJson")).unwrap();
        // AFTER scaled to BEFORE's 10 samples: 10 → 1; BEFORE keeps 8
        assert_eq!(counts(serve), (1, 8));
    }

    #[test]
    fn changes_rank_inclusive_shares_by_absolute_change() {
        let top = changes(&healthy(), &sick(), 10);
        let names: Vec<&str> = top.iter().map(|c| c.function.as_str()).collect();
        // parse is on 80% of sick's stacks (both tiers count as one function)
        assert_eq!(
            names,
            [
                "JS:parse /a.js:2:1",
                "JS:serveJson /a.js:1:1",
                "JS:tokenize /a.js:3:1",
                "idle"
            ]
        );
        assert!((top[0].delta() - 0.8).abs() < 1e-9);
        assert!((top[1].before - 0.8).abs() < 1e-9 && (top[1].after - 0.1).abs() < 1e-9);
        assert!((top[3].delta() - 0.0).abs() > 1e-9, "idle 20% → 10%");
        // node and main are on every stack of both: unchanged, left out
        assert!(!names.contains(&"node") && !names.contains(&"main"));
        assert_eq!(changes(&healthy(), &sick(), 2).len(), 2);
    }

    #[test]
    fn callers_explained_by_one_callee_are_left_out() {
        let before = folded("b", &[("loop;timers;serve;json", 9), ("loop;idle", 1)]);
        let after = folded(
            "a",
            &[
                ("loop;immediate;parse;tokenize", 6),
                ("loop;immediate;parse", 3),
                ("loop;idle", 1),
            ],
        );
        let names: Vec<String> = changes(&before, &after, 10)
            .into_iter()
            .map(|c| format!("{} {:+.0}", c.function, 100.0 * c.delta()))
            .collect();
        // `immediate` (+90) is explained by `parse` (+90), `timers` and
        // `serve` by `json` (-90); `parse` stays: `tokenize` is only +60.
        assert_eq!(names, ["json -90", "parse +90", "tokenize +60"]);
        let above = always_above(&[&before, &after]);
        assert_eq!(
            above["tokenize"],
            HashSet::from(["loop".into(), "immediate".into(), "parse".into()])
        );
        assert_eq!(above["idle"], HashSet::from(["loop".to_string()]));
    }

    #[test]
    fn recursion_counts_once_per_stack() {
        let f = folded("r", &[("a;b;a;b", 3), ("a;c", 1)]);
        let shares = inclusive_shares(&f);
        assert!((shares["a"] - 1.0).abs() < 1e-9);
        assert!((shares["b"] - 0.75).abs() < 1e-9);
    }

    #[test]
    fn function_names_drop_annotations_and_v8_tiers() {
        assert_eq!(
            function_name("JS:*tokenizeHtml /a.js:1:2_[j]"),
            "JS:tokenizeHtml /a.js:1:2"
        );
        assert_eq!(
            function_name("JS:~burst /a.js:3:4_[j]"),
            "JS:burst /a.js:3:4"
        );
        assert_eq!(function_name("JS:loop /a.js_[j]"), "JS:loop /a.js");
        assert_eq!(function_name("native_safe_halt_[k]"), "native_safe_halt");
        assert_eq!(function_name("node::Start"), "node::Start");
        assert_eq!(function_name("JS:"), "JS:");
    }
}
