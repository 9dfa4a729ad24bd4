//! SSM: which instances are managed, SendCommand, invocation statuses,
//! CancelCommand, and the document itself.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_ssm::types::{
    CommandFilter, CommandFilterKey, DocumentFormat, DocumentType, InstanceInformationStringFilter,
};

use super::{Aws, errors};
use crate::error::{AwsKind, Error, Result};
use crate::model::{InstanceId, PingStatus, Platform};

/// What SSM knows about a managed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedInstance {
    pub id: InstanceId,
    pub ping_status: PingStatus,
    pub platform_type: Platform,
    pub agent_version: Option<String>,
}

/// One SendCommand call (≤ 50 instances).
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub document: String,
    pub instance_ids: Vec<InstanceId>,
    pub parameters: Vec<(String, String)>,
    /// Seconds SSM keeps trying to deliver to an unreachable instance.
    pub delivery_timeout_s: i32,
    pub comment: String,
}

/// One row of ListCommandInvocations, as SSM reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationReport {
    pub instance_id: String,
    pub status: String,
    pub status_details: String,
    pub response_code: Option<i32>,
    /// The plugin's output: stdout then stderr, truncated by SSM to ~2,500 chars.
    pub output: String,
    /// The agent's document-level message (`TraceOutput`), set when it
    /// refused the document before running a step.
    pub trace_output: String,
}

/// A command as a whole, from ListCommands: its status and its counts of
/// invocations, which say how many hosts ended without naming them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandReport {
    pub command_id: String,
    /// `Pending`, `InProgress`, `Success`, `Cancelled`, `Failed`, `TimedOut`, `Cancelling`.
    pub status: String,
    pub status_details: String,
    /// Invocations with a final status (`CompletedCount`).
    pub completed: u32,
    /// Invocations that failed, timed out in execution or in delivery
    /// (`ErrorCount` + `DeliveryTimedOutCount`).
    pub errors: u32,
}

/// The deployed document: content and default version.
#[derive(Debug, Clone)]
pub struct DocumentInfo {
    pub content: String,
    pub default_version: Option<String>,
}

/// SendCommand attempts when SSM throttles (1 s, 2 s, 4 s, 8 s between them).
const SEND_ATTEMPTS: u32 = 5;

/// Why a DescribeInstanceInformation call failed: an id SSM does not know, or anything else.
enum Refused {
    InvalidInstanceId,
    Other(Error),
}

/// SSM filter values per call; the API allows at most 50 instance ids.
const IDS_PER_FILTER: usize = 50;

