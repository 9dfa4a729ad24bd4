//! Which instances: the positional ids, `--tag`, `--asg` and the opt-in
//! tag, shared by `ssm` (required) and `doctor` (optional), checked before
//! any AWS call.

use clap::Args;

use super::checks::shorten_arg;
use crate::error::{Error, Result};
use crate::model::{InstanceId, Target};

#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Instance ids (i-0123456789abcdef0).
    #[arg(value_name = "INSTANCE_ID")]
    pub instances: Vec<String>,

    /// Every running instance with this tag (KEY=VALUE, repeatable: all must match).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,

    /// Every running instance of this autoscaling group.
    #[arg(long, value_name = "NAME", conflicts_with = "tag")]
    pub asg: Option<String>,

    /// The tag an instance needs before flamefire may profile it (the
    /// Terraform module's `instance_opt_in_tag`). Instances chosen by --tag
    /// or --asg without it are skipped before anything is sent. An empty
    /// value turns the check off (for IAM set up without the module).
    #[arg(
        long,
        env = "FLAMEFIRE_OPT_IN_TAG",
        default_value = "flamefire=enabled",
        value_name = "KEY=VALUE"
    )]
    pub opt_in_tag: String,
}

impl TargetArgs {
    /// Instance ids, `--tag`s or `--asg`: at most one kind; `None` when none is given.
    pub(super) fn parse(&self) -> Result<Option<Target>> {
        parse_target(&self.instances, &self.tag, self.asg.as_deref())
    }

    /// `--opt-in-tag`: `None` when turned off with an empty value.
    pub(super) fn opt_in(&self) -> Result<Option<(String, String)>> {
        if self.opt_in_tag.is_empty() {
            return Ok(None);
        }
        let mut tags = parse_tags(std::slice::from_ref(&self.opt_in_tag), "--opt-in-tag")?;
        Ok(tags.pop())
    }
}

fn parse_target(instances: &[String], tag: &[String], asg: Option<&str>) -> Result<Option<Target>> {
    let chosen = [!instances.is_empty(), !tag.is_empty(), asg.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if chosen > 1 {
        return Err(Error::Usage(
            "give instance ids, --tag or --asg, not several kinds at once".into(),
        ));
    }
    if let Some(asg) = asg {
        if asg.is_empty() || asg.len() > 255 {
            return Err(Error::Usage(format!(
                "--asg {asg:?} is not an autoscaling group name"
            )));
        }
        return Ok(Some(Target::AutoScalingGroup(asg.to_string())));
    }
    if !tag.is_empty() {
        return Ok(Some(Target::Tags(parse_tags(tag, "--tag")?)));
    }
    if !instances.is_empty() {
        return Ok(Some(Target::Ids(parse_ids(instances, "")?)));
    }
    Ok(None)
}

/// `KEY=VALUE` tags; errors name `flag`.
pub(super) fn parse_tags(raw: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    let mut tags = Vec::new();
    for t in raw {
        let (k, v) = t.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "{flag} {t:?} must be KEY=VALUE, e.g. {flag} Role=api"
            ))
        })?;
        if k.is_empty() {
            return Err(Error::Usage(format!("{flag} {t:?} has an empty key")));
        }
        // EC2 tag limits: keys up to 128 characters, and DescribeInstances
        // filter values up to 255
        // (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
        if k.chars().count() > 128 {
            return Err(Error::Usage(format!(
                "{flag} {:?}…: the key is longer than EC2's 128 characters; check the tag's spelling",
                shorten_arg(t)
            )));
        }
        if v.chars().count() > 255 {
            return Err(Error::Usage(format!(
                "{flag} {k}=…: the value has {} characters, more than the 255 EC2 matches; check the tag's value",
                v.chars().count()
            )));
        }
        tags.push((k.to_string(), v.to_string()));
    }
    Ok(tags)
}

/// Instance ids, deduplicated; errors start with `flag` (empty for positionals).
pub(super) fn parse_ids(raw: &[String], flag: &str) -> Result<Vec<InstanceId>> {
    let mut ids = Vec::new();
    for r in raw {
        let id = InstanceId::parse(r).ok_or_else(|| {
            Error::Usage(format!(
                "{flag}{r:?} is not an instance id (expected i- followed by 8 or 17 hex digits, e.g. i-0123456789abcdef0)"
            ))
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}
