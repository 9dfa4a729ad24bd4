//! EC2 DescribeInstances: targets → instances with state and Name tag.

use aws_sdk_ec2::types::Filter;

use super::{Aws, errors};
use crate::error::Result;
use crate::model::{InstanceId, InstanceState, Target};

/// What EC2 says about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub id: InstanceId,
    /// `running`, `stopped`, `terminated`, …
    pub state: InstanceState,
    pub name: Option<String>,
    /// Every tag, for the opt-in check.
    pub tags: Vec<(String, String)>,
}

/// DescribeInstances caps instance-id filter values; stay well below.
const IDS_PER_CALL: usize = 200;

impl Aws {
    /// Every instance the target names, whatever its state, paginated.
    /// Unknown ids are simply absent: `targets::classify` reports them.
    pub async fn describe_instances(&self, target: &Target) -> Result<Vec<Ec2Instance>> {
        let filter = |name: &str, values: Vec<String>| {
            Filter::builder()
                .name(name)
                .set_values(Some(values))
                .build()
        };
        let batches: Vec<Vec<Filter>> = match target {
            Target::Ids(ids) => {
                // Filtering (rather than InstanceIds=) means one unknown id
                // does not fail the whole call with InvalidInstanceID.NotFound.
                let ec2_ids: Vec<String> = ids
                    .iter()
                    .filter(|i| i.as_str().starts_with("i-"))
                    .map(|i| i.to_string())
                    .collect();
                ec2_ids
                    .chunks(IDS_PER_CALL)
                    .map(|c| vec![filter("instance-id", c.to_vec())])
                    .collect()
            }
            Target::Tags(tags) => vec![
                tags.iter()
                    .map(|(k, v)| filter(&format!("tag:{k}"), vec![literal(v)]))
                    .collect(),
            ],
            Target::AutoScalingGroup(name) => {
                vec![vec![filter(
                    "tag:aws:autoscaling:groupName",
                    vec![literal(name)],
                )]]
            }
        };
        let mut out = Vec::new();
        for filters in batches {
            let mut pages = self
                .ec2
                .describe_instances()
                .set_filters(Some(filters))
                .max_results(1000)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| errors::convert("ec2:DescribeInstances", e, None))?;
                for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                    let Some(id) = instance.instance_id().and_then(InstanceId::parse) else {
                        continue;
                    };
                    let state = InstanceState::from_aws(
                        instance
                            .state()
                            .and_then(|s| s.name())
                            .map_or("unknown", |n| n.as_str()),
                    );
                    let tags: Vec<(String, String)> = instance
                        .tags()
                        .iter()
                        .filter_map(|t| {
                            Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                        })
                        .collect();
                    let name = tags
                        .iter()
                        .find(|(k, _)| k == "Name")
                        .map(|(_, v)| v.clone());
                    out.push(Ec2Instance {
                        id,
                        state,
                        name,
                        tags,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }
}

/// A filter value that matches `value` literally. EC2 filters treat `*` and
/// `?` as wildcards and take a backslash as their escape: "a value of
/// \*amazon\?\\ searches for the literal string *amazon?\"
/// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Filter.html).
fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn wildcards_are_escaped() {
        assert_eq!(literal("api"), "api");
        assert_eq!(literal("*amazon?\\"), "\\*amazon\\?\\\\");
    }
}