impl Aws {
    /// DescribeInstanceInformation for these ids (absent = not managed).
    ///
    /// SSM refuses the whole call with `InvalidInstanceId` when one id "isn't
    /// valid or [is] a node that you don't own" (API reference), e.g. an
    /// `mi-` id of another account or a deregistered on-premises node: one
    /// such id would hide the other 49 of its call. The refused group is
    /// halved until the ids at fault stand alone; they are not managed.
    pub async fn managed_instances(&self, ids: &[InstanceId]) -> Result<Vec<ManagedInstance>> {
        let mut out = Vec::new();
        let mut todo: Vec<&[InstanceId]> = ids.chunks(IDS_PER_FILTER).rev().collect();
        while let Some(group) = todo.pop() {
            match self.describe_instances_info(group).await {
                Ok(found) => out.extend(found),
                Err(Refused::InvalidInstanceId) if group.len() > 1 => {
                    let (a, b) = group.split_at(group.len() / 2);
                    todo.push(b);
                    todo.push(a);
                }
                Err(Refused::InvalidInstanceId) => {
                    tracing::debug!("{}: not a managed node of this account", group[0]);
                }
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn describe_instances_info(
        &self,
        ids: &[InstanceId],
    ) -> std::result::Result<Vec<ManagedInstance>, Refused> {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .set_values(Some(ids.iter().map(|i| i.to_string()).collect()))
            .build()
            .expect("key and values are set");
        let mut pages = self
            .ssm
            .describe_instance_information()
            .filters(filter)
            .max_results(50)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_instance_id())
                {
                    Refused::InvalidInstanceId
                } else {
                    Refused::Other(errors::convert("ssm:DescribeInstanceInformation", e, None))
                }
            })?;
            for info in page.instance_information_list() {
                let Some(id) = info.instance_id().and_then(InstanceId::parse) else {
                    continue;
                };
                out.push(ManagedInstance {
                    id,
                    ping_status: PingStatus::from_aws(
                        info.ping_status().map_or("Unknown", |p| p.as_str()),
                    ),
                    platform_type: Platform::from_aws(
                        info.platform_type().map_or("Unknown", |p| p.as_str()),
                    ),
                    agent_version: info.agent_version().map(str::to_string),
                });
            }
        }
        Ok(out)
    }

    /// SendCommand; returns the command id.
    ///
    /// SendCommand has no idempotency token
    /// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html),
    /// so a retry after a timeout or a 5xx, which SSM may have carried out,
    /// would run the recording twice on every host of the batch. The SDK's
    /// retries are therefore off for this call, and only a throttling error,
    /// which SSM answers before doing anything, is retried here.
    pub async fn send_command(&self, req: &SendRequest) -> Result<String> {
        let parameters: HashMap<String, Vec<String>> = req
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), vec![v.clone()]))
            .collect();
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            let result = self
                .ssm
                .send_command()
                .document_name(&req.document)
                .set_instance_ids(Some(
                    req.instance_ids.iter().map(|i| i.to_string()).collect(),
                ))
                .set_parameters(Some(parameters.clone()))
                .max_concurrency(req.instance_ids.len().to_string())
                .max_errors("100%")
                .timeout_seconds(req.delivery_timeout_s)
                .comment(&req.comment)
                .customize()
                .config_override(
                    aws_sdk_ssm::config::Builder::default()
                        .retry_config(aws_config::retry::RetryConfig::disabled()),
                )
                .send()
                .await;
            match result {
                Ok(out) => break out,
                Err(e)
                    if errors::kind(&e) == Some(AwsKind::Throttled) && attempt < SEND_ATTEMPTS =>
                {
                    // Full jitter would need a random source; the batches
                    // already start at different times, so plain doubling.
                    let wait = Duration::from_millis(500 << attempt);
                    tracing::debug!("SendCommand throttled; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    return Err(errors::convert("ssm:SendCommand", e, Some(&req.document)));
                }
            }
        };
        out.command()
            .and_then(|c| c.command_id())
            .map(str::to_string)
            .ok_or_else(|| Error::Aws {
                call: "ssm:SendCommand",
                code: None,
                message: "the response has no command id".into(),
                next: "retry with -vv".into(),
            })
    }

    /// Every invocation of a command, paginated, with plugin output.
    pub async fn list_invocations(&self, command_id: &str) -> Result<Vec<InvocationReport>> {
        let mut pages = self
            .ssm
            .list_command_invocations()
            .command_id(command_id)
            .details(true)
            .max_results(50)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                // Right after SendCommand the command may not be visible yet.
                Err(e) if errors::kind(&e) == Some(AwsKind::InvalidCommandId) => return Ok(out),
                Err(e) => {
                    return Err(errors::convert("ssm:ListCommandInvocations", e, None));
                }
            };
            for inv in page.command_invocations() {
                let plugin = inv.command_plugins().first();
                out.push(InvocationReport {
                    instance_id: inv.instance_id().unwrap_or_default().to_string(),
                    status: inv
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "Pending".into()),
                    status_details: inv.status_details().unwrap_or_default().to_string(),
                    response_code: plugin.map(|p| p.response_code()),
                    output: plugin
                        .and_then(|p| p.output())
                        .unwrap_or_default()
                        .to_string(),
                    trace_output: inv.trace_output().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Every command of `document` requested since `after`, with its
    /// status and counts: one call per 50 commands (ListCommands' page
    /// size), however many hosts each has. Others' commands of the same
    /// document come too; callers keep their own.
    /// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommands.html>
    pub async fn commands_since(
        &self,
        document: &str,
        after: SystemTime,
    ) -> Result<Vec<CommandReport>> {
        // Whole seconds, as the API documents the value (2021-07-07T00:00:00Z).
        let secs = after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let after = aws_smithy_types::DateTime::from_secs(secs)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .expect("a time in seconds formats as ISO-8601");
        let mut filters = vec![
            CommandFilter::builder()
                .key(CommandFilterKey::InvokedAfter)
                .value(after)
                .build()
                .expect("key and value are set"),
        ];
        // The filter takes a name; a shared document's ARN is matched by id.
        if !document.starts_with("arn:") {
            filters.push(
                CommandFilter::builder()
                    .key(CommandFilterKey::DocumentName)
                    .value(document)
                    .build()
                    .expect("key and value are set"),
            );
        }
        let mut pages = self
            .ssm
            .list_commands()
            .set_filters(Some(filters))
            .max_results(50)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| errors::convert("ssm:ListCommands", e, None))?;
            for c in page.commands() {
                out.push(CommandReport {
                    command_id: c.command_id().unwrap_or_default().to_string(),
                    status: c
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "Pending".into()),
                    status_details: c.status_details().unwrap_or_default().to_string(),
                    completed: c.completed_count().max(0) as u32,
                    errors: (c.error_count().max(0) + c.delivery_timed_out_count().max(0)) as u32,
                });
            }
        }
        Ok(out)
    }

    /// CancelCommand for these instances of a command.
    pub async fn cancel_command(&self, command_id: &str, ids: &[InstanceId]) -> Result<()> {
        self.ssm
            .cancel_command()
            .command_id(command_id)
            .set_instance_ids(Some(ids.iter().map(|i| i.to_string()).collect()))
            .send()
            .await
            .map_err(|e| errors::convert("ssm:CancelCommand", e, None))?;
        Ok(())
    }

    /// GetDocument (default version); `None` when it does not exist.
    pub async fn get_document(&self, name: &str) -> Result<Option<DocumentInfo>> {
        // Ask for YAML, the format the document is written in; SSM's default is JSON.
        match self
            .ssm
            .get_document()
            .name(name)
            .document_format(DocumentFormat::Yaml)
            .send()
            .await
        {
            Ok(out) => Ok(Some(DocumentInfo {
                content: out.content().unwrap_or_default().to_string(),
                default_version: out.document_version().map(str::to_string),
            })),
            Err(e) if errors::kind(&e) == Some(AwsKind::InvalidDocument) => Ok(None),
            Err(e) => Err(errors::convert("ssm:GetDocument", e, Some(name))),
        }
    }

    /// Creates the document, or adds a version and makes it the default.
    /// Returns the default version and whether anything changed.
    pub async fn deploy_document(&self, name: &str, yaml: &str) -> Result<(String, bool)> {
        let current = self.get_document(name).await?;
        if let Some(doc) = &current {
            if crate::document::same_content(&doc.content, yaml) {
                let version = doc.default_version.clone().unwrap_or_else(|| "?".into());
                return Ok((version, false));
            }
        }
        if current.is_none() {
            let out = self
                .ssm
                .create_document()
                .name(name)
                .content(yaml)
                .document_type(DocumentType::Command)
                .document_format(DocumentFormat::Yaml)
                .send()
                .await
                .map_err(|e| errors::convert("ssm:CreateDocument", e, Some(name)))?;
            let version = out
                .document_description()
                .and_then(|d| d.document_version())
                .unwrap_or("1")
                .to_string();
            return Ok((version, true));
        }
        let out = self
            .ssm
            .update_document()
            .name(name)
            .content(yaml)
            .document_format(DocumentFormat::Yaml)
            .document_version("$LATEST")
            .send()
            .await
            .map_err(|e| {
                // The embedded content equals an older version: SSM refuses
                // a duplicate, and only the default needs to move.
                if errors::kind(&e) == Some(AwsKind::DuplicateDocumentContent) {
                    return Error::Aws {
                        call: "ssm:UpdateDocument",
                        code: errors::code(&e),
                        message: format!("{name} already has a version with this content, but it is not the default"),
                        next: format!("make that version the default: `aws ssm list-document-versions --name {name}`, then `aws ssm update-document-default-version --name {name} --document-version N`"),
                    };
                }
                errors::convert("ssm:UpdateDocument", e, Some(name))
            })?;
        let version = out
            .document_description()
            .and_then(|d| d.document_version())
            .unwrap_or("$LATEST")
            .to_string();
        self.ssm
            .update_document_default_version()
            .name(name)
            .document_version(&version)
            .send()
            .await
            .map_err(|e| errors::convert("ssm:UpdateDocumentDefaultVersion", e, Some(name)))?;
        Ok((version, true))
    }
}
