//! Who may call the admin API. API Gateway (IAM auth) has already verified the
//! SigV4 signature; each function still checks the caller's principal against
//! `ADMIN_PRINCIPALS`, reading it only from `requestContext.authorizer.iam`.
//!
//! Matching rule: an IAM user matches its own ARN exactly. An assumed-role
//! session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`) matches the
//! role's ARN (`arn:aws:iam::<account>:role/[<path>/]<role>`): same partition,
//! same account, same role name. Anything else matches nothing.

use std::fmt;

use crate::http::IamIdentity;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminAuthError {
    #[error("the request carries no IAM identity: admin routes need SigV4-signed requests")]
    NoIdentity,
    /// The caller's ARN without its session name, which may be an email address.
    #[error("principal {0} is not an allowed admin")]
    NotAllowed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ADMIN_PRINCIPALS entry `{0}` is not an IAM user or role ARN")]
pub struct PrincipalListError(pub String);

/// One parsed ARN: partition, account, and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arn {
    User {
        partition: String,
        account: String,
        name: String,
    },
    Role {
        partition: String,
        account: String,
        name: String,
    },
    AssumedRole {
        partition: String,
        account: String,
        role: String,
    },
}

impl Arn {
    fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let partition = parts.next()?.to_string();
        let service = parts.next()?;
        let _region = parts.next()?;
        let account = parts.next()?.to_string();
        let resource = parts.next()?;
        if partition.is_empty() || account.is_empty() {
            return None;
        }
        let (kind, rest) = resource.split_once('/')?;
        match (service, kind) {
            ("iam", "user") => Some(Self::User {
                partition,
                account,
                // Users may have paths; the ARN is matched whole.
                name: rest.to_string(),
            }),
            ("iam", "role") => Some(Self::Role {
                partition,
                account,
                name: rest.rsplit('/').next()?.to_string(),
            }),
            ("sts", "assumed-role") => Some(Self::AssumedRole {
                partition,
                account,
                role: rest.split('/').next()?.to_string(),
            }),
            _ => None,
        }
        .filter(|arn| match arn {
            Self::User { name, .. } | Self::Role { name, .. } => !name.is_empty(),
            Self::AssumedRole { role, .. } => !role.is_empty(),
        })
    }

    fn canonical(&self) -> String {
        match self {
            Arn::User {
                partition,
                account,
                name,
            } => format!("arn:{partition}:iam::{account}:user/{name}"),
            Arn::Role {
                partition,
                account,
                name,
            } => format!("arn:{partition}:iam::{account}:role/{name}"),
            Arn::AssumedRole {
                partition,
                account,
                role,
            } => format!("arn:{partition}:iam::{account}:role/{role}"),
        }
    }

    fn allows(&self, caller: &Arn) -> bool {
        match (self, caller) {
            (Arn::User { .. }, Arn::User { .. }) => self == caller,
            (
                Arn::Role {
                    partition,
                    account,
                    name,
                },
                Arn::AssumedRole {
                    partition: p,
                    account: a,
                    role,
                },
            ) => partition == p && account == a && name == role,
            _ => false,
        }
    }
}

/// An authenticated, allowed admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrincipal {
    /// The caller exactly, session name included: kept in the audit record only.
    pub arn: String,
    /// The allowlist entry it matched (the user or the role), as configured.
    pub allowed_as: String,
    /// That entry in a canonical form (`arn:<partition>:iam::<account>:role/<name>`
    /// without the path, or the user's ARN): what idempotency keys are scoped
    /// to, so a retry from a new session of the same role repeats nothing,
    /// however the allowlist spells or orders the entry.
    pub scope: String,
}

/// Logs show the allowlist entry, never the session.
impl fmt::Display for AdminPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::domain::redact_emails(&self.allowed_as))
    }
}

/// An ARN fit for a log: an assumed-role session name or a federated user's
/// name cut off, and any address left in it redacted (IAM user names may be
/// addresses).
fn without_session(arn: &str) -> String {
    let cut = if let Some((head, rest)) = arn.split_once(":assumed-role/") {
        let role = rest.split('/').next().unwrap_or_default();
        format!("{head}:assumed-role/{role}/…")
    } else if let Some((head, _)) = arn.split_once(":federated-user/") {
        format!("{head}:federated-user/…")
    } else {
        arn.to_string()
    };
    crate::domain::redact_emails(&cut)
}

/// The allowlist from `ADMIN_PRINCIPALS` (comma-separated user and role ARNs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminPrincipals {
    /// Each entry parsed, with its text as configured.
    allowed: Vec<(Arn, String)>,
}

