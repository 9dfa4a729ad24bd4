//! What the caller asks collapse for: which samples ([`Select`], with its
//! time [`Window`]) and what each one weighs ([`Weight`]). Plain data.

pub use crate::model::Weight;

/// Which samples of an input to fold, and how to count them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Select {
    pub window: Window,
    /// The event type to fold (`cycles`, `cycles:u`, `sched:sched_switch`);
    /// `None` for the input's first event type.
    pub event: Option<String>,
    pub weight: Weight,
}

/// A time window relative to the input's first event, in seconds: events
/// with `from_s <= t - t0 < to_s` are kept. `None` leaves that side open.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub from_s: Option<f64>,
    pub to_s: Option<f64>,
}

impl Window {
    pub(super) fn is_open(&self) -> bool {
        self.from_s.is_none() && self.to_s.is_none()
    }

    pub(super) fn contains_ns(&self, offset_ns: u64) -> bool {
        let offset_s = offset_ns as f64 / 1e9;
        self.from_s.is_none_or(|from| offset_s >= from) && self.to_s.is_none_or(|to| offset_s < to)
    }
}
