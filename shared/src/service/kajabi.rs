//! Kajabi purchases and subscription lifecycle.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::provision::MemberProfile;
use super::runner::{Decision, Step};
use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::{
    leaves_unchanged, Email, JobId, Plan, Provider, SubscriptionState, Transition, UserId,
    Watermark,
};
use crate::email::Template;
use crate::providers::kajabi::{KajabiAction, KajabiEvent, LifecycleChange, Member};
use crate::setup_token;
use crate::store::{EmailJob, EventStatus, SubscriptionRecord, WaitingEvent};

/// A Kajabi event's email, or why it cannot be used (`whose`: member,
/// contact).
pub(crate) fn required_email(raw: Option<&str>, whose: &str) -> Result<Email, String> {
    match raw {
        None => Err(format!("missing {whose} email")),
        Some(raw) => Email::parse(raw).map_err(|e| format!("invalid {whose} email: {e}")),
    }
}

impl Services {
    pub async fn process_kajabi(
        &self,
        delivery: &Delivery,
        event: &KajabiEvent,
    ) -> Result<WebhookOutcome, ServiceError> {
        match &event.action {
            KajabiAction::Unsupported => {
                self.record_terminal(delivery, EventStatus::Ignored, None, None)
                    .await
            }
            KajabiAction::FormSubmission(form) => {
                self.kajabi_form_submission(delivery, form, event.occurred_at)
                    .await
            }
            KajabiAction::Tag(change) => self.kajabi_tag(delivery, change).await,
            KajabiAction::Contact { member, updated_at } => {
                self.kajabi_contact(delivery, member, *updated_at).await
            }
            KajabiAction::Purchase {
                member,
                offer_id,
                offer_name: _,
            } => {
                self.kajabi_purchase(delivery, member, offer_id.as_deref(), event.occurred_at)
                    .await
            }
            KajabiAction::Lifecycle {
                change,
                member,
                offer_id,
                ends_at,
            } => {
                self.kajabi_lifecycle(
                    delivery,
                    *change,
                    member,
                    offer_id.as_deref(),
                    *ends_at,
                    event.occurred_at,
                )
                .await
            }
        }
    }

    /// Why Kajabi's API does not confirm this purchase (`None`: it does).
    /// Kajabi down or throttling is transient (503, Kajabi retries); any
    /// other answer is a permanent reason, recorded `failed`.
    async fn unconfirmed_kajabi_purchase(
        &self,
        member: &Member,
        offer_id: &str,
    ) -> Result<Option<String>, ServiceError> {
        let Some(api) = &self.kajabi_api else {
            return Ok(Some(
                "KAJABI_VERIFY_PURCHASES is on but KAJABI_CLIENT_ID or its client secret is not set"
                    .into(),
            ));
        };
        let Some(customer) = member.member_id.as_deref() else {
            return Ok(Some(
                "the purchase names no Kajabi customer id, so Kajabi's API cannot confirm it"
                    .into(),
            ));
        };
        match api.membership(customer, &[offer_id]).await {
            Ok(found) if found.state == crate::domain::SubscriptionState::Active => Ok(None),
            Ok(found) => Ok(Some(format!(
                "Kajabi's API does not confirm this purchase: customer {customer} has {} for offer {offer_id}",
                if found.status == "no purchase" {
                    "no purchase".to_string()
                } else {
                    format!("a {} purchase", found.status)
                }
            ))),
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => Ok(Some(format!("purchase verification failed: {e}"))),
        }
    }

    fn member_email(member: &Member) -> Result<Email, String> {
        required_email(member.email.as_deref(), "member")
    }