impl AdminPrincipals {
    pub fn parse(raw: &str) -> Result<Self, PrincipalListError> {
        let allowed = raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| match Arn::parse(entry) {
                Some(arn @ (Arn::User { .. } | Arn::Role { .. })) => Ok((arn, entry.to_string())),
                _ => Err(PrincipalListError(entry.to_string())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// The caller, if the identity API Gateway attached is on the list.
    pub fn authorize(&self, iam: Option<&IamIdentity>) -> Result<AdminPrincipal, AdminAuthError> {
        let arn = iam
            .and_then(|i| i.user_arn.as_deref())
            .filter(|a| !a.is_empty())
            .ok_or(AdminAuthError::NoIdentity)?;
        let refused = || AdminAuthError::NotAllowed(without_session(arn));
        let caller = Arn::parse(arn).ok_or_else(refused)?;
        match self
            .allowed
            .iter()
            .find(|(allowed, _)| allowed.allows(&caller))
        {
            Some((allowed, entry)) => Ok(AdminPrincipal {
                arn: arn.to_string(),
                allowed_as: entry.clone(),
                scope: allowed.canonical(),
            }),
            None => Err(refused()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iam(arn: &str) -> IamIdentity {
        IamIdentity {
            user_arn: Some(arn.into()),
            ..Default::default()
        }
    }

    fn list() -> AdminPrincipals {
        AdminPrincipals::parse(
            "arn:aws:iam::111122223333:user/ops/alice, arn:aws:iam::111122223333:role/admin/GatehouseAdmin",
        )
        .unwrap()
    }

    #[test]
    fn users_match_exactly() {
        let l = list();
        assert!(l
            .authorize(Some(&iam("arn:aws:iam::111122223333:user/ops/alice")))
            .is_ok());
        for other in [
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:user/ops/alice2",
            "arn:aws:iam::999988887777:user/ops/alice",
        ] {
            assert_eq!(
                l.authorize(Some(&iam(other))),
                Err(AdminAuthError::NotAllowed(other.into())),
                "{other}"
            );
        }
    }

    #[test]
    fn assumed_role_sessions_match_their_role() {
        let l = list();
        let session = "arn:aws:sts::111122223333:assumed-role/GatehouseAdmin/bob@example.com";
        let principal = l.authorize(Some(&iam(session))).unwrap();
        assert_eq!(principal.arn, session);
        // Logs and idempotency see the role, never the session name.
        assert_eq!(
            principal.to_string(),
            "arn:aws:iam::111122223333:role/admin/GatehouseAdmin"
        );
        assert_eq!(
            principal.scope, "arn:aws:iam::111122223333:role/GatehouseAdmin",
            "the path does not change the scope"
        );
        let federated = "arn:aws:sts::111122223333:federated-user/carol@example.com";
        assert_eq!(
            l.authorize(Some(&iam(federated))),
            Err(AdminAuthError::NotAllowed(
                "arn:aws:sts::111122223333:federated-user/…".into()
            ))
        );
        assert_eq!(
            l.authorize(Some(&iam(
                "arn:aws:sts::999988887777:assumed-role/GatehouseAdmin/carol@example.com"
            ))),
            Err(AdminAuthError::NotAllowed(
                "arn:aws:sts::999988887777:assumed-role/GatehouseAdmin/…".into()
            )),
            "a refusal does not repeat the session name"
        );
        for other in [
            "arn:aws:sts::111122223333:assumed-role/GatehouseAdminX/bob",
            "arn:aws:sts::999988887777:assumed-role/GatehouseAdmin/bob",
            "arn:aws-cn:sts::111122223333:assumed-role/GatehouseAdmin/bob",
            // A role ARN itself is never a caller.
            "arn:aws:iam::111122223333:role/admin/GatehouseAdmin",
        ] {
            assert!(l.authorize(Some(&iam(other))).is_err(), "{other}");
        }
    }

    #[test]
    fn no_identity_and_garbage_are_refused() {
        let l = list();
        assert_eq!(l.authorize(None), Err(AdminAuthError::NoIdentity));
        assert_eq!(
            l.authorize(Some(&IamIdentity::default())),
            Err(AdminAuthError::NoIdentity)
        );
        assert!(l.authorize(Some(&iam("not an arn"))).is_err());
        assert!(l
            .authorize(Some(&iam("arn:aws:sts::1:assumed-role//x")))
            .is_err());
        assert!(AdminPrincipals::default()
            .authorize(Some(&iam("arn:aws:iam::111122223333:user/ops/alice")))
            .is_err());
    }

    #[test]
    fn the_list_accepts_only_user_and_role_arns() {
        assert!(AdminPrincipals::parse("arn:aws:iam::1:group/admins").is_err());
        assert!(AdminPrincipals::parse("arn:aws:sts::1:assumed-role/R/s").is_err());
        assert!(AdminPrincipals::parse("alice").is_err());
        assert!(AdminPrincipals::parse("").unwrap().is_empty());
    }
}
