//! What EC2 and SSM say of an instance before anything is sent: its state,
//! its agent's ping status and its platform. `targets` decides on these;
//! the `aws` seam reads them from the SDK's strings with `from_aws`.

use std::fmt;

/// EC2's instance state (`DescribeInstances` `State.Name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    /// A state this build does not know, or none: shown as EC2 spelled it.
    Other(String),
}

/// SSM's word on an instance's agent (`DescribeInstanceInformation` `PingStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingStatus {
    Online,
    ConnectionLost,
    Inactive,
    Other(String),
}

/// The managed node's operating system family (`PlatformType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    Linux,
    Windows,
    MacOS,
    Other(String),
}

impl InstanceState {
    pub fn from_aws(name: &str) -> Self {
        use InstanceState::*;
        match name {
            "pending" => Pending,
            "running" => Running,
            "shutting-down" => ShuttingDown,
            "terminated" => Terminated,
            "stopping" => Stopping,
            "stopped" => Stopped,
            other => Other(other.to_string()),
        }
    }
}

impl PingStatus {
    pub fn from_aws(status: &str) -> Self {
        match status {
            "Online" => PingStatus::Online,
            "ConnectionLost" => PingStatus::ConnectionLost,
            "Inactive" => PingStatus::Inactive,
            other => PingStatus::Other(other.to_string()),
        }
    }
}

impl Platform {
    pub fn from_aws(platform: &str) -> Self {
        match platform {
            "Linux" => Platform::Linux,
            "Windows" => Platform::Windows,
            "MacOS" => Platform::MacOS,
            other => Platform::Other(other.to_string()),
        }
    }
}

/// AWS's own spelling, as the skip reasons show it.
impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Other(s) => s,
        })
    }
}

impl fmt::Display for PingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PingStatus::Online => "Online",
            PingStatus::ConnectionLost => "ConnectionLost",
            PingStatus::Inactive => "Inactive",
            PingStatus::Other(s) => s,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Linux => "Linux",
            Platform::Windows => "Windows",
            Platform::MacOS => "MacOS",
            Platform::Other(s) => s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_spellings_read_back_as_they_were_written() {
        for s in [
            "pending",
            "running",
            "shutting-down",
            "terminated",
            "stopping",
            "stopped",
            "unknown",
        ] {
            assert_eq!(InstanceState::from_aws(s).to_string(), s);
        }
        for s in ["Online", "ConnectionLost", "Inactive", "Unknown"] {
            assert_eq!(PingStatus::from_aws(s).to_string(), s);
        }
        for s in ["Linux", "Windows", "MacOS", "Unknown"] {
            assert_eq!(Platform::from_aws(s).to_string(), s);
        }
        // A case that differs is another value, not the one decided on.
        assert_ne!(InstanceState::from_aws("Running"), InstanceState::Running);
        assert_ne!(PingStatus::from_aws("online"), PingStatus::Online);
    }
}
