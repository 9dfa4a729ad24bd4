//! Where a run lives in S3, and every key it has: the one place that spells
//! the layout docs/contracts.md pins.
//!
//! ```text
//! s3://<bucket>/<prefix><run-id>/run.json                     the CLI, before SendCommand
//! s3://<bucket>/<prefix><run-id>/<instance-id>/upload-check   the host, before recording
//! s3://<bucket>/<prefix><run-id>/<instance-id>/stacks.gz      the host, after recording
//! s3://<bucket>/<prefix><run-id>/<instance-id>/meta.json      the host, last: it marks completion
//! ```
//!
//! `<prefix>` is empty or ends in `/` (the CLI normalises `--prefix`), so
//! `<prefix><run-id>/` is also the document's `UploadKeyPrefix`, to which
//! the host script appends `<instance-id>/` and the file name itself.

use std::fmt;

use super::InstanceId;

/// The run's record (`flamefire runs` reads it).
pub const RUN_RECORD: &str = "run.json";
/// A host's folded stacks, gzipped.
pub const STACKS: &str = "stacks.gz";
/// A host's metadata; written last, so its presence means the upload completed.
pub const META: &str = "meta.json";
/// The small object a host POSTs before recording, to prove it can upload.
pub const UPLOAD_CHECK: &str = "upload-check";

/// One run's place in a bucket: `s3://<bucket>/<prefix><run-id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLocation {
    bucket: String,
    prefix: String,
    run_id: String,
}

impl RunLocation {
    /// `prefix` as the CLI normalised it: empty or ending in `/`.
    pub fn new(bucket: &str, prefix: &str, run_id: &str) -> Self {
        debug_assert!(prefix.is_empty() || prefix.ends_with('/'), "{prefix:?}");
        RunLocation {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            run_id: run_id.to_string(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The bucket's key prefix under which every run lives (`--prefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// `<prefix><run-id>/`: every key of the run starts with it. It is the
    /// document's `UploadKeyPrefix` and the upload policy's `starts-with`.
    pub fn run_prefix(&self) -> String {
        format!("{}{}/", self.prefix, self.run_id)
    }

    /// `<prefix><run-id>/run.json`.
    pub fn run_record(&self) -> String {
        format!("{}{RUN_RECORD}", self.run_prefix())
    }

    /// `<prefix><run-id>/<instance-id>/`: one host's uploads.
    pub fn host_prefix(&self, host: &InstanceId) -> String {
        format!("{}{host}/", self.run_prefix())
    }

    /// `<prefix><run-id>/<instance-id>/stacks.gz`.
    pub fn stacks(&self, host: &InstanceId) -> String {
        format!("{}{STACKS}", self.host_prefix(host))
    }

    /// `<prefix><run-id>/<instance-id>/meta.json`.
    pub fn meta(&self, host: &InstanceId) -> String {
        format!("{}{META}", self.host_prefix(host))
    }

    /// `<prefix><run-id>/<instance-id>/upload-check`.
    pub fn upload_check(&self, host: &InstanceId) -> String {
        format!("{}{UPLOAD_CHECK}", self.host_prefix(host))
    }

    /// Which host completed its upload, when `key` is one of this run's
    /// `meta.json` keys.
    pub fn uploaded_by(&self, key: &str) -> Option<InstanceId> {
        let read = RunKey::read(&self.prefix, key)?;
        (read.run_id == self.run_id).then_some(read.uploaded?)
    }
}

/// `s3://<bucket>/<prefix><run-id>/`, for people.
impl fmt::Display for RunLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.run_prefix())
    }
}

/// A key under a bucket prefix, read back into the run it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey<'a> {
    pub run_id: &'a str,
    /// The host, when the key is exactly `<run-id>/<instance-id>/meta.json`.
    pub uploaded: Option<InstanceId>,
}

impl<'a> RunKey<'a> {
    /// `None` for keys outside `prefix` or without a `<run-id>/` folder.
    pub fn read(prefix: &str, key: &'a str) -> Option<RunKey<'a>> {
        let (run_id, rest) = key.strip_prefix(prefix)?.split_once('/')?;
        if run_id.is_empty() {
            return None;
        }
        let uploaded = rest
            .strip_suffix(&format!("/{META}"))
            .and_then(InstanceId::parse);
        Some(RunKey { run_id, uploaded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    /// docs/contracts.md's layout, spelled out once more by hand.
    #[test]
    fn every_key_of_a_run_is_the_contracts_layout() {
        let run = RunLocation::new("bkt", "team/flamefire/", "20261203T1022-ab12");
        let host = id("i-0123456789abcdef0");
        let base = "team/flamefire/20261203T1022-ab12/";
        assert_eq!(run.run_prefix(), base);
        assert_eq!(run.run_record(), format!("{base}run.json"));
        assert_eq!(
            run.host_prefix(&host),
            format!("{base}i-0123456789abcdef0/")
        );
        assert_eq!(
            run.stacks(&host),
            format!("{base}i-0123456789abcdef0/stacks.gz")
        );
        assert_eq!(
            run.meta(&host),
            format!("{base}i-0123456789abcdef0/meta.json")
        );
        assert_eq!(
            run.upload_check(&host),
            format!("{base}i-0123456789abcdef0/upload-check")
        );
        assert_eq!(run.to_string(), format!("s3://bkt/{base}"));
        // An empty prefix puts runs at the bucket's root.
        let root = RunLocation::new("bkt", "", "R1");
        assert_eq!(root.run_record(), "R1/run.json");
        assert_eq!(root.to_string(), "s3://bkt/R1/");
    }

    #[test]
    fn only_a_hosts_meta_json_marks_its_upload_complete() {
        let run = RunLocation::new("b", "p/", "r");
        let host = id("i-00000000000000001");
        assert_eq!(run.uploaded_by(&run.meta(&host)), Some(host.clone()));
        for key in [
            run.stacks(&host),
            run.upload_check(&host),
            run.run_record(),
            format!("{}/x", run.meta(&host)),
            "p/r/not-an-instance/meta.json".to_string(),
            "p/other/i-00000000000000001/meta.json".to_string(),
            "q/r/i-00000000000000001/meta.json".to_string(),
        ] {
            assert_eq!(run.uploaded_by(&key), None, "{key}");
        }
    }

    #[test]
    fn keys_are_read_back_into_their_run() {
        let read = |key| RunKey::read("p/", key);
        assert_eq!(
            read("p/R1/i-00000000000000001/meta.json"),
            Some(RunKey {
                run_id: "R1",
                uploaded: Some(id("i-00000000000000001"))
            })
        );
        assert_eq!(
            read("p/R1/run.json"),
            Some(RunKey {
                run_id: "R1",
                uploaded: None
            })
        );
        // Not under the prefix, no run folder, or an empty run id.
        assert_eq!(read("q/R1/run.json"), None);
        assert_eq!(read("p/R1"), None);
        assert_eq!(read("p//run.json"), None);
    }
}
