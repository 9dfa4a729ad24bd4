//! Stage 2: hosts + document parameters → SendCommand calls.
//!
//! Input: the resolved hosts and the run's `RecordParams` (including the
//! presigned POST fields). Output: the command id of each batch, and the hosts
//! whose batch could not be sent, with the cause. Batches hold at most 50 ids
//! (SendCommand's limit), share one `StartAt`, and are sent in parallel with
//! bounded concurrency. A batch is retried only when SSM throttles it (see
//! `Aws::send_command`), never after an error SSM may have acted on. When
//! IAM denies a batch because of some of its instances (it authorises
//! SendCommand against every instance ARN in the call), those instances are
//! found and the rest are sent. This stage never waits for the hosts to finish.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::aws::{Aws, SendRequest};
use crate::document::RecordParams;
use crate::error::AwsKind;
use crate::model::Host;

/// SendCommand accepts at most 50 instance ids per call.
pub const BATCH: usize = 50;
/// Parallel SendCommand calls; SSM's default rate for SendCommand is low.
pub const PARALLEL: usize = 4;

/// One batch that SSM accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    pub command_id: String,
    pub hosts: Vec<Host>,
}

/// Hosts whose batch SSM refused.
#[derive(Debug)]
pub struct NotSent {
    pub hosts: Vec<Host>,
    pub error: crate::error::Error,
    /// SSM refused these hosts themselves (`InvalidInstanceId`): they were
    /// terminating, stopped, or their agent had stopped since the survey.
    /// Skipped, not failed: an ASG scaling in is not a fault of the run.
    pub not_valid: bool,
}

#[derive(Debug, Clone)]
pub struct DispatchPlan {
    pub document: String,
    pub params: RecordParams,
    pub delivery_timeout_s: i32,
    pub comment: String,
}

/// Splits hosts into SendCommand-sized batches, preserving order.
pub fn batches(hosts: &[Host]) -> Vec<Vec<Host>> {
    hosts.chunks(BATCH).map(<[Host]>::to_vec).collect()
}

pub async fn send(aws: &Aws, plan: &DispatchPlan, hosts: &[Host]) -> (Vec<Sent>, Vec<NotSent>) {
    let parameters: Vec<(String, String)> = plan
        .params
        .to_parameters()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let limit = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    for (index, batch) in batches(hosts).into_iter().enumerate() {
        let aws = aws.clone();
        let limit = limit.clone();
        let request = SendRequest {
            document: plan.document.clone(),
            instance_ids: batch.iter().map(|h| h.id.clone()).collect(),
            parameters: parameters.clone(),
            delivery_timeout_s: plan.delivery_timeout_s,
            comment: plan.comment.clone(),
        };
        tasks.spawn(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            (index, send_isolating(&aws, request, batch).await)
        });
    }
    let mut sent = Vec::new();
    let mut not_sent = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, results) = joined.expect("dispatch task does not panic");
        for (hosts, result) in results {
            match result {
                Ok(command_id) => sent.push((index, Sent { command_id, hosts })),
                Err(error) => {
                    let not_valid = is_not_valid(&error);
                    not_sent.push((
                        index,
                        NotSent {
                            hosts,
                            error,
                            not_valid,
                        },
                    ))
                }
            }
        }
    }
    sent.sort_by_key(|(i, _)| *i);
    not_sent.sort_by_key(|(i, _)| *i);
    (
        sent.into_iter().map(|(_, s)| s).collect(),
        not_sent.into_iter().map(|(_, n)| n).collect(),
    )
}

/// The SendCommand outcome for each part of one batch.
type Parts = Vec<(Vec<Host>, crate::error::Result<String>)>;

