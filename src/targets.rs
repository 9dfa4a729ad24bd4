//! Stage 1: instance ids / tags / autoscaling group → hosts to profile.
//!
//! Input: a `Target` from the CLI. Output: the running, SSM-managed, online
//! Linux hosts, plus every skipped instance with the reason. The decision
//! (`classify`) is pure; `resolve` only gathers the facts from EC2 and SSM.

use std::fmt;

use crate::aws::{Aws, Ec2Instance, ManagedInstance};
use crate::error::{Error, Result};
use crate::model::{Host, InstanceId, InstanceState, PingStatus, Platform, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    NotFound,
    NotRunning(InstanceState),
    NotManaged,
    Offline(PingStatus),
    NotLinux(Platform),
    /// The agent predates `interpolationType: ENV_VAR`.
    OldAgent(String),
    /// Chosen by tag or group, but without the opt-in tag (key, value).
    NotOptedIn(String, String),
}

impl SkipReason {
    /// What the on-call engineer can do about it.
    pub fn next_step(&self) -> String {
        match self {
            SkipReason::NotFound => "check the id and --region".into(),
            SkipReason::NotRunning(_) => "start the instance, or leave it out of the targets".into(),
            SkipReason::NotManaged | SkipReason::Offline(_) => {
                "fix the instance's SSM agent, or leave it out of the targets".into()
            }
            SkipReason::NotLinux(_) => "flamefire profiles Linux hosts only".into(),
            SkipReason::OldAgent(_) => {
                "update amazon-ssm-agent on the instance (e.g. with the AWS-UpdateSSMAgent document)".into()
            }
            SkipReason::NotOptedIn(k, v) => format!(
                "tag the instance {k}={v} if it may be profiled (the on-call role may not send to it otherwise), or pass --opt-in-tag if your setup uses another tag"
            ),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotFound => write!(f, "no such instance in this region (check --region)"),
            SkipReason::NotRunning(state) => write!(f, "not running ({state})"),
            SkipReason::NotManaged => write!(
                f,
                "not managed by SSM (install/start the SSM agent and attach AmazonSSMManagedInstanceCore)"
            ),
            SkipReason::Offline(ping) => write!(
                f,
                "SSM agent offline ({ping}; check the agent and the instance's route to SSM)"
            ),
            SkipReason::NotLinux(platform) => write!(f, "not Linux ({platform})"),
            SkipReason::OldAgent(version) => write!(
                f,
                "SSM agent {version} is older than {MIN_AGENT_TEXT}: it does not pass parameters as environment variables, so the document would refuse to run"
            ),
            SkipReason::NotOptedIn(k, v) => write!(f, "lacks the opt-in tag {k}={v}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub host: Host,
    pub reason: SkipReason,
}

#[derive(Debug, Default)]
pub struct Resolved {
    pub hosts: Vec<Host>,
    pub skipped: Vec<Skipped>,
}

/// The first agent version that exports `SSM_*` variables for ENV_VAR
/// parameters (the document's own requirement, ssm-documents/flamefire-record.yaml).
pub const MIN_AGENT: [u32; 4] = [3, 3, 2746, 0];
const MIN_AGENT_TEXT: &str = "3.3.2746.0";

/// Whether an agent version (`3.3.2957.0`) is at least [`MIN_AGENT`].
pub fn agent_supports_env_vars(version: &str) -> bool {
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .chain(std::iter::repeat(0))
        .take(4)
        .collect();
    parts.as_slice() >= MIN_AGENT.as_slice()
}

/// The opt-in tag (key, value) that instances chosen by tag or group must carry.
pub type OptIn = Option<(String, String)>;

/// Turns the target into hosts, listing every skipped instance and why.
pub async fn resolve(aws: &Aws, target: &Target, opt_in: &OptIn) -> Result<Resolved> {
    let (ec2, managed) = survey(aws, target).await?;
    let resolved = classify(target, &ec2, &managed, opt_in);
    if resolved.hosts.is_empty() {
        return Err(Error::NoTargets(nothing_left(
            target,
            &ec2,
            &resolved,
            aws.region(),
        )));
    }
    Ok(resolved)
}

/// The facts `classify` decides on: what EC2 says of every instance the
/// target names, and what SSM says of the running ones (plus hybrid `mi-`
/// nodes named explicitly, which EC2 does not know).
pub async fn survey(
    aws: &Aws,
    target: &Target,
) -> Result<(Vec<Ec2Instance>, Vec<ManagedInstance>)> {
    let ec2 = aws.describe_instances(target).await?;
    let mut asked: Vec<InstanceId> = ec2
        .iter()
        .filter(|i| i.state == InstanceState::Running)
        .map(|i| i.id.clone())
        .collect();
    if let Target::Ids(ids) = target {
        asked.extend(
            ids.iter()
                .filter(|i| i.as_str().starts_with("mi-"))
                .cloned(),
        );
    }
    let managed = aws.managed_instances(&asked).await?;
    Ok((ec2, managed))
}

/// The pure decision: which instances are usable, and why the others are not.
/// Instances chosen by tag or group must carry `opt_in`: IAM denies a whole
/// SendCommand batch for one instance without it. Named ids are the user's
/// explicit choice and are not filtered (`dispatch` isolates a denied one).
pub fn classify(
    target: &Target,
    ec2: &[Ec2Instance],
    managed: &[ManagedInstance],
    opt_in: &OptIn,
) -> Resolved {
    let mut out = Resolved::default();
    let by_tag = !matches!(target, Target::Ids(_));
    let mut consider = |id: &InstanceId,
                        name: Option<String>,
                        state: Option<&InstanceState>,
                        tags: &[(String, String)]| {
        let host = Host {
            id: id.clone(),
            name,
        };
        let lacks_opt_in = match opt_in {
            Some((k, v)) if by_tag => !tags.iter().any(|(tk, tv)| tk == k && tv == v),
            _ => false,
        };
        let reason = match (state, managed.iter().find(|m| &m.id == id)) {
            (Some(s), _) if *s != InstanceState::Running => Some(SkipReason::NotRunning(s.clone())),
            (_, None) => Some(SkipReason::NotManaged),
            (_, Some(m)) if m.ping_status != PingStatus::Online => {
                Some(SkipReason::Offline(m.ping_status.clone()))
            }
            (_, Some(m)) if m.platform_type != Platform::Linux => {
                Some(SkipReason::NotLinux(m.platform_type.clone()))
            }
            (_, Some(m))
                if !agent_supports_env_vars(m.agent_version.as_deref().unwrap_or_default()) =>
            {
                Some(SkipReason::OldAgent(
                    m.agent_version.clone().unwrap_or_else(|| "unknown".into()),
                ))
            }
            _ if lacks_opt_in => {
                let (k, v) = opt_in.clone().expect("checked above");
                Some(SkipReason::NotOptedIn(k, v))
            }
            _ => None,
        };
        match reason {
            None => out.hosts.push(host),
            Some(reason) => out.skipped.push(Skipped { host, reason }),
        }
    };
    for i in ec2 {
        consider(&i.id, i.name.clone(), Some(&i.state), &i.tags);
    }
    let mut not_found = Vec::new();
    if let Target::Ids(ids) = target {
        for id in ids {
            if ec2.iter().any(|i| &i.id == id) {
                continue;
            }
            // A hybrid node SSM does not know (refused as InvalidInstanceId,
            // see Aws::managed_instances) is not found, like an unknown i- id.
            if id.as_str().starts_with("mi-") && managed.iter().any(|m| &m.id == id) {
                consider(id, None, None, &[]);
            } else {
                not_found.push(id.clone());
            }
        }
    }
    out.skipped.extend(not_found.into_iter().map(|id| Skipped {
        host: Host { id, name: None },
        reason: SkipReason::NotFound,
    }));
    out
}

fn nothing_left(target: &Target, ec2: &[Ec2Instance], r: &Resolved, region: &str) -> String {
    if ec2.is_empty() && r.skipped.is_empty() {
        let hint = match target {
            Target::Tags(_) => "check the tag's spelling and case, and --region",
            Target::AutoScalingGroup(_) => "check the group name and --region",
            Target::Ids(_) => "check the ids and --region",
        };
        return format!("no instance matches {target} in {region} ({hint})");
    }
    const SHOWN: usize = 10;
    let mut lines: Vec<String> = r
        .skipped
        .iter()
        .take(SHOWN)
        .map(|s| format!("\n  {}: {}", s.host.label(), s.reason))
        .collect();
    if r.skipped.len() > SHOWN {
        lines.push(format!("\n  … and {} more", r.skipped.len() - SHOWN));
    }
    format!(
        "{} instance(s) match {target} in {region}, but none is running, SSM-managed, online, Linux, recent enough and opted in:{}",
        r.skipped.len(),
        lines.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    fn ec2(i: &str, state: &str) -> Ec2Instance {
        Ec2Instance {
            id: id(i),
            state: InstanceState::from_aws(state),
            name: Some(format!("name-{i}")),
            tags: vec![("flamefire".into(), "enabled".into())],
        }
    }

    fn ssm(i: &str, ping: &str, platform: &str) -> ManagedInstance {
        ManagedInstance {
            id: id(i),
            ping_status: PingStatus::from_aws(ping),
            platform_type: Platform::from_aws(platform),
            agent_version: Some("3.3.2957.0".into()),
        }
    }

    #[test]
    fn parses_ids() {
        assert!(InstanceId::parse("i-0123456789abcdef0").is_some());
        assert!(InstanceId::parse("i-01234567").is_some());
        assert!(InstanceId::parse("mi-0123456789abcdef0").is_some());
        for bad in [
            "i-0123",
            "i-0123456789ABCDEF0",
            "x-01234567",
            "i-0123456789abcdef0;id",
            "",
        ] {
            assert!(InstanceId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn every_skip_reason_is_reported() {
        let a = "i-0000000000000000a";
        let b = "i-0000000000000000b";
        let c = "i-0000000000000000c";
        let d = "i-0000000000000000d";
        let e = "i-0000000000000000e";
        let f = "i-0000000000000000f";
        let target = Target::Ids(vec![id(a), id(b), id(c), id(d), id(e), id(f)]);
        let instances = [
            ec2(a, "running"),
            ec2(b, "stopped"),
            ec2(c, "running"),
            ec2(d, "running"),
            ec2(e, "running"),
        ];
        let managed = [
            ssm(a, "Online", "Linux"),
            ssm(d, "ConnectionLost", "Linux"),
            ssm(e, "Online", "Windows"),
        ];
        let r = classify(&target, &instances, &managed, &None);
        assert_eq!(r.hosts.len(), 1);
        assert_eq!(r.hosts[0].id, id(a));
        let reasons: Vec<_> = r
            .skipped
            .iter()
            .map(|s| (s.host.id.as_str(), &s.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (b, &SkipReason::NotRunning(InstanceState::Stopped)),
                (c, &SkipReason::NotManaged),
                (d, &SkipReason::Offline(PingStatus::ConnectionLost)),
                (e, &SkipReason::NotLinux(Platform::Windows)),
                (f, &SkipReason::NotFound),
            ]
        );
    }

    #[test]
    fn old_agents_and_instances_without_the_opt_in_tag_are_skipped() {
        let a = "i-0000000000000000a";
        let b = "i-0000000000000000b";
        let c = "i-0000000000000000c";
        let mut untagged = ec2(b, "running");
        untagged.tags = vec![("flamefire".into(), "disabled".into())];
        let instances = [ec2(a, "running"), untagged, ec2(c, "running")];
        let mut old = ssm(c, "Online", "Linux");
        old.agent_version = Some("3.2.923.0".into());
        let managed = [ssm(a, "Online", "Linux"), ssm(b, "Online", "Linux"), old];
        let opt_in: OptIn = Some(("flamefire".into(), "enabled".into()));
        let by_tag = Target::Tags(vec![("Role".into(), "api".into())]);
        let r = classify(&by_tag, &instances, &managed, &opt_in);
        assert_eq!(
            r.hosts.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            [a]
        );
        assert_eq!(
            r.skipped
                .iter()
                .map(|s| (s.host.id.as_str(), s.reason.clone()))
                .collect::<Vec<_>>(),
            vec![
                (
                    b,
                    SkipReason::NotOptedIn("flamefire".into(), "enabled".into())
                ),
                (c, SkipReason::OldAgent("3.2.923.0".into())),
            ]
        );
        // Named ids are not filtered by tag; without an opt-in tag nothing is.
        let ids = Target::Ids(vec![id(a), id(b)]);
        assert_eq!(classify(&ids, &instances, &managed, &opt_in).hosts.len(), 2);
        assert_eq!(
            classify(&by_tag, &instances, &managed, &None).hosts.len(),
            2
        );
    }

    #[test]
    fn agent_versions() {
        assert!(agent_supports_env_vars("3.3.2746.0"));
        assert!(agent_supports_env_vars("3.3.2957.0"));
        assert!(agent_supports_env_vars("3.10.0.0"));
        assert!(agent_supports_env_vars("4.0"));
        assert!(!agent_supports_env_vars("3.3.2745.9"));
        assert!(!agent_supports_env_vars("3.2.1000.0"));
        assert!(!agent_supports_env_vars(""));
    }
}
