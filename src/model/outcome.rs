//! How one host (or input file) ended: one row of the report.
//!
//! A host is `Rendered` (it has a flamegraph, so samples and files),
//! `Failed` (a cause, and the next step when one is known) or `Skipped`
//! (set aside before anything ran on it, with why). Each variant carries
//! only what is true of it, so a report cannot show a flamegraph for a
//! failed host or a cause for a rendered one.
//!
//! The JSON form (`--json`, docs/contracts.md) is one flat object per host
//! with every field, `null` or empty where the variant has none: the
//! shape scripts already read.

use std::path::PathBuf;

use serde::{Serialize, Serializer};

use super::{Heatmap, InvocationStatus, MetaTarget};

/// Which side of a comparison a host (or input) is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The healthy side: `ssm --baseline`, or `diff`'s BEFORE.
    Baseline,
    /// The side under investigation: `ssm`'s targets, or `diff`'s AFTER.
    Target,
}

/// A leaf function and its share of the host's samples (self time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotFunction {
    pub name: String,
    pub samples: u64,
    /// `0.0..=1.0`.
    pub share: f64,
}

/// Which variant a `HostOutcome` is, as the JSON and the table name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Rendered,
    Failed,
    Skipped,
}

/// Who a row is about: an instance id, or an input path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub host: String,
    /// The instance's Name tag, or a diff input's side.
    pub name: Option<String>,
    /// Set when the run compares a baseline with targets.
    pub role: Option<Role>,
}

impl Who {
    pub fn new(host: impl Into<String>, name: Option<String>) -> Who {
        Who {
            host: host.into(),
            name,
            role: None,
        }
    }
}

/// A host with a flamegraph.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub who: Who,
    /// SSM's word on the host, when it had said it (an upload can be drawn
    /// before SSM reports `Success`).
    pub ssm_status: Option<InvocationStatus>,
    pub samples: u64,
    pub warnings: Vec<String>,
    pub svg: PathBuf,
    pub folded: PathBuf,
    /// The `perf script` text it was drawn from.
    pub stacks: PathBuf,
    /// The leaf functions with the most samples.
    pub top_functions: Vec<HotFunction>,
    /// The processes the host recorded (from its meta.json).
    pub processes: Vec<MetaTarget>,
    /// Samples per sub-second time slice, when the stacks have timestamps.
    pub heatmap: Option<Heatmap>,
}

/// A host that ended without a flamegraph.
#[derive(Debug, Clone)]
pub struct Failed {
    pub who: Who,
    /// SSM's status for this host (`Failed`, `Undeliverable`, …), when the
    /// host got as far as SSM.
    pub ssm_status: Option<InvocationStatus>,
    pub cause: String,
    pub next_step: Option<String>,
    /// Last lines the host printed.
    pub output_tail: Option<String>,
    /// What its upload said, when it was fetched but could not be drawn.
    pub upload: Option<Upload>,
}

/// A host's upload, fetched, that could not be drawn.
#[derive(Debug, Clone)]
pub struct Upload {
    pub stacks: PathBuf,
    pub warnings: Vec<String>,
    pub processes: Vec<MetaTarget>,
}

/// A host set aside before anything ran on it (not running, offline, or
/// refused by SSM as not valid).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub who: Who,
    pub cause: String,
}

/// How one host ended. See the module's comment.
// Most rows are `Rendered`, one per host: boxing it would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum HostOutcome {
    Rendered(Rendered),
    Failed(Failed),
    Skipped(Skipped),
}

impl Failed {
    /// A failure with a cause and nothing else known yet.
    pub fn new(who: Who, cause: impl Into<String>) -> Failed {
        Failed {
            who,
            ssm_status: None,
            cause: cause.into(),
            next_step: None,
            output_tail: None,
            upload: None,
        }
    }
}

impl HostOutcome {
    /// A host or input that failed with `cause`.
    pub fn failed(who: Who, cause: impl Into<String>) -> HostOutcome {
        HostOutcome::Failed(Failed::new(who, cause))
    }

    pub fn skipped(who: Who, cause: impl Into<String>) -> HostOutcome {
        HostOutcome::Skipped(Skipped {
            who,
            cause: cause.into(),
        })
    }

    pub fn who(&self) -> &Who {
        match self {
            HostOutcome::Rendered(r) => &r.who,
            HostOutcome::Failed(f) => &f.who,
            HostOutcome::Skipped(s) => &s.who,
        }
    }

    pub fn who_mut(&mut self) -> &mut Who {
        match self {
            HostOutcome::Rendered(r) => &mut r.who,
            HostOutcome::Failed(f) => &mut f.who,
            HostOutcome::Skipped(s) => &mut s.who,
        }
    }

    /// The instance id or input path.
    pub fn host(&self) -> &str {
        &self.who().host
    }

    pub fn status(&self) -> Status {
        match self {
            HostOutcome::Rendered(_) => Status::Rendered,
            HostOutcome::Failed(_) => Status::Failed,
            HostOutcome::Skipped(_) => Status::Skipped,
        }
    }