/// Sends one batch; when SSM refuses it because of some of its instances,
/// sends the others. IAM's AccessDenied names the first resource it
/// refused ("… on resource: arn:aws:ec2:…:instance/i-…"); SendCommand's
/// InvalidInstanceId, for an instance that is shutting down, terminated,
/// not registered or whose agent is not running (botocore's SSM model),
/// names them ("Instances [[i-…, i-…]] not in a valid state…"). Those
/// instances are set aside and the rest resent. A denial that names the
/// document concerns every instance, so the batch fails whole. A refusal
/// naming nothing known is bisected, so that one bad instance costs about
/// 2·log2(50) calls.
async fn send_isolating(aws: &Aws, request: SendRequest, batch: Vec<Host>) -> Parts {
    let mut out = Vec::new();
    let mut queue = vec![batch];
    while let Some(hosts) = queue.pop() {
        let req = SendRequest {
            instance_ids: hosts.iter().map(|h| h.id.clone()).collect(),
            ..request.clone()
        };
        let result = aws.send_command(&req).await;
        match &result {
            Err(e) if hosts.len() > 1 => match split_refused(e, &hosts) {
                Split::Whole => out.push((hosts, result)),
                Split::Named(named) => {
                    let (refused, rest): (Vec<_>, Vec<_>) = hosts
                        .into_iter()
                        .enumerate()
                        .partition(|(i, _)| named.contains(i));
                    out.push((refused.into_iter().map(|(_, h)| h).collect(), result));
                    queue.push(rest.into_iter().map(|(_, h)| h).collect());
                }
                Split::Bisect => {
                    let mut first = hosts;
                    let second = first.split_off(first.len() / 2);
                    queue.push(second);
                    queue.push(first);
                }
            },
            _ => out.push((hosts, result)),
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Split {
    /// Not a per-instance denial: the error concerns the whole batch.
    Whole,
    /// The refusal names these hosts of the batch (some, not all).
    Named(Vec<usize>),
    /// A refusal that names no host or document of the call.
    Bisect,
}

/// SendCommand's refusal of the instances themselves (`InvalidInstanceId`).
fn is_not_valid(error: &crate::error::Error) -> bool {
    error.aws_kind() == Some(AwsKind::InvalidInstanceId)
}

/// Whether `message` names `id` as a whole word (`i-12345678` is a prefix
/// of the longer ids).
fn names(message: &str, id: &str) -> bool {
    message.match_indices(id).any(|(at, _)| {
        !message[at + id.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Pure: how to split a batch after `error`. The error's code decides what
/// kind of refusal it is; its message is read only for the ids and the
/// resource it names, which no field of SSM's answer carries.
fn split_refused(error: &crate::error::Error, hosts: &[Host]) -> Split {
    let (crate::error::Error::Aws { message, .. }, Some(kind)) = (error, error.aws_kind()) else {
        return Split::Whole;
    };
    if kind == AwsKind::InvalidInstanceId {
        let named: Vec<usize> = (0..hosts.len())
            .filter(|&i| names(message, hosts[i].id.as_str()))
            .collect();
        return match named.len() {
            0 => Split::Bisect,
            n if n == hosts.len() => Split::Whole,
            _ => Split::Named(named),
        };
    }
    if kind != AwsKind::AccessDenied {
        return Split::Whole;
    }
    let resource = message
        .split_once("on resource: ")
        .map(|(_, r)| r.split_whitespace().next().unwrap_or_default());
    match resource {
        Some(arn) if arn.contains(":document/") => Split::Whole,
        Some(arn) => match hosts
            .iter()
            .position(|h| arn.ends_with(&format!("/{}", h.id)))
        {
            Some(i) => Split::Named(vec![i]),
            None => Split::Bisect,
        },
        None => Split::Bisect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsCode;
    use crate::model::InstanceId;

    #[test]
    fn batches_hold_at_most_fifty() {
        let hosts: Vec<Host> = (0..120)
            .map(|i| Host {
                id: InstanceId::parse(&format!("i-{i:017x}")).unwrap(),
                name: None,
            })
            .collect();
        let b = batches(&hosts);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 20]);
        assert_eq!(b[2][19], hosts[119]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn a_denial_is_split_by_the_resource_it_names() {
        let hosts: Vec<Host> = (0..4)
            .map(|i| Host {
                id: InstanceId::parse(&format!("i-{i:017x}")).unwrap(),
                name: None,
            })
            .collect();
        let aws_error = |code: &str, message: &str| crate::error::Error::Aws {
            call: "ssm:SendCommand",
            code: Some(AwsCode::new(code)),
            message: message.into(),
            next: String::new(),
        };
        let denied = |resource: &str| {
            aws_error(
                "AccessDeniedException",
                &format!(
                    "AccessDeniedException: User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: ssm:SendCommand on resource: {resource} because no identity-based policy allows the ssm:SendCommand action"
                ),
            )
        };
        let arn = format!("arn:aws:ec2:us-east-1:1:instance/{}", hosts[2].id);
        assert_eq!(split_refused(&denied(&arn), &hosts), Split::Named(vec![2]));
        assert_eq!(
            split_refused(
                &denied("arn:aws:ssm:us-east-1::document/AWS-RunShellScript"),
                &hosts
            ),
            Split::Whole
        );
        assert_eq!(
            split_refused(
                &aws_error("AccessDeniedException", "AccessDeniedException: no message"),
                &hosts
            ),
            Split::Bisect
        );
        assert_eq!(
            split_refused(
                &aws_error("InvalidDocument", "InvalidDocument: no such document"),
                &hosts
            ),
            Split::Whole
        );
    }

    #[test]
    fn invalid_instances_are_set_aside_by_name() {
        let hosts: Vec<Host> = ["i-12345678", "i-12345678abcdef012", "i-0000000000000000a"]
            .iter()
            .map(|id| Host {
                id: InstanceId::parse(id).unwrap(),
                name: None,
            })
            .collect();
        let not_valid = |ids: &str| crate::error::Error::Aws {
            call: "ssm:SendCommand",
            code: Some(AwsCode::new("InvalidInstanceId")),
            message: format!(
                "InvalidInstanceId: Instances [[{ids}]] not in a valid state for account 123456789012"
            ),
            next: String::new(),
        };
        // The short id is a prefix of the second: only the named one goes.
        assert_eq!(
            split_refused(&not_valid("i-12345678abcdef012"), &hosts),
            Split::Named(vec![1])
        );
        assert_eq!(
            split_refused(&not_valid("i-12345678, i-0000000000000000a"), &hosts),
            Split::Named(vec![0, 2])
        );
        assert_eq!(
            split_refused(
                &not_valid("i-12345678, i-12345678abcdef012, i-0000000000000000a"),
                &hosts
            ),
            Split::Whole
        );
        assert_eq!(split_refused(&not_valid(""), &hosts), Split::Bisect);
        assert!(is_not_valid(&not_valid("i-12345678")));
    }

    /// The code decides whether SSM refused the instances; the text only
    /// says which. A message that merely looks like the refusal is not one.
    #[test]
    fn the_set_aside_is_decided_by_the_code_not_the_text() {
        let hosts: Vec<Host> = ["i-12345678", "i-0000000000000000a"]
            .iter()
            .map(|id| Host {
                id: InstanceId::parse(id).unwrap(),
                name: None,
            })
            .collect();
        let error = |code: Option<&str>, message: &str| crate::error::Error::Aws {
            call: "ssm:SendCommand",
            code: code.map(AwsCode::new),
            message: message.into(),
            next: String::new(),
        };
        let looks_refused = "InvalidInstanceId: Instances [[i-12345678]] not in a valid state";
        for code in [None, Some("InternalServerError")] {
            let e = error(code, looks_refused);
            assert!(!is_not_valid(&e), "{code:?}");
            assert_eq!(split_refused(&e, &hosts), Split::Whole, "{code:?}");
        }
        // The code alone, whatever the message's first word.
        let e = error(
            Some("InvalidInstanceId"),
            "Instances [[i-12345678]] not in a valid state",
        );
        assert!(is_not_valid(&e));
        assert_eq!(split_refused(&e, &hosts), Split::Named(vec![0]));
        // An access denial is one by its code, not by its message's words.
        let resource = "on resource: arn:aws:ec2:us-east-1:1:instance/i-12345678";
        assert_eq!(
            split_refused(&error(Some("ThrottlingException"), resource), &hosts),
            Split::Whole
        );
        assert_eq!(
            split_refused(&error(Some("AccessDeniedException"), resource), &hosts),
            Split::Named(vec![0])
        );
    }
}
