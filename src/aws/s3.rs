//! S3: the bucket check, bounded downloads, the run record, run listing.

use aws_sdk_s3::primitives::ByteStream;

use super::{Aws, errors};
use crate::error::{AwsKind, Error, Result};

/// Why one object could not be fetched: a problem of that host alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchProblem {
    Missing,
    TooLarge {
        bytes: u64,
        limit: u64,
    },
    /// S3 answered SlowDown after the SDK's own retries: try again later.
    Throttled(String),
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
                let missing = errors::kind(&e) == Some(AwsKind::NoSuchBucket);
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
            Err(e) if errors::kind(&e) == Some(AwsKind::NoSuchKey) => {
                return Err(FetchProblem::Missing);
            }
            Err(e) if errors::kind(&e) == Some(AwsKind::Throttled) => {
                return Err(FetchProblem::Throttled(errors::chain(&e)));
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

impl Aws {
    /// The keys under `prefix` that sort after `start_after`, page by page
    /// (1,000 keys a page), stopping after the page that passes `until`:
    /// the wait stage lists only the stretch of a run's keys where hosts
    /// are still missing. Returns the keys and the pages it took.
    pub async fn keys_between(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        until: Option<&str>,
    ) -> Result<(Vec<String>, u32)> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .into_paginator()
            .send();
        let (mut keys, mut count) = (Vec::new(), 0);
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| errors::convert("s3:ListObjectsV2", e, Some(bucket)))?;
            count += 1;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            if until.is_some_and(|u| keys.last().is_some_and(|k| k.as_str() > u)) {
                break;
            }
        }
        Ok((keys, count))
    }
}

/// Why the run record could not be written: the same refusal would meet
/// every host's upload, after the recording.
fn record_error(
    err: aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_s3::operation::put_object::PutObjectError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
    bucket: &str,
    key: &str,
) -> Error {
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    let kind = errors::kind(&err);
    let status = err.raw_response().map(|r| r.status().as_u16());
    // A coded error without a message (a bodiless 403 already says so).
    let unexplained = err
        .as_service_error()
        .is_some_and(|e| e.code().is_some() && e.message().is_none());
    let mut converted = errors::convert("s3:PutObject", err, Some(bucket));
    if let Error::Aws { message, next, .. } = &mut converted {
        // SSE-KMS: S3 needs kms:GenerateDataKey on the bucket's key for the
        // caller, and answers KMS.* codes or an AccessDenied naming kms:
        // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms).
        // That AccessDenied has no code of its own, so only its message
        // tells it from the prefix's denial.
        let kms = kind == Some(AwsKind::Kms) || message.contains("kms:");
        if kms {
            *next = format!(
                "hosts could not upload to s3://{bucket}/{key} either: the bucket's KMS key refuses your credentials; grant kms:GenerateDataKey on it (the Terraform module does when kms_key_arn is set), or assume the on-call role"
            );
        } else if kind == Some(AwsKind::AccessDenied) || status == Some(403) {
            if unexplained {
                *message = "403 access denied (S3 sent no reason)".into();
            }
            *next = format!(
                "hosts could not upload to s3://{bucket}/{key} either: check --prefix (or FLAMEFIRE_PREFIX, terraform output `prefix`), since the on-call role may write under that prefix only; then the bucket policy, and --profile"
            );
        }
    }
    converted
}

impl Aws {
    /// Writes `<prefix><run-id>/run.json` before anything is sent. It is the
    /// same PutObject, by the same credentials, under the same prefix as
    /// the hosts' uploads, so a prefix the role may not write, a bucket
    /// policy or a KMS key that refuses fails here, before any recording.
    pub async fn put_run_record(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| record_error(e, bucket, key))?;
        Ok(())
    }

    /// The bucket's own region, from S3's `x-amz-bucket-region` header
    /// ("x-amz-bucket-region: the Region that the bucket is located",
    /// https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html),
    /// which S3 sends on success, on a 301 to the right region, and on a
    /// 403. ListObjectsV2 under the run's prefix comes first since the
    /// on-call role may make that call; HeadBucket (denied to the role, but
    /// its 403 still carries the header) second. `None` when S3 said neither.
    pub async fn bucket_region(&self, bucket: &str, prefix: &str) -> Option<String> {
        let seen = RegionHeader::default();
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .customize()
            .interceptor(seen.clone())
            .send()
            .await;
        if let Err(e) = &listed {
            tracing::debug!(
                "ListObjectsV2 for the bucket's region: {}",
                errors::chain(e)
            );
        }
        if let Some(region) = seen.get() {
            return Some(region);
        }
        match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(out) => out.bucket_region().map(str::to_string),
            Err(e) => e
                .raw_response()
                .and_then(|r| r.headers().get(BUCKET_REGION))
                .map(str::to_string),
        }
    }
}

