//! The email outbox: jobs, their claim with a lease, the sent mark, parking and release.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailJob {
    pub id: JobId,
    pub template: Template,
    pub to: Email,
    pub data: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Sending,
    Sent,
    /// Failed permanently too often: off the pending index, kept with its reason.
    Parked,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Sending => "sending",
            JobStatus::Sent => "sent",
            JobStatus::Parked => "parked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    pub job: EmailJob,
    pub status: JobStatus,
    /// Claims so far, this one included.
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl StoredJob {
    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("job item: {what}"));
        let to = Email::parse(get_s(item, "to").unwrap_or_default()).map_err(|_| corrupt("to"))?;
        Ok(Self {
            job: EmailJob {
                id: JobId::from_stored(get_s(item, "job_id").ok_or_else(|| corrupt("job_id"))?),
                template: get_s(item, "template")
                    .and_then(Template::parse)
                    .ok_or_else(|| corrupt("template"))?,
                to,
                data: get_map_s(item, "data"),
                created_at: get_ts(item, "created_at").ok_or_else(|| corrupt("created_at"))?,
            },
            status: match get_s(item, "status") {
                Some("pending") => JobStatus::Pending,
                Some("sending") => JobStatus::Sending,
                Some("sent") => JobStatus::Sent,
                Some("parked") => JobStatus::Parked,
                _ => return Err(corrupt("status")),
            },
            attempts: get_n(item, "attempts")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            last_error: get_s(item, "last_error").map(str::to_string),
        })
    }
}

/// The outcome of claiming a job for sending.
#[derive(Debug)]
pub enum Claim {
    Claimed(StoredJob),
    AlreadySent,
    /// Another sender holds an unexpired lease.
    InFlight,
    Parked,
    NotFound,
}

impl Tx {
    pub fn put_job(&mut self, job: &EmailJob) -> Result<(), StoreError> {
        let mut item = key(keys::job(&job.id), keys::JOB);
        item.insert("kind".into(), s("OUTBOX"));
        item.insert("job_id".into(), s(job.id.as_str()));
        item.insert("template".into(), s(job.template.as_str()));
        item.insert("to".into(), s(job.to.as_str()));
        item.insert("data".into(), map_s(&job.data));
        item.insert("status".into(), s("pending"));
        item.insert("created_at".into(), s(ts(job.created_at)));
        item.insert("gsi1pk".into(), s(OUTBOX_PENDING));
        item.insert(
            "gsi1sk".into(),
            s(format!("{}#{}", ts(job.created_at), job.id)),
        );
        self.push_put(item, Some(("attribute_not_exists(pk)", None, None)))
    }
}

impl Store {
    pub async fn get_job(&self, job: &JobId) -> Result<Option<StoredJob>, StoreError> {
        self.get(keys::job(job), keys::JOB)
            .await?
            .map(|item| StoredJob::from_item(&item))
            .transpose()
    }

    /// Claims a job for sending with a lease, so two deliveries of one SQS
    /// message cannot both send it.
    pub async fn claim_job(
        &self,
        job: &JobId,
        claim_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::job(job), keys::JOB)))
            .update_expression("SET #status = :sending, lease_until = :lease, claim_id = :claim, attempts = if_not_exists(attempts, :zero) + :one")
            .condition_expression("attribute_exists(pk) AND (#status = :pending OR (#status = :sending AND lease_until < :now))")
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(values(vec![
                (":sending", s("sending")),
                (":pending", s("pending")),
                (":lease", n(lease_until.timestamp_millis())),
                (":now", n(now.timestamp_millis())),
                (":claim", s(claim_id)),
                (":zero", n(0)),
                (":one", n(1)),
            ]))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Claim::Claimed(StoredJob::from_item(&item)?)),
                None => Err(StoreError::Corrupt("claim returned no attributes".into())),
            },
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                    Ok(match e.item().map(|item| get_s(item, "status").map(str::to_string)) {
                        None => Claim::NotFound,
                        Some(Some(status)) if status == "sent" => Claim::AlreadySent,
                        Some(Some(status)) if status == "parked" => Claim::Parked,
                        Some(_) => Claim::InFlight,
                    })
                }
                other => Err(request_error(other)),
            },
            Err(other) => Err(request_error(other)),
        }
    }

    /// Marks a job sent and takes it off the pending index: under `claim_id`
    /// when the sender holds the claim, or under any claim when SES's message
    /// id proves it was sent (the confirmation after a failed mark).
    pub async fn mark_job_sent(
        &self,
        job: &JobId,
        claim_id: Option<&str>,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut vals = vec![
            (":sent", s("sent")),
            (":now", s(ts(now))),
            (":mid", s(message_id)),
        ];
        let condition = match claim_id {
            Some(claim) => {
                vals.push((":sending", s("sending")));
                vals.push((":claim", s(claim)));
                "claim_id = :claim AND #status = :sending"
            }
            None => "attribute_exists(pk) AND #status <> :sent",
        };
        self.update_job(
            job,
            "SET #status = :sent, sent_at = :now, ses_message_id = :mid REMOVE gsi1pk, gsi1sk, lease_until, claim_id",
            condition,
            vals,
        )
        .await
    }

    /// Parks a claimed job that cannot succeed: off the pending index (so the
    /// sweeper never re-enqueues it), kept with its reason for the admin view.
    /// `false` when the claim was no longer this sender's.
    pub async fn park_job(
        &self,
        job: &JobId,
        claim_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_job(
            job,
            "SET #status = :parked, last_error = :err, parked_at = :now REMOVE gsi1pk, gsi1sk, lease_until, claim_id",
            "claim_id = :claim AND #status = :sending",
            vec![
                (":parked", s("parked")),
                (":sending", s("sending")),
                (":err", s(reason)),
                (":now", s(ts(now))),
                (":claim", s(claim_id)),
            ],
        )
        .await
    }

    /// One conditional update of a job item: `false` when the condition did
    /// not hold (another delivery holds the claim, or the job moved on).
    async fn update_job(
        &self,
        job: &JobId,
        update: &str,
        condition: &str,
        vals: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::job(job), keys::JOB)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(values(vals))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(other) => Err(request_error(other)),
        }
    }

    /// Gives a claimed job back after a failed send, so a retry can claim it at once.
    /// Its place on the pending index moves to `now`: the sweeper comes back
    /// to it a full sweep delay after this failure, and jobs that keep failing
    /// never crowd older ones out of a sweep.
    pub async fn release_job(
        &self,
        job: &JobId,
        claim_id: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_job(
            job,
            "SET #status = :pending, last_error = :err, gsi1sk = :due REMOVE lease_until, claim_id",
            "claim_id = :claim AND #status = :sending",
            vec![
                (":pending", s("pending")),
                (":sending", s("sending")),
                (":err", s(error)),
                (":due", s(format!("{}#{}", ts(now), job))),
                (":claim", s(claim_id)),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Pending job ids created before `cutoff`, oldest first, at most `limit`.
    pub async fn pending_jobs_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError> {
        let keys = self
            .index_keys_before("gsi1", OUTBOX_PENDING, ts(cutoff), false, limit)
            .await?;
        Ok(keys
            .iter()
            .filter_map(|(pk, _)| pk.strip_prefix("OUTBOX#"))
            .map(JobId::from_stored)
            .collect())
    }
}
