//! Stage 4: succeeded hosts → verified stacks on local disk.
//!
//! Input: the hosts whose invocation succeeded. Output: for each host either
//! `<out>/raw/<id>.perf` (decompressed `perf script` text, which speedscope and
//! FlameScope open) plus its `meta.json`, or the reason that host's upload is
//! unusable. Every download is bounded in size, its gzip stream is checked
//! end to end, and its meta must parse and name this host and run. One bad
//! upload fails that host alone. This stage never collapses or renders.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::aws::{Aws, FetchProblem};
use crate::model::{Host, RunLocation};

/// Largest compressed stacks file accepted (matches the POST policy).
pub const MAX_STACKS_BYTES: u64 = 512 * 1024 * 1024;
/// Largest decompressed stacks accepted: a 300 s recording of 64 busy
/// processes at 999 Hz stays well below.
pub const MAX_PERF_BYTES: u64 = 8 * 1024 * 1024 * 1024;
const MAX_META_BYTES: u64 = 1024 * 1024;
/// Downloads in flight: S3 serves each GetObject independently, and a fleet's
/// objects are small, so latency, not bandwidth, bounds this stage.
pub const PARALLEL_DOWNLOADS: usize = 16;

pub use crate::model::meta::{Meta, MetaTarget};

pub fn parse_meta(bytes: &[u8]) -> Result<Meta, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("meta.json does not parse: {e}"))
}

/// A host's verified files on disk.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub host: Host,
    pub perf: PathBuf,
    pub meta: Meta,
}

/// How long a download S3 throttles is retried (with jittered backoff)
/// before the host is given up: throttling is S3's "later", not "no".
const THROTTLED_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// Downloads and verifies one host's upload into `<out>/raw/`.
pub async fn host(
    aws: &Aws,
    run: &RunLocation,
    host: &Host,
    out: &Path,
) -> Result<Fetched, FetchError> {
    let raw = out.join("raw");
    std::fs::create_dir_all(&raw).map_err(|e| format!("cannot create {}: {e}", raw.display()))?;
    let id = host.id.as_str();
    let bucket = run.bucket();
    let meta_bytes = get(aws, bucket, &run.meta(&host.id), MAX_META_BYTES).await?;
    let meta = parse_meta(&meta_bytes)?;
    check_meta(&meta, id, run.run_id())?;
    let gz = get(aws, bucket, &run.stacks(&host.id), MAX_STACKS_BYTES).await?;
    let perf = raw.join(format!("{id}.perf"));
    let target = perf.clone();
    tokio::task::spawn_blocking(move || decompress_checked(&gz, &target))
        .await
        .map_err(|e| format!("decompression task failed: {e}"))??;
    let meta_path = raw.join(format!("{id}.meta.json"));
    std::fs::write(&meta_path, &meta_bytes)
        .map_err(|e| format!("cannot write {}: {e}", meta_path.display()))?;
    Ok(Fetched {
        host: host.clone(),
        perf,
        meta,
    })
}

/// Why a host's upload could not be fetched, with the message to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// S3 kept throttling the download: the upload is in the bucket, and
    /// `flamefire fetch` can draw it later.
    Throttled(String),
    /// Missing, too large, corrupt, not this host's, or a local write failed.
    Failed(String),
}

impl From<String> for FetchError {
    fn from(cause: String) -> Self {
        FetchError::Failed(cause)
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Throttled(cause) | FetchError::Failed(cause) => f.write_str(cause),
        }
    }
}

/// One bounded GetObject, retried while S3 throttles it.
async fn get(aws: &Aws, bucket: &str, key: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
    let give_up = tokio::time::Instant::now() + THROTTLED_FOR;
    let mut backoff = crate::wait::Backoff::default();
    loop {
        match aws.get_bounded(bucket, key, limit).await {
            Err(FetchProblem::Throttled(_)) if tokio::time::Instant::now() < give_up => {
                backoff.failed();
                tokio::time::sleep(backoff.delay(std::time::Duration::from_millis(500))).await;
            }
            Err(p @ FetchProblem::Throttled(_)) => {
                return Err(FetchError::Throttled(problem(&p, bucket, key)));
            }
            other => return other.map_err(|p| FetchError::Failed(problem(&p, bucket, key))),
        }
    }
}

