//! S3: the bucket check, bounded downloads, the run record, run listing.

use aws_sdk_s3::primitives::ByteStream;

use super::{Aws, errors};
use crate::error::Result;

/// Why one object could not be fetched: a problem of that host alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchProblem {
    Missing,
    TooLarge { bytes: u64, limit: u64 },
    Failed(String),
}

/// One key under a prefix, for `flamefire runs`.
#[derive(Debug, Clone)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub modified_epoch: Option<i64>,
}

impl Aws {
    /// ListObjectsV2 of `prefix` with max-keys=1, so that a wrong --bucket
    /// fails before anything is sent. Not HeadBucket: it needs s3:ListBucket
    /// with no `s3:prefix` in the request, which the on-call role's
    /// prefix-scoped grant never allows, and its errors have no body (issue 9).
    pub async fn check_bucket(&self, bucket: &str, prefix: &str) -> Result<()> {
        let sent = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => {
                let missing = matches!(errors::code(&e), Some("NoSuchBucket"));
                let mut err = errors::convert("s3:ListObjectsV2", e, Some(bucket));
                if missing {
                    if let crate::error::Error::Aws { message, next, .. } = &mut err {
                        *message = format!("bucket {bucket} does not exist");
                        *next = format!(
                            "check --bucket (or FLAMEFIRE_BUCKET) and --region ({}); terraform/ creates the bucket",
                            self.region
                        );
                    }
                }
                Err(err)
            }
        }
    }

    /// Downloads an object, refusing anything larger than `limit` bytes.
    pub async fn get_bounded(
        &self,
        bucket: &str,
        key: &str,
        limit: u64,
    ) -> std::result::Result<Vec<u8>, FetchProblem> {
        let out = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) if matches!(errors::code(&e), Some("NoSuchKey" | "NotFound")) => {
                return Err(FetchProblem::Missing);
            }
            Err(e) => return Err(FetchProblem::Failed(errors::chain(&e))),
        };
        let declared = out.content_length().unwrap_or(0).max(0) as u64;
        if declared > limit {
            return Err(FetchProblem::TooLarge {
                bytes: declared,
                limit,
            });
        }
        let mut body = out.body;
        let mut buf = Vec::with_capacity(declared as usize);
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| FetchProblem::Failed(errors::chain(&e)))?
        {
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > limit {
                return Err(FetchProblem::TooLarge {
                    bytes: buf.len() as u64,
                    limit,
                });
            }
        }
        Ok(buf)
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| errors::convert("s3:PutObject", e, Some(bucket)))?;
        Ok(())
    }

    /// Every key under `prefix`, paginated.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectSummary>> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| errors::convert("s3:ListObjectsV2", e, Some(bucket)))?;
            for o in page.contents() {
                out.push(ObjectSummary {
                    key: o.key().unwrap_or_default().to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    modified_epoch: o.last_modified().map(|t| t.secs()),
                });
            }
        }
        Ok(out)
    }
}
