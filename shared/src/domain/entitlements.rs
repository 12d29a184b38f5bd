//! Effective roles and permissions: a pure function of what a user holds and
//! the time, so any caller (session issuing, /account/me, admin views) agrees.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::plan::BASE_ROLE;
use super::{has_access, PlanCatalog, SubscriptionState};

/// One subscription as the access rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub plan_id: String,
    pub state: SubscriptionState,
    pub access_until: Option<DateTime<Utc>>,
    /// `<provider>#<plan>`: which subscription this is.
    pub key: String,
    /// The last event applied to it: every provider event that changes it writes its own.
    pub last_change: String,
}

/// An admin's revoke of a role. It holds until a provider event changes a
/// plan that grants the role: `seen` holds the last event applied to each
/// subscription granting it when it was revoked, and any other last event
/// (or a subscription that did not exist then) lifts the revoke.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    pub role: String,
    pub seen: BTreeMap<String, String>,
}

impl Revocation {
    /// A revoke of `role` as of `holdings` (what the member holds now).
    pub fn of(catalog: &PlanCatalog, role: &str, holdings: &[Holding]) -> Self {
        Self {
            role: role.to_string(),
            seen: holdings
                .iter()
                .filter(|h| grants(catalog, &h.plan_id, role))
                .map(|h| (h.key.clone(), h.last_change.clone()))
                .collect(),
        }
    }

    fn lifted_by(&self, catalog: &PlanCatalog, holdings: &[Holding]) -> bool {
        holdings.iter().any(|h| {
            grants(catalog, &h.plan_id, &self.role) && self.seen.get(&h.key) != Some(&h.last_change)
        })
    }
}

fn grants(catalog: &PlanCatalog, plan_id: &str, role: &str) -> bool {
    catalog
        .get(plan_id)
        .is_some_and(|plan| plan.roles.iter().any(|r| r == role))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitlements {
    pub roles: BTreeSet<String>,
    pub permissions: BTreeSet<String>,
}

/// `free-user` for everyone, plus the roles of every plan whose subscription
/// grants access at `now`, minus manual revokes still in force, plus manual
/// grants (a grant beats a revoke of the same role).
pub fn entitlements(
    catalog: &PlanCatalog,
    holdings: &[Holding],
    granted: &[String],
    revoked: &[Revocation],
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
    for revocation in revoked {
        if revocation.role != BASE_ROLE && !revocation.lifted_by(catalog, holdings) {
            roles.remove(&revocation.role);
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
            key: format!("stripe#{plan}"),
            last_change: "stripe:evt_1".into(),
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
        let revokes = [
            Revocation::of(&catalog(), "premium-monthly", std::slice::from_ref(&active)),
            Revocation::of(&catalog(), "free-user", std::slice::from_ref(&active)),
        ];
        let e = entitlements(
            &catalog(),
            std::slice::from_ref(&active),
            &["admin".into()],
            &revokes,
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

    #[test]
    fn a_revoke_holds_until_a_provider_event_changes_the_plan() {
        let now = Utc::now();
        let catalog = catalog();
        let mut sub = holding("premium_monthly", SubscriptionState::Active, None);
        sub.last_change = "stripe:evt_3".into();
        let revoke = Revocation::of(&catalog, "premium-monthly", std::slice::from_ref(&sub));
        assert_eq!(
            revoke
                .seen
                .get("stripe#premium_monthly")
                .map(String::as_str),
            Some("stripe:evt_3")
        );
        let roles = |h: &[Holding]| {
            entitlements(&catalog, h, &[], std::slice::from_ref(&revoke), now).roles
        };
        assert!(!roles(std::slice::from_ref(&sub)).contains("premium-monthly"));
        // An unrelated plan changing does not lift it.
        let mut other = holding("premium_lifetime", SubscriptionState::Active, None);
        other.last_change = "stripe:evt_9".into();
        assert!(!roles(&[sub.clone(), other]).contains("premium-monthly"));
        // The next provider event on that plan does (a repurchase too).
        sub.last_change = "stripe:evt_4".into();
        assert!(roles(std::slice::from_ref(&sub)).contains("premium-monthly"));
        // So does a new subscription to a plan granting the role.
        let pass = holding("premium_90_day_pass", SubscriptionState::Active, None);
        sub.last_change = "stripe:evt_3".into();
        assert!(roles(&[sub, pass]).contains("premium-monthly"));
    }

    #[test]
    fn a_grant_survives_any_subscription_state() {
        let now = Utc::now();
        let expired = holding("premium_monthly", SubscriptionState::Expired, None);
        let e = entitlements(
            &catalog(),
            &[expired],
            &["premium-monthly".into()],
            &[],
            now,
        );
        assert!(e.roles.contains("premium-monthly"));
    }
}
