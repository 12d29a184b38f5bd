//! What AWS does around the functions: the SQS event source for the email
//! sender and the sweeper's schedule.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use email_sender::{EmailSender, SqsEvent, SqsRecord};
use tokio::sync::watch;

/// Receives up to ten messages, runs the sender on them as one batch, and
/// deletes the ones it did not report as failed. Returns how many it received.
pub async fn pump_once(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    sender: &EmailSender,
    wait_secs: i32,
) -> Result<usize, String> {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let event = SqsEvent {
        records: messages
            .iter()
            .map(|m| SqsRecord {
                message_id: m.message_id.clone().unwrap_or_default(),
                body: m.body.clone().unwrap_or_default(),
            })
            .collect(),
    };
    let response = sender.handle(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed.contains(&m.message_id.as_deref().unwrap_or_default()))
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .receipt_handle(m.receipt_handle.clone()?)
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(messages.len())
}

pub async fn run_email_pump(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    sender: Arc<EmailSender>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            result = pump_once(&sqs, &queue_url, &sender, 1) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "email pump: SQS receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// A scheduled function, as the local scheduler calls it.
pub type ScheduledJob = Arc<
    dyn Fn() -> gatehouse::lambda::BoxFuture<
            'static,
            Result<serde_json::Value, gatehouse::service::ServiceError>,
        > + Send
        + Sync,
>;

pub async fn run_schedule(
    name: &'static str,
    every: Duration,
    job: ScheduledJob,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {
                if let Err(e) = job().await {
                    tracing::warn!(schedule = name, error = %e, "scheduled run failed");
                }
            }
        }
    }
}