fn problem(p: &FetchProblem, bucket: &str, key: &str) -> String {
    match p {
        FetchProblem::Missing => format!(
            "s3://{bucket}/{key} is missing: the host reported success but its upload did not arrive (check the host's curl output above)"
        ),
        FetchProblem::TooLarge { bytes, limit } => {
            format!("s3://{bucket}/{key} is {bytes} bytes, over the {limit}-byte limit")
        }
        FetchProblem::Throttled(e) => format!(
            "S3 throttled the download of s3://{bucket}/{key} for {} s: {e} (fetch it again later with `flamefire fetch`)",
            THROTTLED_FOR.as_secs()
        ),
        FetchProblem::Failed(e) => format!("downloading s3://{bucket}/{key} failed: {e}"),
    }
}

/// The meta must be ours: same host, same run (a stale or misplaced upload is not).
pub fn check_meta(meta: &Meta, instance: &str, run_id: &str) -> Result<(), String> {
    if meta.schema != 1 {
        return Err(format!(
            "meta.json has schema {}, expected 1 (upgrade flamefire?)",
            meta.schema
        ));
    }
    if meta.instance_id != instance {
        return Err(format!(
            "meta.json names instance {:?}, not {instance}: the upload is not this host's",
            meta.instance_id
        ));
    }
    if meta.run_id != run_id {
        return Err(format!(
            "meta.json names run {:?}, not {run_id}",
            meta.run_id
        ));
    }
    Ok(())
}

/// Streams the gzip to `target`, failing (and removing `target`) on a corrupt
/// or truncated stream or one that inflates past `MAX_PERF_BYTES`.
pub fn decompress_checked(gz: &[u8], target: &Path) -> Result<u64, String> {
    let result = (|| {
        if gz.len() < 18 || gz[..2] != [0x1f, 0x8b] {
            return Err("stacks.gz is not gzip data (corrupt upload)".to_string());
        }
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(target)
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?,
        );
        let mut decoder = MultiGzDecoder::new(gz);
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = decoder
                .read(&mut buf)
                .map_err(|e| format!("stacks.gz is corrupt or truncated: {e}"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > MAX_PERF_BYTES {
                return Err(format!("stacks.gz inflates past {MAX_PERF_BYTES} bytes"));
            }
            file.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        }
        file.flush()
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        Ok(total)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(target);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn truncated_and_garbage_gzip_are_rejected_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.perf");
        let good = gz(&b"node 1 [000] 1.0: 1 cpu-clock:\n\tffff f (x)\n\n".repeat(1000));
        assert_eq!(decompress_checked(&good, &target).unwrap(), 44_000);
        let truncated = &good[..good.len() / 2];
        let err = decompress_checked(truncated, &target).unwrap_err();
        assert!(err.contains("corrupt or truncated"), "{err}");
        assert!(!target.exists());
        assert!(decompress_checked(b"not gzip at all, really not", &target).is_err());
    }

    #[test]
    fn meta_must_name_this_host_and_run() {
        let meta = parse_meta(br#"{"schema":1,"run_id":"R1","instance_id":"i-01234567"}"#).unwrap();
        assert!(check_meta(&meta, "i-01234567", "R1").is_ok());
        assert!(
            check_meta(&meta, "i-89abcdef", "R1")
                .unwrap_err()
                .contains("not this host")
        );
        assert!(check_meta(&meta, "i-01234567", "R2").is_err());
        assert!(parse_meta(b"{\"schema\":").is_err());
    }
}
