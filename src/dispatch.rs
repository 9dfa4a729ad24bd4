//! Stage 2: hosts + document parameters → SendCommand calls.
//!
//! Input: the resolved hosts and the run's `RecordParams` (including the
//! presigned POST fields). Output: the command id of each batch, and the hosts
//! whose batch could not be sent, with the cause. Batches hold at most 50 ids
//! (SendCommand's limit), share one `StartAt`, and are sent in parallel with
//! bounded concurrency; the SDK's adaptive retry absorbs throttling. This
//! stage never waits for the hosts to finish.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::aws::{Aws, SendRequest};
use crate::document::RecordParams;
use crate::targets::Host;

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
            let result = aws.send_command(&request).await;
            (index, batch, result)
        });
    }
    let mut sent = Vec::new();
    let mut not_sent = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, hosts, result) = joined.expect("dispatch task does not panic");
        match result {
            Ok(command_id) => sent.push((index, Sent { command_id, hosts })),
            Err(e) => not_sent.push((index, NotSent { hosts, error: e })),
        }
    }
    sent.sort_by_key(|(i, _)| *i);
    not_sent.sort_by_key(|(i, _)| *i);
    (
        sent.into_iter().map(|(_, s)| s).collect(),
        not_sent.into_iter().map(|(_, n)| n).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::InstanceId;

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
}