    pub fn rendered(&self) -> Option<&Rendered> {
        match self {
            HostOutcome::Rendered(r) => Some(r),
            _ => None,
        }
    }

    pub fn ssm_status(&self) -> Option<InvocationStatus> {
        match self {
            HostOutcome::Rendered(r) => r.ssm_status,
            HostOutcome::Failed(f) => f.ssm_status,
            HostOutcome::Skipped(_) => None,
        }
    }

    pub fn samples(&self) -> Option<u64> {
        self.rendered().map(|r| r.samples)
    }

    /// The host's own warnings (from its meta.json).
    pub fn warnings(&self) -> &[String] {
        match self {
            HostOutcome::Rendered(r) => &r.warnings,
            HostOutcome::Failed(Failed {
                upload: Some(u), ..
            }) => &u.warnings,
            _ => &[],
        }
    }

    pub fn svg(&self) -> Option<&PathBuf> {
        self.rendered().map(|r| &r.svg)
    }

    /// Why the host has no flamegraph.
    pub fn cause(&self) -> Option<&str> {
        match self {
            HostOutcome::Rendered(_) => None,
            HostOutcome::Failed(f) => Some(&f.cause),
            HostOutcome::Skipped(s) => Some(&s.cause),
        }
    }
}

/// `--json`'s row: every field, in the order scripts and tests know.
#[derive(Serialize)]
struct Row<'a> {
    host: &'a str,
    name: Option<&'a str>,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    ssm_status: Option<String>,
    samples: Option<u64>,
    warnings: &'a [String],
    svg: Option<&'a PathBuf>,
    folded: Option<&'a PathBuf>,
    stacks: Option<&'a PathBuf>,
    cause: Option<&'a str>,
    next_step: Option<&'a str>,
    output_tail: Option<&'a str>,
    top_functions: &'a [HotFunction],
    processes: &'a [MetaTarget],
}

impl Serialize for HostOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let who = self.who();
        let mut row = Row {
            host: &who.host,
            name: who.name.as_deref(),
            status: self.status(),
            role: who.role,
            ssm_status: self.ssm_status().map(|s| s.to_string()),
            samples: self.samples(),
            warnings: self.warnings(),
            svg: None,
            folded: None,
            stacks: None,
            cause: self.cause(),
            next_step: None,
            output_tail: None,
            top_functions: &[],
            processes: &[],
        };
        match self {
            HostOutcome::Rendered(r) => {
                row.svg = Some(&r.svg);
                row.folded = Some(&r.folded);
                row.stacks = Some(&r.stacks);
                row.top_functions = &r.top_functions;
                row.processes = &r.processes;
            }
            HostOutcome::Failed(f) => {
                row.next_step = f.next_step.as_deref();
                row.output_tail = f.output_tail.as_deref();
                if let Some(u) = &f.upload {
                    row.stacks = Some(&u.stacks);
                    row.processes = &u.processes;
                }
            }
            HostOutcome::Skipped(_) => {}
        }
        row.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(o: &HostOutcome) -> serde_json::Value {
        serde_json::to_value(o).unwrap()
    }

    /// The flat row scripts read: every key, in order, whatever the variant.
    #[test]
    fn every_variant_serialises_to_the_same_flat_row() {
        let keys = [
            "host",
            "name",
            "status",
            "ssm_status",
            "samples",
            "warnings",
            "svg",
            "folded",
            "stacks",
            "cause",
            "next_step",
            "output_tail",
            "top_functions",
            "processes",
        ];
        let skipped = HostOutcome::skipped(Who::new("i-1", None), "stopped");
        let failed = HostOutcome::failed(Who::new("i-2", Some("api".into())), "perf missing");
        for o in [&skipped, &failed] {
            let text = serde_json::to_string(o).unwrap();
            let mut at = 0;
            for k in keys {
                let found = text[at..]
                    .find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("{k} missing or out of order in {text}"));
                at += found;
            }
            assert!(!text.contains("\"role\""), "{text}");
        }
        assert_eq!(json(&skipped)["status"], "skipped");
        assert_eq!(json(&skipped)["cause"], "stopped");
        assert_eq!(json(&failed)["svg"], serde_json::Value::Null);
        assert_eq!(json(&failed)["name"], "api");
    }

    #[test]
    fn a_failed_hosts_upload_is_still_reported() {
        let mut f = Failed::new(Who::new("i-1", None), "collapse failed");
        f.ssm_status = Some(InvocationStatus::Success);
        f.upload = Some(Upload {
            stacks: "/out/raw/i-1.perf".into(),
            warnings: vec!["partial".into()],
            processes: Vec::new(),
        });
        let o = HostOutcome::Failed(f);
        assert_eq!(o.warnings(), ["partial".to_string()]);
        let v = json(&o);
        assert_eq!(v["stacks"], "/out/raw/i-1.perf");
        assert_eq!(v["ssm_status"], "Success");
        assert_eq!(v["samples"], serde_json::Value::Null);
    }
}
