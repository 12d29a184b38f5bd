//! Accounts: the email mapping, the profile, and the setup token.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub user_id: UserId,
    pub is_active: bool,
    /// Made by a visitor's checkout, and no payment has been applied to it
    /// yet: no setup link is sent for it until one is.
    pub awaiting_payment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub auth_provider: Provider,
    pub metadata: BTreeMap<String, String>,
    /// A visitor's checkout made it: see `EmailRecord::awaiting_payment`.
    pub awaiting_payment: bool,
}

impl Tx {
    /// The email item and the profile, each only if absent: two events for one
    /// new email cannot create two users.
    /// Holds only while no account has `email`: what waits for such an
    /// account is not left waiting after one appeared.
    pub fn check_no_account(&mut self, email: &Email) -> Result<(), StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::email(email), keys::EMAIL)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().condition_check(check).build());
        Ok(())
    }

    pub fn create_user(&mut self, user: &NewUser, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut email_item = key(keys::email(&user.email), keys::EMAIL);
        email_item.insert("kind".into(), s("EMAIL"));
        email_item.insert("user_id".into(), s(user.id.as_str()));
        email_item.insert("is_active".into(), bool(false));
        if user.awaiting_payment {
            email_item.insert("awaiting_payment".into(), bool(true));
        }
        self.push_put(email_item, Some(("attribute_not_exists(pk)", None, None)))?;

        let mut profile = key(keys::user(&user.id), keys::PROFILE);
        profile.insert("kind".into(), s("USER"));
        profile.insert("user_id".into(), s(user.id.as_str()));
        profile.insert("email".into(), s(user.email.as_str()));
        profile.insert("is_active".into(), bool(false));
        profile.insert("auth_provider".into(), s(user.auth_provider.as_str()));
        profile.insert("metadata".into(), map_s(&user.metadata));
        profile.insert("created_at".into(), s(ts(now)));
        profile.insert("updated_at".into(), s(ts(now)));
        // The admin user listing: every profile, sorted by email.
        profile.insert("gsi3pk".into(), s(admin::USERS_PARTITION));
        profile.insert("gsi3sk".into(), s(user.email.as_str()));
        if let Some(first) = &user.first_name {
            profile.insert("first_name".into(), s(first.clone()));
        }
        if let Some(last) = &user.last_name {
            profile.insert("last_name".into(), s(last.clone()));
        }
        self.push_put(profile, Some(("attribute_not_exists(pk)", None, None)))
    }

    /// Links an existing user: checks the email still maps to it and merges
    /// metadata. The password and `auth_provider` are left as they are.
    pub fn link_user(
        &mut self,
        email: &Email,
        user_id: &UserId,
        metadata: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // The email still maps to this user; a payment applied to it ends
        // any wait for a first payment.
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::email(email), keys::EMAIL)))
                .update_expression("REMOVE awaiting_payment")
                .condition_expression("user_id = :uid")
                .expression_attribute_values(":uid", s(user_id.as_str())),
        )?;

        let mut expr = String::from("SET updated_at = :now, metadata.signup_date = if_not_exists(metadata.signup_date, :now)");
        let mut names = std::collections::HashMap::new();
        let mut vals = Item::from([(":now".to_string(), s(ts(now)))]);
        for (i, (k, v)) in metadata
            .iter()
            .filter(|(k, _)| k.as_str() != "signup_date")
            .enumerate()
        {
            expr.push_str(&format!(", metadata.#m{i} = :m{i}"));
            names.insert(format!("#m{i}"), k.clone());
            vals.insert(format!(":m{i}"), s(v.clone()));
        }
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user_id), keys::PROFILE)))
                .update_expression(expr)
                .condition_expression("attribute_exists(pk)")
                .set_expression_attribute_names(if names.is_empty() { None } else { Some(names) })
                .set_expression_attribute_values(Some(vals)),
        )
    }

    /// Replaces the user's setup token (so older links stop working).
    pub fn put_setup_token(
        &mut self,
        user_id: &UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        job: &JobId,
    ) -> Result<(), StoreError> {
        let mut item = key(keys::user(user_id), keys::SETUP_TOKEN);
        item.insert("kind".into(), s("TOKEN"));
        item.insert("token_hash".into(), s(token_hash));
        item.insert("expires_at".into(), s(ts(expires_at)));
        item.insert("job_id".into(), s(job.as_str()));
        // TTL only tidies up: expiry is enforced by comparing expires_at.
        item.insert("ttl".into(), n(expires_at.timestamp() + 86_400));
        self.push_put(item, None)
    }

    /// Activates the account: the token must still be the one checked, and is consumed.
    pub fn activate_user(
        &mut self,
        user_id: &UserId,
        email: &Email,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::SETUP_TOKEN)))
            .condition_expression("token_hash = :h")
            .expression_attribute_values(":h", s(token_hash))
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user_id), keys::PROFILE)))
                .update_expression("SET password_hash = :p, is_active = :t, activated_at = if_not_exists(activated_at, :now), updated_at = :now")
                .condition_expression("attribute_exists(pk)")
                .set_expression_attribute_values(values(vec![
                    (":p", s(password_hash)),
                    (":t", bool(true)),
                    (":now", s(ts(now))),
                ])),
        )?;
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::email(email), keys::EMAIL)))
                .update_expression("SET is_active = :t")
                .condition_expression("user_id = :uid")
                .set_expression_attribute_values(values(vec![
                    (":t", bool(true)),
                    (":uid", s(user_id.as_str())),
                ])),
        )
    }
}

impl Store {
    pub async fn get_email(&self, email: &Email) -> Result<Option<EmailRecord>, StoreError> {
        Ok(self
            .get(keys::email(email), keys::EMAIL)
            .await?
            .map(|item| EmailRecord {
                user_id: UserId::from_stored(get_s(&item, "user_id").unwrap_or_default()),
                is_active: get_bool(&item, "is_active").unwrap_or(false),
                awaiting_payment: get_bool(&item, "awaiting_payment").unwrap_or(false),
            }))
    }

    pub async fn get_profile(&self, user: &UserId) -> Result<Option<Item>, StoreError> {
        self.get(keys::user(user), keys::PROFILE).await
    }

    /// The member's email, as the profile holds it (`None`: no profile, or
    /// an address that no longer parses).
    pub async fn profile_email(&self, user: &UserId) -> Result<Option<Email>, StoreError> {
        Ok(self
            .get_profile(user)
            .await?
            .and_then(|p| get_s(&p, "email").and_then(|e| Email::parse(e).ok())))
    }

    pub async fn get_setup_token(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .get(keys::user(user), keys::SETUP_TOKEN)
            .await?
            .and_then(|item| {
                Some(TokenRecord {
                    token_hash: get_s(&item, "token_hash")?.to_string(),
                    expires_at: get_ts(&item, "expires_at")?,
                })
            }))
    }
}
