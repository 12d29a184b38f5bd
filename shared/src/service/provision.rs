//! Creating or linking a member's account from a provider event: shared by
//! every provider, so "new email creates, existing email links, not-yet-activated
//! gets a setup link" holds the same everywhere.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{ServiceError, Services};
use crate::domain::{Email, Provider, UserId};
use crate::store::{EmailJob, EmailRecord, NewUser, StoreError, Tx, Waiting};

/// A member as a provider event describes them.
pub(crate) struct MemberProfile {
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub provider: Provider,
    /// Merged into the user's metadata, whether created or linked.
    pub metadata: BTreeMap<String, String>,
}

/// The account an event is about, decided before the transaction is built.
pub(crate) struct AccountPlan {
    pub user_id: UserId,
    pub is_new: bool,
    /// For an account not activated yet: the welcome job, its token hash and expiry.
    pub welcome: Option<(EmailJob, String, DateTime<Utc>)>,
}

impl AccountPlan {
    pub fn welcome_job(&self) -> Option<EmailJob> {
        self.welcome.as_ref().map(|(job, _, _)| job.clone())
    }
}

impl Services {
    /// New email: a new user. Existing: that user. Either way a setup link while
    /// the account is not activated (a fresh one replaces older links).
    pub(crate) fn plan_account(
        &self,
        existing: Option<&EmailRecord>,
        email: &Email,
        welcome_data: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<AccountPlan, ServiceError> {
        let (user_id, is_new, needs_welcome) = match existing {
            None => (UserId::generate(now.timestamp_millis()), true, true),
            Some(record) => (record.user_id.clone(), false, !record.is_active),
        };
        let welcome = if needs_welcome {
            Some(self.welcome_job(email, welcome_data, now)?)
        } else {
            None
        };
        Ok(AccountPlan {
            user_id,
            is_new,
            welcome,
        })
    }

    /// Adds the account's writes to `tx`: the user (only if the email is still
    /// free) or the link (only if it still maps to this user), and the token
    /// hash. A new account also checks that no course completion began
    /// waiting on its email since `completions` was read: the caller applies
    /// those after its commit, and a later one would be missed.
    pub(crate) fn write_account(
        &self,
        tx: &mut Tx,
        account: &AccountPlan,
        mut member: MemberProfile,
        completions: &Waiting,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if account.is_new {
            tx.check_waiting_unchanged(
                Provider::Kajabi,
                &crate::store::completion_customer(&member.email),
                completions,
            )?;
            member
                .metadata
                .insert("signup_date".to_string(), crate::store::timestamp(now));
            tx.create_user(
                &NewUser {
                    id: account.user_id.clone(),
                    email: member.email,
                    first_name: member.first_name,
                    last_name: member.last_name,
                    auth_provider: member.provider,
                    metadata: member.metadata,
                    awaiting_payment: false,
                },
                now,
            )?;
        } else {
            tx.link_user(&member.email, &account.user_id, &member.metadata, now)?;
        }
        if let Some((job, hash, expires)) = &account.welcome {
            tx.put_setup_token(&account.user_id, hash, *expires, &job.id)?;
        }
        Ok(())
    }
}
