//! SDK errors → flamefire `Error`s, in one place.
//!
//! Each conversion keeps the service's error code and message and adds the
//! next step an on-call engineer can take at 3 a.m.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

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
pub fn code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Every service's "slow down" code: SSM's ThrottlingException, STS's
/// Throttling, EC2's RequestLimitExceeded, S3's SlowDown (503).
pub const THROTTLING: [&str; 5] = [
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyUpdates",
    "SlowDown",
];

pub fn is_throttling(code: Option<&str>) -> bool {
    code.is_some_and(|c| THROTTLING.contains(&c))
}

pub fn is_access_denied(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "AuthorizationError"
                | "Forbidden"
        )
    )
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
    let code = code(&err)
        .map(str::to_string)
        .or_else(|| bodiless_403.then(|| "AccessDenied".to_string()));
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
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => chain(&err),
        _ => chain(&err),
    };
    let next = next_step(call, code.as_deref(), &err, &chain(&err), resource);
    Error::Aws {
        call,
        message,
        next,
    }
}

fn next_step<E, R>(
    call: &str,
    code: Option<&str>,
    err: &SdkError<E, R>,
    chained: &str,
    resource: Option<&str>,
) -> String {
    let what = resource.unwrap_or("the resource");
    match code {
        c if is_access_denied(c) => format!(
            "your credentials may not call {call} on {what}: assume the flamefire on-call role (terraform/ output `role_arn`), or check --profile"
        ),
        Some(
            "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AuthFailure",
        ) => "your AWS credentials are invalid or expired: log in again (e.g. `aws sso login`) or check --profile".into(),
        Some("NoSuchBucket") => format!(
            "bucket {what} does not exist in this account/region: check --bucket (or FLAMEFIRE_BUCKET) and --region, or create it with terraform/"
        ),
        Some("InvalidDocument") => format!(
            "document {what} is not deployed in this region: run `terraform apply` in terraform/ or `flamefire document deploy`, or pass --document"
        ),
        Some("InvalidParameters") => "the document in AWS does not accept these parameters: it may be older than this flamefire; redeploy it (`flamefire document deploy`)".into(),
        c if is_throttling(c) => "AWS is throttling this account: wait a minute and retry, or target fewer hosts".into(),
        _ => match err {
            SdkError::DispatchFailure(_) if chained.contains("no credentials") => {
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