    pub(crate) fn job(
        &self,
        template: Template,
        to: &Email,
        data: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> EmailJob {
        EmailJob {
            id: JobId::generate(now.timestamp_millis()),
            template,
            to: to.clone(),
            data,
            created_at: now,
        }
    }

    /// The welcome job and the hash of the token its email will carry.
    pub(crate) fn welcome_job(
        &self,
        email: &Email,
        data: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(EmailJob, String, DateTime<Utc>), ServiceError> {
        let job = self.job(Template::Welcome, email, data, now);
        let token = setup_token::derive(self.token_key()?, &job.id);
        let ttl = Duration::from_std(self.settings.setup_token_ttl).unwrap_or(Duration::hours(24));
        Ok((job, setup_token::hash(&token), now + ttl))
    }

    /// The setup-token key; a function the template does not give it fails
    /// (503, so the provider retries once the configuration is fixed).
    pub(crate) fn token_key(&self) -> Result<&crate::config::Secret, ServiceError> {
        self.settings.token_signing_key.as_ref().ok_or_else(|| {
            ServiceError::Internal(
                "TOKEN_SIGNING_KEY is not configured for this function (TOKEN_SIGNING_KEY_SECRET_ID)"
                    .into(),
            )
        })
    }

    async fn kajabi_purchase(
        &self,
        delivery: &Delivery,
        member: &Member,
        offer_id: Option<&str>,
        occurred_at: Option<DateTime<Utc>>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let event_time = occurred_at.unwrap_or(delivery.received_at);
        let email = match Self::member_email(member) {
            Ok(email) => email,
            Err(reason) => return self.fail(delivery, reason, None).await,
        };
        let Some(offer_id) = offer_id else {
            return self.fail(delivery, "missing offer id", None).await;
        };
        let Some(plan) = self.settings.plans.for_product(Provider::Kajabi, offer_id) else {
            return self
                .fail(
                    delivery,
                    format!("unknown offer: {offer_id} is not in the plans file"),
                    None,
                )
                .await;
        };

        // Kajabi's native hooks are unsigned: with verification on, a new
        // purchase grants nothing until Kajabi's API confirms it. A
        // redelivery of a recorded one is settled without asking again.
        if self.settings.kajabi_verify_purchases {
            let recorded = self.store.get_event(&delivery.key).await?;
            if !recorded.is_some_and(|e| e.status.is_final()) {
                if let Some(reason) = self.unconfirmed_kajabi_purchase(member, offer_id).await? {
                    return self.fail(delivery, reason, None).await;
                }
            }
        }

        let email = &email;
        let waiting_key = &waiting_key(email);
        self.run(delivery, |now| async move {
            let loaded = self.load_kajabi(delivery, email, waiting_key).await?;
            let completions = loaded.completions_waiting;
            let (email_record, waiting) = (loaded.email, loaded.customer_waiting);
            // Whether an earlier Kajabi purchase (or an admin's attach) has
            // already introduced this email to what waits on it.
            let mapped = loaded.customer_user;
            let introduced = mapped.is_some();
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                // A first attempt that stopped after its commit left these waiting.
                let duplicate =
                    Decision::duplicate(old).then_apply_completions(email, &completions);
                return Ok(if introduced {
                    duplicate.then_drain(Provider::Kajabi, waiting_key, &waiting)
                } else {
                    duplicate
                });
            }

            let mut metadata = BTreeMap::new();
            if let Some(partner) = &plan.partner {
                metadata.insert("partner".to_string(), partner.clone());
            }
            if let Some(id) = &member.member_id {
                metadata.insert("kajabi_member_id".to_string(), id.clone());
            }
            metadata.insert("kajabi_offer_id".to_string(), offer_id.to_string());

            let mut email_data = BTreeMap::from([
                ("email".to_string(), email.to_string()),
                ("plan_name".to_string(), plan.name.clone()),
            ]);
            if let Some(first) = &member.first_name {
                email_data.insert("first_name".to_string(), first.clone());
            }
            let mut admin_data = email_data.clone();
            if let Some(partner) = &plan.partner {
                admin_data.insert("partner".to_string(), partner.clone());
            }

            // An admin attached this email's Kajabi events to a member who has
            // another address: the purchase is theirs, and no second account is made.
            let attached = match (&email_record, &mapped) {
                (Some(record), Some(mapped)) if record.user_id != *mapped => {
                    return Ok(
                        Decision::failed(attached_elsewhere(mapped), Some(mapped.clone()))
                            .then_drain(Provider::Kajabi, waiting_key, &waiting),
                    );
                }
                (None, Some(mapped)) => Some(mapped.clone()),
                _ => None,
            };
            let account = match &attached {
                Some(user_id) => super::provision::AccountPlan {
                    user_id: user_id.clone(),
                    is_new: false,
                    welcome: None,
                },
                None => self.plan_account(email_record.as_ref(), email, email_data, now)?,
            };
            let user_id = account.user_id.clone();
            let current = if account.is_new {
                None
            } else {
                self.store
                    .get_subscription(&user_id, Provider::Kajabi, &plan.id)
                    .await?
            };
            // A purchase older than the plan's last change (a retry that lands
            // after the cancel) links the account but leaves access as it is.
            let stale = current
                .as_ref()
                .and_then(SubscriptionRecord::mark)
                .is_some_and(|mark| mark.supersedes(event_time, crate::domain::rank::ACTIVE));
            let mut jobs: Vec<EmailJob> = account.welcome_job().into_iter().collect();
            let admin_template = if account.is_new {
                Template::AdminNewSignup
            } else {
                Template::AdminExistingLinked
            };
            jobs.push(self.job(admin_template, &self.settings.admin_email, admin_data, now));
            let mut tx = self.store.tx();
            let profile = MemberProfile {
                email: email.clone(),
                first_name: member.first_name.clone(),
                last_name: member.last_name.clone(),
                provider: Provider::Kajabi,
                metadata,
            };
            if attached.is_none() {
                self.write_account(&mut tx, &account, profile, &completions, now)?;
            }
            if !introduced {
                tx.put_customer(Provider::Kajabi, waiting_key, &user_id, &waiting)?;
            }
            if !stale {
                let view = Transition::Purchase.apply(None, plan, now);
                tx.put_subscription(
                    &user_id,
                    Provider::Kajabi,
                    &plan.id,
                    &plan.id,
                    &view,
                    current.as_ref().map(|c| c.version),
                    &delivery.key,
                    (event_time, crate::domain::rank::ACTIVE),
                    now,
                    member
                        .member_id
                        .as_deref()
                        .or(current.as_ref().and_then(|c| c.provider_ref.as_deref())),
                    false,
                )?;
            }
            Ok(Decision::apply(tx, jobs, user_id)
                .with_reason(stale.then(|| {
                    "purchase recorded; the subscription changed after it, so access is unchanged"
                        .to_string()
                }))
                .then_drain(Provider::Kajabi, waiting_key, &waiting)
                .then_apply_completions(email, &completions))
        })
        .await
    }

    /// One round trip: the event record, the email's account, and the
    /// email's Kajabi waiting set (mapped once a Kajabi purchase introduced it).
    async fn load_kajabi(
        &self,
        delivery: &Delivery,
        email: &Email,
        waiting_key: &str,
    ) -> Result<crate::store::Loaded, ServiceError> {
        Ok(self
            .store
            .load_for_event(
                &delivery.key,
                Some(email),
                Some((Provider::Kajabi, waiting_key)),
            )
            .await?)
    }

    /// The plan a lifecycle event is about: its offer, or the member's only Kajabi plan.
    fn lifecycle_plan<'p>(
        &'p self,
        offer_id: Option<&str>,
        rows: &[SubscriptionRecord],
    ) -> Result<&'p Plan, String> {
        if let Some(offer_id) = offer_id {
            return self
                .settings
                .plans
                .for_product(Provider::Kajabi, offer_id)
                .ok_or_else(|| format!("unknown offer: {offer_id} is not in the plans file"));
        }
        match rows {
            [only] => self
                .settings
                .plans
                .get(&only.plan_id)
                .ok_or_else(|| format!("plan {} is no longer in the plans file", only.plan_id)),
            [] => Err("missing offer id and the member has no Kajabi subscription".into()),
            _ => Err("missing offer id and the member has several Kajabi subscriptions".into()),
        }
    }

    /// A lifecycle change from outside a webhook (an admin sync), with the same rules.
    pub(crate) async fn kajabi_lifecycle_change(
        &self,
        delivery: &Delivery,
        change: LifecycleChange,
        member: &Member,
        offer_id: Option<&str>,
        occurred_at: DateTime<Utc>,
    ) -> Result<WebhookOutcome, ServiceError> {
        self.kajabi_lifecycle(delivery, change, member, offer_id, None, Some(occurred_at))
            .await
    }

    async fn kajabi_lifecycle(
        &self,
        delivery: &Delivery,
        change: LifecycleChange,
        member: &Member,
        offer_id: Option<&str>,
        ends_at: Option<DateTime<Utc>>,
        occurred_at: Option<DateTime<Utc>>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let email = match Self::member_email(member) {
            Ok(email) => email,
            Err(reason) => return self.fail(delivery, reason, None).await,
        };
        let email = &email;
        let waiting_key = &waiting_key(email);
        // Kajabi sends no customer id before the purchase: an event for an
        // email no Kajabi purchase has introduced waits on the email's hash.
        let wait = || -> Decision {
            Step::Wait {
                provider: Provider::Kajabi,
                customer: waiting_key.clone(),
                entry: WaitingEvent::new(
                    &delivery.key,
                    Watermark::second_of(occurred_at.unwrap_or(delivery.received_at)),
                    lifecycle_rank(change),
                ),
                reason: "waiting for the member's Kajabi purchase: none seen yet for this email"
                    .into(),
                until: super::runner::Until::Mapped,
            }
            .into()
        };
        self.run(delivery, |now| async move {
            let loaded = self.load_kajabi(delivery, email, waiting_key).await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            let introduced = loaded.customer_user.clone();
            let user_id = match (loaded.email.as_ref().map(|e| &e.user_id), &introduced) {
                (Some(by_email), Some(mapped)) if by_email != mapped => {
                    return Ok(Decision::failed(
                        attached_elsewhere(mapped),
                        Some(mapped.clone()),
                    ))
                }
                (Some(user_id), _) | (None, Some(user_id)) => user_id.clone(),
                (None, None) => return Ok(wait()),
            };
            // The member's Kajabi rows, in one Query: the plan, its row, and
            // whether Kajabi has introduced them (rows from before the
            // waiting key existed count).
            let rows = self
                .store
                .subscriptions(&user_id, Some(Provider::Kajabi))
                .await?;
            if introduced.is_none() && rows.is_empty() {
                // A member of another provider, whose Kajabi purchase is still to come.
                return Ok(wait());
            }
            if change == LifecycleChange::Refunded && offer_id.is_none() {
                // Never guess which purchase a refund is about.
                return Ok(Decision::failed(
                    "refund has no offer id: which purchase it refunds is unknown",
                    Some(user_id),
                ));
            }
            let plan = match self.lifecycle_plan(offer_id, &rows) {
                Ok(plan) => plan,
                Err(reason) => return Ok(Decision::failed(reason, Some(user_id))),
            };
            let ends = match change {
                LifecycleChange::Canceled => Some(SubscriptionState::Canceled),
                LifecycleChange::Expired => Some(SubscriptionState::Expired),
                LifecycleChange::Refunded => Some(SubscriptionState::Refunded),
                LifecycleChange::Renewed => None,
            };
            let current: Option<SubscriptionRecord> =
                rows.into_iter().find(|row| row.row == plan.id);
            if current.is_none() && change != LifecycleChange::Renewed {
                return Ok(Decision::failed(
                    format!("member has no {} subscription", plan.id),
                    Some(user_id),
                ));
            }
            // Ordering: an event older than the state it would change is superseded.
            let event_time = occurred_at.unwrap_or(delivery.received_at);
            if let (Some(sent_at), Some(mark)) = (
                occurred_at,
                current.as_ref().and_then(SubscriptionRecord::mark),
            ) {
                // A refund is never outranked by time: the purchase it refunds
                // may carry only our receipt time, later than Kajabi's own.
                if change != LifecycleChange::Refunded
                    && mark.supersedes(sent_at, lifecycle_rank(change))
                {
                    return Ok(Decision::record(
                        EventStatus::Superseded,
                        None,
                        Some(user_id),
                    ));
                }
            }
            if let Some(verdict) = ends.and_then(|next| {
                leaves_unchanged(plan, current.as_ref().map(|c| c.view.state), next)
            }) {
                return Ok(Decision::unchanged(verdict, user_id));
            }
            let transition = match change {
                LifecycleChange::Canceled => Transition::Cancel { ends_at },
                LifecycleChange::Renewed => Transition::Renew,
                LifecycleChange::Expired => Transition::Expire,
                LifecycleChange::Refunded => Transition::Refund,
            };
            let view = transition.apply(current.as_ref().map(|c| &c.view), plan, now);

            let mut data = BTreeMap::from([
                ("email".to_string(), email.to_string()),
                ("plan_name".to_string(), plan.name.clone()),
            ]);
            if let Some(first) = &member.first_name {
                data.insert("first_name".to_string(), first.clone());
            }
            let mut jobs = Vec::new();
            match change {
                LifecycleChange::Canceled => {
                    let until = view
                        .access_until
                        .map(|d| d.format("%B %-d, %Y").to_string())
                        .unwrap_or_default();
                    data.insert("access_until".to_string(), until);
                    jobs.push(self.job(Template::CancelNotice, email, data, now));
                }
                LifecycleChange::Expired => {
                    jobs.push(self.job(Template::ExpiryNotice, email, data, now))
                }
                LifecycleChange::Refunded => {
                    jobs.push(self.job(Template::RefundNotice, email, data, now))
                }
                LifecycleChange::Renewed => {}
            }
            let mut tx = self.store.tx();
            tx.put_subscription(
                &user_id,
                Provider::Kajabi,
                &plan.id,
                &plan.id,
                &view,
                current.as_ref().map(|c| c.version),
                &delivery.key,
                (event_time, lifecycle_rank(change)),
                now,
                member
                    .member_id
                    .as_deref()
                    .or(current.as_ref().and_then(|c| c.provider_ref.as_deref())),
                false,
            )?;
            Ok(Decision::apply(tx, jobs, user_id))
        })
        .await
    }
}

/// The key events for a Kajabi email wait on until its first Kajabi purchase:
/// a hash, so no address sits in a key, a reason or a log.
pub(crate) fn waiting_key(email: &Email) -> String {
    format!(
        "email-sha256:{}",
        crate::signature::sha256_hex(email.as_str().as_bytes())
    )
}

/// Same-second order of Kajabi's lifecycle events, on the scale every
/// provider uses (`domain::rank`).
fn lifecycle_rank(change: LifecycleChange) -> i64 {
    use crate::domain::rank;
    match change {
        LifecycleChange::Renewed => rank::ACTIVE,
        LifecycleChange::Canceled => rank::CANCELING,
        LifecycleChange::Expired | LifecycleChange::Refunded => rank::ENDED,
    }
}

/// Why a purchase whose email belongs to one member fails when its Kajabi
/// events were attached to another.
fn attached_elsewhere(mapped: &UserId) -> String {
    format!("this email's Kajabi events were attached to member {mapped}, not to the member with this email; link them by hand")
}
