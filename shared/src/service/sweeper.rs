//! Re-enqueues email jobs still pending after the sweep delay (default 15 min):
//! the safety net for a crash or SQS error between commit and enqueue.

use chrono::Duration;

use super::{ServiceError, Services};

/// Jobs re-enqueued per run; the next run takes the rest.
pub const SWEEP_BATCH: usize = 500;

impl Services {
    pub async fn sweep_outbox(&self) -> Result<usize, ServiceError> {
        let delay =
            Duration::from_std(self.settings.outbox_sweep_after).unwrap_or(Duration::minutes(15));
        let cutoff = self.now() - delay;
        let jobs = self.store.pending_jobs_before(cutoff, SWEEP_BATCH).await?;
        if !jobs.is_empty() {
            self.outbox.enqueue(&jobs).await?;
        }
        tracing::info!(requeued = jobs.len(), "outbox swept");
        Ok(jobs.len())
    }
}
