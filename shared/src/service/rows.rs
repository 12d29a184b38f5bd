//! Which subscription row an event writes. A Stripe subscription's events
//! name it (`sub_…`), so each Stripe subscription has a row of its own, keyed
//! by that id, with the plan as an attribute: a price swap moves the row to
//! the new plan, and two subscriptions on one plan are independent. Paystack
//! charges do not name their subscription and Kajabi sends no subscription
//! id, so their rows stay keyed by the plan (one per member and plan).

use crate::domain::Provider;
use crate::store::{keys, SubscriptionRecord};

/// The row an event writes, and the row as it stands.
#[derive(Debug)]
pub(crate) struct Row<'a> {
    /// The key after `SUB#<provider>#`.
    pub key: String,
    pub current: Option<&'a SubscriptionRecord>,
    /// `current` is a plan-keyed row this event moves under its subscription's
    /// id (written before rows were keyed by id, or by an invoice that named
    /// no subscription): it is deleted in the same transaction.
    pub adopts: bool,
}

/// Whether `provider`'s rows are keyed by the subscription id its events carry.
pub(crate) fn keyed_by_subscription(provider: Provider) -> bool {
    provider == Provider::Stripe
}

/// The row for an event about `plan_id` (and about `subscription`, when it
/// names one) among the member's `subscriptions`. `Err` carries the reason
/// when the event cannot say which of several rows it means.
pub(crate) fn row_for<'a>(
    subscriptions: &'a [SubscriptionRecord],
    provider: Provider,
    plan_id: &str,
    subscription: Option<&str>,
) -> Result<Row<'a>, String> {
    let mine = || subscriptions.iter().filter(|s| s.provider == provider);
    let keyed_by = |key: &str| mine().find(|s| s.row == keys::bounded(key));
    let row = |key: &str, current, adopts| Row {
        key: key.to_string(),
        current,
        adopts,
    };
    if !keyed_by_subscription(provider) {
        return Ok(row(plan_id, keyed_by(plan_id), false));
    }
    // Rows a subscription's events may write: not a one-time purchase's.
    let subscriptions = || mine().filter(|s| !s.one_time);
    if let Some(id) = subscription {
        if let Some(found) = keyed_by(id) {
            return Ok(row(id, Some(found), false));
        }
        // A row still keyed by its plan: the one that follows this subscription
        // (on whatever plan, since the event may be a price swap), else one on
        // the event's plan that follows none.
        let plan_keyed = || subscriptions().filter(|s| s.row == s.plan_id);
        let legacy = plan_keyed()
            .find(|s| s.provider_ref.as_deref() == Some(id))
            .or_else(|| plan_keyed().find(|s| s.plan_id == plan_id && s.provider_ref.is_none()));
        return Ok(row(id, legacy, legacy.is_some()));
    }
    let on_plan: Vec<&SubscriptionRecord> =
        subscriptions().filter(|s| s.plan_id == plan_id).collect();
    match on_plan.as_slice() {
        // The plan's key is a one-time purchase's row: a subscription needs its id.
        [] if keyed_by(plan_id).is_some() => Err(format!(
            "the event names no subscription, and the member's {provider} row on {plan_id} is a one-time purchase"
        )),
        [] => Ok(row(plan_id, None, false)),
        [only] => Ok(row(&only.row, Some(only), false)),
        several => Err(format!(
            "the event names no subscription, and the member has {} {provider} subscriptions on {plan_id}",
            several.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SubscriptionState, SubscriptionView, UserId};

    fn sub(
        provider: Provider,
        row: &str,
        plan: &str,
        reference: Option<&str>,
    ) -> SubscriptionRecord {
        SubscriptionRecord {
            user_id: UserId::from_stored("usr_1"),
            provider,
            row: row.into(),
            plan_id: plan.into(),
            view: SubscriptionView {
                state: SubscriptionState::Active,
                period_end: None,
                access_until: None,
            },
            version: 1,
            watermark: None,
            watermark_rank: 0,
            provider_ref: reference.map(str::to_string),
            last_event: None,
            one_time: false,
        }
    }

    fn picked(row: &Row<'_>) -> (String, Option<String>, bool) {
        (
            row.key.clone(),
            row.current.map(|c| c.row.clone()),
            row.adopts,
        )
    }

    #[test]
    fn a_stripe_subscription_has_its_own_row_whatever_its_plan() {
        use Provider::Stripe;
        let subs = [
            sub(Stripe, "sub_a", "monthly", Some("sub_a")),
            sub(Stripe, "sub_b", "monthly", Some("sub_b")),
        ];
        // Its own row, even when the event names another plan (a price swap).
        let swap = row_for(&subs, Stripe, "yearly", Some("sub_a")).unwrap();
        assert_eq!(picked(&swap), ("sub_a".into(), Some("sub_a".into()), false));
        // A new subscription on the same plan is a new row.
        let new = row_for(&subs, Stripe, "monthly", Some("sub_c")).unwrap();
        assert_eq!(picked(&new), ("sub_c".into(), None, false));
        // No id and two on the plan: which one is not guessed.
        let err = row_for(&subs, Stripe, "monthly", None).unwrap_err();
        assert!(err.contains("2 stripe subscriptions on monthly"), "{err}");
    }

    #[test]
    fn a_plan_keyed_stripe_row_moves_under_its_subscription_id() {
        use Provider::Stripe;
        for reference in [None, Some("sub_a")] {
            let subs = [sub(Stripe, "monthly", "monthly", reference)];
            let moved = row_for(&subs, Stripe, "monthly", Some("sub_a")).unwrap();
            assert_eq!(
                picked(&moved),
                ("sub_a".into(), Some("monthly".into()), true)
            );
        }
        // A plan-keyed row that follows another subscription stays its own.
        let subs = [sub(Stripe, "monthly", "monthly", Some("sub_old"))];
        let new = row_for(&subs, Stripe, "monthly", Some("sub_a")).unwrap();
        assert_eq!(picked(&new), ("sub_a".into(), None, false));
        // An event with no id takes the only row on its plan.
        let only = row_for(&subs, Stripe, "monthly", None).unwrap();
        assert_eq!(
            picked(&only),
            ("monthly".into(), Some("monthly".into()), false)
        );
        let none = row_for(&[], Stripe, "monthly", None).unwrap();
        assert_eq!(picked(&none), ("monthly".into(), None, false));
    }

    #[test]
    fn a_price_swap_takes_over_the_plan_keyed_row_of_its_subscription() {
        use Provider::Stripe;
        let subs = [sub(Stripe, "monthly", "monthly", Some("sub_a"))];
        let moved = row_for(&subs, Stripe, "yearly", Some("sub_a")).unwrap();
        assert_eq!(
            picked(&moved),
            ("sub_a".into(), Some("monthly".into()), true)
        );
        // A plan-keyed row on another plan that follows no subscription is not it.
        let subs = [sub(Stripe, "monthly", "monthly", None)];
        let new = row_for(&subs, Stripe, "yearly", Some("sub_a")).unwrap();
        assert_eq!(picked(&new), ("sub_a".into(), None, false));
    }

    #[test]
    fn a_one_time_purchase_is_never_taken_over_by_a_subscription() {
        use Provider::Stripe;
        let mut pass = sub(Stripe, "monthly", "monthly", None);
        pass.one_time = true;
        let subs = [pass];
        let new = row_for(&subs, Stripe, "monthly", Some("sub_a")).unwrap();
        assert_eq!(picked(&new), ("sub_a".into(), None, false));
        let err = row_for(&subs, Stripe, "monthly", None).unwrap_err();
        assert!(err.contains("one-time purchase"), "{err}");
    }

    #[test]
    fn paystack_and_kajabi_rows_are_keyed_by_plan() {
        for provider in [Provider::Paystack, Provider::Kajabi] {
            let subs = [sub(provider, "monthly", "monthly", Some("SUB_x"))];
            let row = row_for(&subs, provider, "monthly", Some("SUB_y")).unwrap();
            assert_eq!(
                picked(&row),
                ("monthly".into(), Some("monthly".into()), false)
            );
        }
    }

    #[test]
    fn a_long_subscription_id_finds_its_hashed_row() {
        let long = "sub_".to_string() + &"x".repeat(500);
        let subs = [sub(
            Provider::Stripe,
            &keys::bounded(&long),
            "monthly",
            Some(&long),
        )];
        let row = row_for(&subs, Provider::Stripe, "monthly", Some(&long)).unwrap();
        assert!(row.current.is_some() && !row.adopts);
    }
}
