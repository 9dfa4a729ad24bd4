//! Past runs in the bucket: `flamefire runs` and `flamefire fetch RUN_ID`.
//!
//! Input: the bucket's keys under `--prefix` (docs/contracts.md's layout).
//! Output: one `RunSummary` per run, newest first, from the keys and each
//! run's `run.json`; or the hosts of one run, for `fetch` to download and
//! render again. Nothing is profiled and nothing is written to the bucket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::{Aws, ObjectSummary};
use crate::error::{Error, Result};
use crate::model::{Host, InstanceId};

/// What `app::ssm` writes to `<prefix><run-id>/run.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub started_at: u64,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub duration_s: u64,
    #[serde(default)]
    pub frequency_hz: u64,
    #[serde(default)]
    pub document: String,
    #[serde(default)]
    pub started_by: Option<String>,
    /// Written before SendCommand: true when then nothing could be sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nothing_sent: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    /// Hosts whose upload completed (`meta.json` is written last).
    pub uploaded: Vec<String>,
    pub record: Option<RunRecord>,
    pub modified_epoch: Option<i64>,
}

/// Groups keys into runs: `<prefix><run-id>/…`. Pure, for tests.
pub fn group(prefix: &str, objects: &[ObjectSummary]) -> BTreeMap<String, RunSummary> {
    let mut runs: BTreeMap<String, RunSummary> = BTreeMap::new();
    for o in objects {
        let Some(rest) = o.key.strip_prefix(prefix) else {
            continue;
        };
        let mut parts = rest.split('/');
        let (Some(run), Some(second)) = (parts.next(), parts.next()) else {
            continue;
        };
        if run.is_empty() {
            continue;
        }
        let entry = runs.entry(run.to_string()).or_insert_with(|| RunSummary {
            run_id: run.to_string(),
            uploaded: Vec::new(),
            record: None,
            modified_epoch: None,
        });
        entry.modified_epoch = entry.modified_epoch.max(o.modified_epoch);
        if parts.next() == Some("meta.json") && InstanceId::parse(second).is_some() {
            entry.uploaded.push(second.to_string());
        }
    }
    runs
}

/// Every run under `prefix`, newest first, with its `run.json` when present.
pub async fn list(aws: &Aws, bucket: &str, prefix: &str) -> Result<Vec<RunSummary>> {
    let objects = aws.list(bucket, prefix).await?;
    let mut runs: Vec<RunSummary> = group(prefix, &objects).into_values().collect();
    for run in &mut runs {
        let key = format!("{prefix}{}/run.json", run.run_id);
        if objects.iter().any(|o| o.key == key) {
            if let Ok(bytes) = aws.get_bounded(bucket, &key, 1024 * 1024).await {
                run.record = serde_json::from_slice(&bytes).ok();
            }
        }
    }
    // A run that never reached a host is not a run (its record is written
    // before SendCommand, and marked when nothing could be sent).
    // Nor is a `doctor --probe`.
    runs.retain(|r| !(r.uploaded.is_empty() && r.record.as_ref().is_some_and(|x| x.nothing_sent)));
    runs.retain(|r| !r.run_id.starts_with(crate::model::PROBE_RUN_PREFIX));
    runs.sort_by(|a, b| {
        let at = |r: &RunSummary| {
            r.record
                .as_ref()
                .map(|x| x.started_at as i64)
                .or(r.modified_epoch)
        };
        at(b).cmp(&at(a)).then_with(|| b.run_id.cmp(&a.run_id))
    });
    Ok(runs)
}

/// The hosts of one run that finished their upload, for `fetch`.
pub async fn hosts(
    aws: &Aws,
    bucket: &str,
    prefix: &str,
    run_id: &str,
) -> Result<(Vec<Host>, Option<RunRecord>)> {
    let objects = aws.list(bucket, &format!("{prefix}{run_id}/")).await?;
    let Some(run) = group(prefix, &objects).remove(run_id) else {
        return Err(Error::NoTargets(format!(
            "no run {run_id} under s3://{bucket}/{prefix} (list them with `flamefire runs`; check --prefix)"
        )));
    };
    let record = match aws
        .get_bounded(bucket, &format!("{prefix}{run_id}/run.json"), 1024 * 1024)
        .await
    {
        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
        Err(_) => None,
    };
    let hosts: Vec<Host> = run
        .uploaded
        .iter()
        .filter_map(|id| InstanceId::parse(id))
        .map(|id| Host { id, name: None })
        .collect();
    if hosts.is_empty() {
        return Err(Error::NoTargets(format!(
            "run {run_id} has no completed host upload in s3://{bucket}/{prefix}{run_id}/"
        )));
    }
    Ok((hosts, record))
}

/// The `runs` table, on stdout (it is the result of the command).
pub fn table(runs: &[RunSummary]) -> String {
    let mut out = format!(
        "{:<24} {:<20} {:>5} {:>9}  {:<32} {}\n",
        "RUN", "STARTED", "HOSTS", "PARAMS", "TARGET", "BY"
    );
    for r in runs {
        let rec = r.record.clone().unwrap_or_default();
        let started = if rec.started_at > 0 {
            crate::time::iso_utc(rec.started_at)
        } else {
            r.modified_epoch
                .map(|e| crate::time::iso_utc(e.max(0) as u64))
                .unwrap_or_default()
        };
        let params = if rec.duration_s > 0 {
            format!("{}s@{}Hz", rec.duration_s, rec.frequency_hz)
        } else {
            "-".into()
        };
        out.push_str(&format!(
            "{:<24} {:<20} {:>5} {:>9}  {:<32} {}\n",
            r.run_id,
            started,
            r.uploaded.len(),
            params,
            if rec.target.is_empty() {
                "-"
            } else {
                &rec.target
            },
            rec.started_by.as_deref().unwrap_or("-"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, t: i64) -> ObjectSummary {
        ObjectSummary {
            key: key.into(),
            size: 1,
            modified_epoch: Some(t),
        }
    }

    #[test]
    fn keys_group_into_runs_and_only_completed_uploads_count() {
        let objects = [
            obj("flamefire/R1/run.json", 10),
            obj("flamefire/R1/i-0123456789abcdef0/stacks.gz", 11),
            obj("flamefire/R1/i-0123456789abcdef0/meta.json", 12),
            obj("flamefire/R1/i-0123456789abcdef1/stacks.gz", 13),
            obj("flamefire/R2/i-0123456789abcdef2/meta.json", 20),
            obj("other/R3/i-0123456789abcdef3/meta.json", 30),
            obj("flamefire/R4/not-an-instance/meta.json", 40),
        ];
        let runs = group("flamefire/", &objects);
        assert_eq!(runs.keys().collect::<Vec<_>>(), vec!["R1", "R2", "R4"]);
        assert_eq!(runs["R1"].uploaded, vec!["i-0123456789abcdef0"]);
        assert_eq!(runs["R1"].modified_epoch, Some(13));
        assert!(runs["R4"].uploaded.is_empty());
    }
}
