//! What a host says about its recording: the recorder's `meta.json`
//! (docs/contracts.md). `fetch` reads and checks it; the report shows it.

use serde::{Deserialize, Serialize};

/// The recorder's `meta.json` (docs/contracts.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    pub schema: u32,
    pub run_id: String,
    pub instance_id: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub distro: String,
    #[serde(default)]
    pub perf_version: String,
    #[serde(default)]
    pub duration_s: u64,
    #[serde(default)]
    pub frequency_hz: u64,
    #[serde(default)]
    pub started_at: u64,
    #[serde(default)]
    pub targets: Vec<MetaTarget>,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub samples: u64,
    /// `perf script` was stopped at its time limit: the stacks are a prefix.
    #[serde(default)]
    pub partial: bool,
    #[serde(default)]
    pub stacks_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaTarget {
    pub pid: u64,
    #[serde(default)]
    pub cmdline: String,
    #[serde(default)]
    pub node_version: String,
    #[serde(default)]
    pub map: String,
    #[serde(default)]
    pub map_bytes: u64,
}
