//! The nouns every stage shares: plain data, no I/O, no AWS or clap types.
//!
//! Everything else may import `model`; `model` imports nothing of the
//! crate. A stage that needs to name a host, a command or a status finds it
//! here rather than in another stage.

pub mod ending;
pub mod heatmap;
pub mod host;
pub mod meta;
pub mod node;
pub mod outcome;
pub mod recorder;
pub mod run;
pub mod status;
pub mod weight;

pub use ending::{Ended, Explained};
pub use heatmap::{Heatmap, Timeline};
pub use host::{Host, InstanceId, Target};
pub use meta::{Meta, MetaTarget};
pub use node::{InstanceState, PingStatus, Platform};
pub use outcome::{Failed, HostOutcome, HotFunction, Rendered, Role, Skipped, Status, Upload, Who};
pub use recorder::RecorderExit;
pub use run::{RunKey, RunLocation};
pub use status::{AgentRefusal, DeliveryFailure, InvocationStatus};
pub use weight::Weight;

/// The run ids of `doctor --probe` start with this: their objects (one
/// `upload-check` a host) are not a run's, and `runs` does not list them.
pub const PROBE_RUN_PREFIX: &str = "probe-";
