//! SDK errors → flamefire `Error`s, in one place.
//!
//! Each conversion keeps the service's error code and message and adds the
//! next step an on-call engineer can take at 3 a.m.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use aws_credential_types::provider::error::CredentialsError;

use crate::error::{AwsCode, AwsKind, Error};

/// The `source()` chain of any error, joined with `: `.
pub fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// The service error code (`AccessDeniedException`, `NoSuchBucket`, …), if any.
pub fn code<E, R>(err: &SdkError<E, R>) -> Option<AwsCode>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => s.err().code().map(AwsCode::new),
        _ => None,
    }
}

/// The kind of the service's error code, for the decisions the seam makes
/// before converting (retry a throttle, treat a missing key as absent).
pub fn kind<E, R>(err: &SdkError<E, R>) -> Option<AwsKind>
where
    E: ProvideErrorMetadata,
{
    code(err).map(|c| c.kind())
}

/// Whether the credentials chain found no credentials at all: the SDK says
/// so with a typed `CredentialsNotLoaded` somewhere in the error's sources.
fn no_credentials(err: &(dyn StdError + 'static)) -> bool {
    let mut cur = err.source();
    while let Some(e) = cur {
        if let Some(CredentialsError::CredentialsNotLoaded(_)) = e.downcast_ref() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Converts an SDK error from `call`. `resource` names what the call was about
/// (a bucket, a document) so the next step can name it too.
pub fn convert<E>(
    call: &'static str,
    err: SdkError<E, HttpResponse>,
    resource: Option<&str>,
) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let bodiless_403 = code(&err).is_none() && status == Some(403);
    // A 403 without a body (S3 HEAD requests) is still an access denial.
    let code = code(&err).or_else(|| bodiless_403.then(|| AwsCode::new("AccessDenied")));
    let message = match &err {
        SdkError::ServiceError(_) if bodiless_403 => {
            "AccessDenied: access denied (HTTP 403 with no error body)".to_string()
        }
        SdkError::ServiceError(s) => {
            let m = s.err().message().unwrap_or("no message");
            match &code {
                Some(c) => format!("{c}: {m}"),
                None => m.to_string(),
            }
        }
        _ => chain(&err),
    };
    let next = next_step(call, code.as_ref().map(AwsCode::kind), &err, resource);
    Error::Aws {
        call,
        code,
        message,
        next,
    }
}

fn next_step<E, R>(
    call: &str,
    kind: Option<AwsKind>,
    err: &SdkError<E, R>,
    resource: Option<&str>,
) -> String
where
    E: StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    let what = resource.unwrap_or("the resource");
    match kind {
        Some(AwsKind::AccessDenied) => format!(
            "your credentials may not call {call} on {what}: assume the flamefire on-call role (terraform/ output `role_arn`), or check --profile"
        ),
        Some(AwsKind::BadCredentials) => "your AWS credentials are invalid or expired: log in again (e.g. `aws sso login`) or check --profile".into(),
        Some(AwsKind::NoSuchBucket) => format!(
            "bucket {what} does not exist in this account/region: check --bucket (or FLAMEFIRE_BUCKET) and --region, or create it with terraform/"
        ),
        Some(AwsKind::InvalidDocument) => format!(
            "document {what} is not deployed in this region: run `terraform apply` in terraform/ or `flamefire document deploy`, or pass --document"
        ),
        Some(AwsKind::InvalidParameters) => "the document in AWS does not accept these parameters: it may be older than this flamefire; redeploy it (`flamefire document deploy`)".into(),
        Some(AwsKind::Throttled) => "AWS is throttling this account: wait a minute and retry, or target fewer hosts".into(),
        _ => match err {
            SdkError::DispatchFailure(_) if no_credentials(err) => {
                "no AWS credentials found: log in (e.g. `aws sso login`), pass --profile, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into()
            }
            SdkError::DispatchFailure(_) => "could not reach AWS: check the network, --region and AWS_ENDPOINT_URL".into(),
            SdkError::TimeoutError(_) => "AWS did not answer in time: check the network and retry".into(),
            _ => "retry with -vv to see the request".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::head_bucket::HeadBucketError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(status: u16, code: Option<&str>) -> SdkError<HeadBucketError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(c) = code {
            meta = meta.code(c).message("from the body");
        }
        SdkError::service_error(
            HeadBucketError::generic(meta.build()),
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()),
        )
    }

    /// Regression (issue 9): a 403 to a HEAD request has no body, so the CLI
    /// printed "no message" and no next step.
    #[test]
    fn a_bodiless_403_reads_as_access_denied_with_the_next_step() {
        let Error::Aws { message, next, .. } =
            convert("s3:HeadBucket", service_error(403, None), Some("bkt"))
        else {
            panic!("not an AWS error")
        };
        assert!(message.contains("access denied"), "{message}");
        assert!(
            next.contains("on-call role") && next.contains("bkt"),
            "{next}"
        );
    }

    /// The SDK fails a call whose credentials chain found nothing as a
    /// dispatch failure around the chain's `CredentialsNotLoaded` (the
    /// orchestrator boxes the identity error into a `ConnectorError`).
    #[test]
    fn no_credentials_is_read_from_the_error_type_not_its_text() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let failed = |source: Box<dyn StdError + Send + Sync>| {
            let err: SdkError<HeadBucketError, HttpResponse> =
                SdkError::dispatch_failure(ConnectorError::other(source, None));
            let Error::Aws { code, next, .. } = convert("s3:HeadBucket", err, Some("bkt")) else {
                panic!("not an AWS error")
            };
            assert_eq!(code, None);
            next
        };
        let none = failed(Box::new(CredentialsError::not_loaded(
            "no providers in chain",
        )));
        assert!(none.starts_with("no AWS credentials found"), "{none}");
        // Text that says "no credentials" in another error is a network failure.
        let other = failed("proxy: no credentials for the proxy".into());
        assert!(other.starts_with("could not reach AWS"), "{other}");
    }

    #[test]
    fn the_code_is_kept_as_data_and_decides_the_next_step() {
        let Error::Aws { code, next, .. } = convert(
            "ssm:SendCommand",
            service_error(400, Some("ThrottlingException")),
            None,
        ) else {
            panic!("not an AWS error")
        };
        assert_eq!(code.map(|c| c.kind()), Some(AwsKind::Throttled));
        assert!(next.starts_with("AWS is throttling"), "{next}");
        let Error::Aws { code, .. } =
            convert("s3:HeadBucket", service_error(403, None), Some("bkt"))
        else {
            panic!("not an AWS error")
        };
        assert_eq!(code.map(|c| c.kind()), Some(AwsKind::AccessDenied));
    }

    #[test]
    fn an_error_with_a_body_keeps_its_code_and_message() {
        let Error::Aws { message, .. } = convert(
            "s3:ListObjectsV2",
            service_error(403, Some("AccessDenied")),
            Some("bkt"),
        ) else {
            panic!("not an AWS error")
        };
        assert_eq!(message, "AccessDenied: from the body");
        let Error::Aws { message, .. } =
            convert("s3:HeadBucket", service_error(404, None), Some("bkt"))
        else {
            panic!("not an AWS error")
        };
        assert_eq!(message, "no message");
    }
}
