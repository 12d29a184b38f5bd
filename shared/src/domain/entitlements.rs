//! Effective roles and permissions: a pure function of what a user holds and
//! the time, so any caller (session issuing, /account/me, admin views) agrees.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::plan::BASE_ROLE;
use super::{has_access, PlanCatalog, SubscriptionState};

/// One subscription as the access rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub plan_id: String,
    pub state: SubscriptionState,
    pub access_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitlements {
    pub roles: BTreeSet<String>,
    pub permissions: BTreeSet<String>,
}

/// `free-user` for everyone, plus the roles of every plan whose subscription
/// grants access at `now`, plus manual grants, minus manual revokes.
pub fn entitlements(
    catalog: &PlanCatalog,
    holdings: &[Holding],
    granted: &[String],
    revoked: &[String],
    now: DateTime<Utc>,
) -> Entitlements {
    let mut roles: BTreeSet<String> = BTreeSet::from([BASE_ROLE.to_string()]);
    for holding in holdings {
        if !has_access(holding.state, holding.access_until, now) {
            continue;
        }
        if let Some(plan) = catalog.get(&holding.plan_id) {
            roles.extend(plan.roles.iter().cloned());
        }
    }
    for role in revoked {
        if role != BASE_ROLE {
            roles.remove(role);
        }
    }
    roles.extend(granted.iter().cloned());
    let permissions = roles
        .iter()
        .flat_map(|role| catalog.permissions(role).iter().cloned())
        .collect();
    Entitlements { roles, permissions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn catalog() -> PlanCatalog {
        PlanCatalog::from_json(include_str!("../../../infra/plans.json")).unwrap()
    }

    fn holding(plan: &str, state: SubscriptionState, until: Option<DateTime<Utc>>) -> Holding {
        Holding {
            plan_id: plan.into(),
            state,
            access_until: until,
        }
    }

    #[test]
    fn everyone_is_a_free_user() {
        let e = entitlements(&catalog(), &[], &[], &[], Utc::now());
        assert_eq!(e.roles, BTreeSet::from(["free-user".to_string()]));
        assert_eq!(
            e.permissions,
            BTreeSet::from(["read:basic-content".to_string()])
        );
    }

    #[test]
    fn premium_follows_the_access_rule() {
        let now = Utc::now();
        let active = holding(
            "premium_monthly",
            SubscriptionState::Active,
            Some(now + Duration::days(3)),
        );
        let e = entitlements(&catalog(), &[active], &[], &[], now);
        assert!(e.roles.contains("premium-monthly"));
        assert!(e.permissions.contains("read:premium-content"));
        assert!(e.permissions.contains("manage:subscription"));

        let canceled_running = holding(
            "premium_monthly",
            SubscriptionState::Canceled,
            Some(now + Duration::days(3)),
        );
        assert!(entitlements(
            &catalog(),
            std::slice::from_ref(&canceled_running),
            &[],
            &[],
            now
        )
        .roles
        .contains("premium-monthly"));
        let after_end = now + Duration::days(4);
        assert!(
            !entitlements(&catalog(), &[canceled_running], &[], &[], after_end)
                .roles
                .contains("premium-monthly")
        );
        let expired = holding("premium_monthly", SubscriptionState::Expired, None);
        assert!(!entitlements(&catalog(), &[expired], &[], &[], now)
            .permissions
            .contains("read:premium-content"));
        let lifetime = holding("premium_lifetime", SubscriptionState::Active, None);
        assert!(entitlements(
            &catalog(),
            &[lifetime],
            &[],
            &[],
            now + Duration::days(36500)
        )
        .roles
        .contains("premium-lifetime"));
    }

    #[test]
    fn manual_grants_and_revokes() {
        let now = Utc::now();
        let active = holding("premium_monthly", SubscriptionState::Active, None);
        let e = entitlements(
            &catalog(),
            &[active],
            &["admin".into()],
            &["premium-monthly".into(), "free-user".into()],
            now,
        );
        assert!(e.roles.contains("admin"));
        assert!(e.permissions.contains("access:admin-panel"));
        assert!(!e.roles.contains("premium-monthly"));
        assert!(
            e.roles.contains("free-user"),
            "the base role cannot be revoked"
        );
    }
}
