//! What one sample weighs in folded counts and time lines. Plain data:
//! `collapse` folds by it, and a [`Timeline`](super::Timeline) carries it so
//! that report.html names its unit from the type, not from a label.

use std::fmt;

/// What one sample weighs in the folded counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weight {
    /// Every sample counts 1 (right for `cpu-clock` at a fixed frequency).
    #[default]
    Sample,
    /// Every sample counts its period (`cycles` in frequency mode), so that
    /// shares match `perf report`'s.
    Period,
}

impl Weight {
    /// The unit of a sum of weights, for labels: `samples` or `period`.
    pub fn unit(self) -> &'static str {
        match self {
            Weight::Sample => "samples",
            Weight::Period => "period",
        }
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Weight::Sample => "sample",
            Weight::Period => "period",
        })
    }
}
