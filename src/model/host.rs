//! Who is profiled: instance ids, the user's target, and a host to record.
//!
//! Plain data with no I/O: `targets` turns a `Target` into `Host`s, and
//! every later stage names a host by its `InstanceId`.

use std::fmt;

/// An EC2 instance id (`i-` + 8 or 17 hex digits) or an SSM hybrid node id (`mi-` + 17).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(raw: &str) -> Option<InstanceId> {
        let (prefix, hex) = raw.split_once('-')?;
        let hex_ok = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let ok = match prefix {
            "i" => hex_ok && (hex.len() == 8 || hex.len() == 17),
            "mi" => hex_ok && hex.len() == 17,
            _ => false,
        };
        ok.then(|| InstanceId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the user asked to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ids(Vec<InstanceId>),
    /// All of these tags must match.
    Tags(Vec<(String, String)>),
    AutoScalingGroup(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ids(ids) => {
                let ids: Vec<_> = ids.iter().map(InstanceId::as_str).collect();
                write!(f, "instances {}", ids.join(", "))
            }
            Target::Tags(tags) => {
                let tags: Vec<_> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "tag {}", tags.join(" and "))
            }
            Target::AutoScalingGroup(name) => write!(f, "autoscaling group {name}"),
        }
    }
}

/// A host that will be profiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub id: InstanceId,
    /// The `Name` tag, for display.
    pub name: Option<String>,
}

impl Host {
    /// `i-0abc (web-1)`, or just the id.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{} ({n})", self.id),
            None => self.id.to_string(),
        }
    }
}
