//! The nouns every stage shares: plain data, no I/O, no AWS or clap types.
//!
//! Everything else may import `model`; `model` imports nothing of the
//! crate. A stage that needs to name a host, a command or a status finds it
//! here rather than in another stage.

pub mod ending;
pub mod host;
pub mod recorder;
pub mod status;

pub use ending::{Ended, Explained};
pub use host::{Host, InstanceId, Target};
pub use recorder::RecorderExit;
pub use status::{AgentRefusal, DeliveryFailure, InvocationStatus};

/// The run ids of `doctor --probe` start with this: their objects (one
/// `upload-check` a host) are not a run's, and `runs` does not list them.
pub const PROBE_RUN_PREFIX: &str = "probe-";