const BUCKET_REGION: &str = "x-amz-bucket-region";

/// Records the `x-amz-bucket-region` header of whatever S3 answered.
#[derive(Debug, Clone, Default)]
struct RegionHeader(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl RegionHeader {
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for RegionHeader {
    fn name(&self) -> &'static str {
        "flamefire::RegionHeader"
    }

    fn read_before_deserialization(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(region) = context.response().headers().get(BUCKET_REGION) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(region.to_string());
        }
        Ok(())
    }
}

/// The presigned POST URL for `bucket` in `region`, from aws-sdk-s3's own
/// endpoint rules rather than by hand: virtual-hosted
/// `https://BUCKET.s3.REGION.amazonaws.com/` where the name allows it,
/// path-style `https://s3.REGION.amazonaws.com/BUCKET/` for names with dots
/// (a virtual host would not match S3's wildcard certificate), each
/// partition's domain (`amazonaws.com.cn` in aws-cn), and path-style on a
/// custom endpoint (the emulator).
pub fn post_url(bucket: &str, region: &str, endpoint: Option<&str>) -> Result<String> {
    use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let params = Params::builder()
        .bucket(bucket)
        .region(region)
        .use_fips(false)
        .use_dual_stack(false)
        .accelerate(false)
        .force_path_style(endpoint.is_some())
        .set_endpoint(endpoint.map(str::to_string))
        .build()
        .map_err(|e| bad_endpoint(bucket, region, &e.to_string()))?;
    let resolver = DefaultResolver::new();
    // The rules are pure computation: the future is ready at its first poll.
    let mut resolving = std::pin::pin!(resolver.resolve_endpoint(&params));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let resolved = match std::future::Future::poll(resolving.as_mut(), &mut cx) {
        std::task::Poll::Ready(r) => r.map_err(|e| bad_endpoint(bucket, region, &e.to_string()))?,
        std::task::Poll::Pending => {
            return Err(bad_endpoint(
                bucket,
                region,
                "the endpoint resolver did not answer at once",
            ));
        }
    };
    let url = resolved.url();
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

fn bad_endpoint(bucket: &str, region: &str, why: &str) -> Error {
    Error::Usage(format!(
        "no S3 endpoint for bucket {bucket} in region {region}: {why} (check --bucket and --region)"
    ))
}

#[cfg(test)]
mod tests {
    use super::post_url;

    #[test]
    fn upload_urls_follow_s3s_endpoint_rules() {
        let url = |b, r| post_url(b, r, None).unwrap();
        assert_eq!(
            url("b-1", "eu-west-1"),
            "https://b-1.s3.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            url("b-1", "us-east-1"),
            "https://b-1.s3.us-east-1.amazonaws.com/"
        );
        // Dots: path-style, so that TLS matches *.s3.REGION.amazonaws.com.
        assert_eq!(
            url("my.bucket", "eu-west-1"),
            "https://s3.eu-west-1.amazonaws.com/my.bucket/"
        );
        assert_eq!(
            url("b-1", "cn-north-1"),
            "https://b-1.s3.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            url("b-1", "us-gov-west-1"),
            "https://b-1.s3.us-gov-west-1.amazonaws.com/"
        );
        assert_eq!(
            post_url("b-1", "us-east-1", Some("http://127.0.0.1:5055")).unwrap(),
            "http://127.0.0.1:5055/b-1/"
        );
        assert!(post_url("b-1", "not a region", None).is_err());
    }
}
