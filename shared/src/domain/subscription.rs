use chrono::{DateTime, Duration, Utc};

use super::Plan;

/// Gatehouse's subscription states, provider-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionState {
    Active,
    Trialing,
    PastDue,
    /// Canceled; access continues until `access_until`.
    Canceled,
    Expired,
    Refunded,
    /// Held but not paid for (Stripe's incomplete, unpaid, paused): no access.
    Suspended,
}

impl SubscriptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::Refunded => "refunded",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "active" => Self::Active,
            "trialing" => Self::Trialing,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "expired" => Self::Expired,
            "refunded" => Self::Refunded,
            "suspended" => Self::Suspended,
            _ => return None,
        })
    }
}

/// The part of a subscription the lifecycle rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub state: SubscriptionState,
    /// End of the current paid period (`None` for lifetime plans).
    pub period_end: Option<DateTime<Utc>>,
    /// When access stops. `None` means no end while the state grants access.
    pub access_until: Option<DateTime<Utc>>,
}

/// The newest provider event applied to a subscription: its time and, for
/// events from the same second, its lifecycle rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    pub at: DateTime<Utc>,
    pub rank: i64,
}

impl Watermark {
    /// An event's time as the watermark compares it: to the second, so the
    /// rank orders events of one second for every provider alike (Stripe
    /// sends whole seconds; a receipt time's milliseconds must not beat a rank).
    pub fn second_of(at: DateTime<Utc>) -> DateTime<Utc> {
        chrono::DurationRound::duration_trunc(at, Duration::seconds(1)).unwrap_or(at)
    }

    /// Whether an event at (`at`, `rank`) is older than this mark and must
    /// leave the subscription as it is.
    pub fn supersedes(self, at: DateTime<Utc>, rank: i64) -> bool {
        at < self.at || (at == self.at && rank < self.rank)
    }
}

/// A lifecycle change requested by a provider event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Purchase,
    Renew,
    /// `ends_at` is the provider's end date, when it sends one.
    Cancel {
        ends_at: Option<DateTime<Utc>>,
    },
    Expire,
    /// A refund of the purchase: access ends now, whatever the plan.
    Refund,
}

/// Whether a subscription in `state` grants access at `now`.
pub fn has_access(
    state: SubscriptionState,
    access_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match state {
        SubscriptionState::Active | SubscriptionState::Trialing | SubscriptionState::PastDue => {
            access_until.is_none_or(|until| now < until)
        }
        SubscriptionState::Canceled => access_until.is_some_and(|until| now < until),
        SubscriptionState::Expired | SubscriptionState::Refunded | SubscriptionState::Suspended => {
            false
        }
    }
}

/// Whether a change to `state` leaves `plan` as it is: a lifetime plan is paid
/// once, so a cancel or an expiry never ends it. A refund (or an admin revoke) does.
pub fn lifetime_keeps_access(plan: &Plan, state: SubscriptionState) -> bool {
    plan.lifetime
        && matches!(
            state,
            SubscriptionState::Canceled | SubscriptionState::Expired
        )
}

/// Whether moving from `current` to `next` would reopen access that has ended.
/// An expired or refunded subscription is reopened only by a payment (active
/// or trialing), never by a cancel at period end or a dunning notice that
/// arrived after the end: both would grant access again until a date.
pub fn reopens_ended(current: SubscriptionState, next: SubscriptionState) -> bool {
    matches!(
        current,
        SubscriptionState::Expired | SubscriptionState::Refunded
    ) && matches!(
        next,
        SubscriptionState::Canceled | SubscriptionState::PastDue
    )
}

/// Whether an event about the provider's subscription `event_ref` must leave
/// a row that now follows `row_ref`: a change that grants no new access, for a
/// subscription the member has replaced on the same plan (a deleted old one
/// must not expire the new, paid one). An activation takes the row over.
pub fn concerns_replaced_subscription(
    row_ref: Option<&str>,
    event_ref: Option<&str>,
    next: SubscriptionState,
) -> bool {
    match (row_ref, event_ref) {
        (Some(row), Some(event)) => {
            row != event
                && !matches!(
                    next,
                    SubscriptionState::Active | SubscriptionState::Trialing
                )
        }
        _ => false,
    }
}

/// What a payment older than the subscription's last change still does: it
/// paid for its period. While the subscription is live (active, trialing,
/// past due, or canceled with access left) access runs to the later of its
/// current end and the paid period's end, in the state it is in. `None` when
/// it changes nothing: the subscription has ended, or already runs longer.
pub fn stale_payment_extends(
    current: &SubscriptionView,
    paid: &SubscriptionView,
) -> Option<SubscriptionView> {
    let live = matches!(
        current.state,
        SubscriptionState::Active
            | SubscriptionState::Trialing
            | SubscriptionState::PastDue
            | SubscriptionState::Canceled
    );
    let (Some(now_until), Some(paid_until)) = (current.access_until, paid.access_until) else {
        return None;
    };
    (live && paid_until > now_until).then(|| SubscriptionView {
        state: current.state,
        period_end: current.period_end.max(paid.period_end),
        access_until: Some(paid_until),
    })
}

/// A lifecycle change the rules refuse, with the reason to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchanged {
    /// Recorded `ignored`: the change does not apply to this plan.
    Ignored(&'static str),
    /// Recorded `superseded`: the subscription has moved past it.
    Superseded(&'static str),
}

/// Whether a change to `next` must leave the plan's subscription as it is:
/// a lifetime plan's cancel or expiry, or a change that would reopen an
/// ended subscription without a payment.
pub fn leaves_unchanged(
    plan: &Plan,
    current: Option<SubscriptionState>,
    next: SubscriptionState,
) -> Option<Unchanged> {
    // A refund is final for what it refunded: a later cancel, expiry or
    // dunning notice neither reopens nor restates it (nor sends a notice).
    if current == Some(SubscriptionState::Refunded)
        && !matches!(
            next,
            SubscriptionState::Active | SubscriptionState::Trialing
        )
    {
        return Some(Unchanged::Superseded(REFUNDED_STAYS_REFUNDED));
    }
    if lifetime_keeps_access(plan, next) {
        return Some(Unchanged::Ignored(LIFETIME_KEEPS_ACCESS));
    }
    current
        .is_some_and(|c| reopens_ended(c, next))
        .then_some(Unchanged::Superseded(ENDED_STAYS_ENDED))
}

/// Why a change after a refund changed nothing.
pub const REFUNDED_STAYS_REFUNDED: &str =
    "the subscription was refunded; a later cancel, expiry or payment failure does not change it";

/// Why a late cancel or dunning notice changed nothing.
pub const ENDED_STAYS_ENDED: &str =
    "the subscription has already ended; a later cancel or payment failure does not reopen it";

/// Why an event that would end a lifetime plan changed nothing.
pub const LIFETIME_KEEPS_ACCESS: &str =
    "lifetime plan: a cancel or expiry does not end its access (a refund does)";

/// The view a provider's reported state leads to. The period end is the
/// event's, or the one already known; access runs to it while the state
/// grants access (active, trialing, canceled at period end). A payment
/// failure opens `grace` from `now`, once: a second failure keeps the first
/// deadline, so dunning never stretches access. Ended states end it now.
pub fn reported_view(
    current: Option<&SubscriptionView>,
    state: SubscriptionState,
    period_end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> SubscriptionView {
    let period_end = period_end.or_else(|| current.and_then(|c| c.period_end));
    let access_until = match state {
        SubscriptionState::Active | SubscriptionState::Trialing | SubscriptionState::Canceled => {
            period_end
        }
        SubscriptionState::PastDue => match current {
            Some(c) if c.state == SubscriptionState::PastDue => c.access_until,
            _ => Some(now + grace),
        },
        SubscriptionState::Expired | SubscriptionState::Refunded | SubscriptionState::Suspended => {
            Some(now)
        }
    };
    SubscriptionView {
        state,
        period_end,
        access_until,
    }
}

/// A one-time pass bought while another pass of the same plan still grants
/// access starts when that one ends: the new period is added after it, so
/// no paid day is lost. `None`: it starts at once, as bought. Lifetime
/// access (no end) and subscriptions (which renew) are never queued behind.
pub fn pass_starts_at(
    current: Option<&SubscriptionView>,
    current_is_pass: bool,
    bought: &SubscriptionView,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let current = current.filter(|_| current_is_pass)?;
    bought.access_until?;
    let end = current.access_until?;
    (has_access(current.state, current.access_until, now) && end > now).then_some(end)
}

/// The bought pass's view when it starts at `start` instead of `now`.
pub fn queued_pass(
    bought: &SubscriptionView,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> SubscriptionView {
    let shift = start - now;
    SubscriptionView {
        state: bought.state,
        period_end: bought.period_end.map(|t| t + shift),
        access_until: bought.access_until.map(|t| t + shift),
    }
}

/// A full refund of a queued pass (its days start at `start`): before it
/// starts, only its days go (access runs to `start` again, for the pass
/// before it); once started, it is a refund like any (access ends now).
pub fn refunded_queued_view(
    current: &SubscriptionView,
    start: DateTime<Utc>,
    full: bool,
    now: DateTime<Utc>,
) -> Option<SubscriptionView> {
    if !full || now >= start {
        return refunded_view(current, full, now);
    }
    Some(SubscriptionView {
        state: current.state,
        period_end: Some(start),
        access_until: Some(start),
    })
}

/// Paystack's `subscription.disable` ends a subscription at once. When it
/// follows the member's own cancel through Gatehouse (which disables it, as
/// Paystack's API offers no cancel at period end), the member keeps the
/// period they paid for: canceled until its end, not expired now.
pub fn disable_keeps_paid_period(
    current: Option<&SubscriptionView>,
    member_stopped_renewal: bool,
    state: SubscriptionState,
    now: DateTime<Utc>,
) -> SubscriptionState {
    let paid_ahead = current
        .and_then(|c| c.period_end)
        .is_some_and(|end| end > now);
    let live = current.is_some_and(|c| has_access(c.state, c.access_until, now));
    if state == SubscriptionState::Expired && member_stopped_renewal && paid_ahead && live {
        SubscriptionState::Canceled
    } else {
        state
    }
}

/// What a refund does to the subscription its payment granted: a full refund
/// ends access now (whatever the plan, lifetime included); a partial refund,
/// or a second refund of an already refunded one, changes nothing.
pub fn refunded_view(
    current: &SubscriptionView,
    full: bool,
    now: DateTime<Utc>,
) -> Option<SubscriptionView> {
    (full && current.state != SubscriptionState::Refunded).then_some(SubscriptionView {
        state: SubscriptionState::Refunded,
        period_end: current.period_end,
        access_until: Some(now),
    })
}

/// A notice the member gets when their subscription changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Cancel,
    Expiry,
    PaymentFailed,
}

/// The notice a change from `previous` to `next` sends: one per change of
/// state, none for a repeat of the same state or for a (re)activation, and
/// none when `still_covered`: another subscription of the member's on the
/// same plan still grants access, so nothing the member has ends.
pub fn notice_for(
    previous: Option<SubscriptionState>,
    next: SubscriptionState,
    still_covered: bool,
) -> Option<Notice> {
    if previous == Some(next) || still_covered {
        return None;
    }
    match next {
        SubscriptionState::Canceled => Some(Notice::Cancel),
        SubscriptionState::Expired => Some(Notice::Expiry),
        SubscriptionState::PastDue => Some(Notice::PaymentFailed),
        SubscriptionState::Active
        | SubscriptionState::Trialing
        | SubscriptionState::Refunded
        | SubscriptionState::Suspended => None,
    }
}

fn period_from(plan: &Plan, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if plan.lifetime {
        return None;
    }
    plan.period_days
        .map(|days| start + Duration::days(i64::from(days)))
}

impl Transition {
    /// The state a transition that ends or winds down access leads to.
    pub fn ending_state(&self) -> Option<SubscriptionState> {
        match self {
            Transition::Cancel { .. } => Some(SubscriptionState::Canceled),
            Transition::Expire => Some(SubscriptionState::Expired),
            Transition::Refund => Some(SubscriptionState::Refunded),
            Transition::Purchase | Transition::Renew => None,
        }
    }

    /// Applies this transition to the current subscription (if any) for `plan` at `now`.
    pub fn apply(
        &self,
        current: Option<&SubscriptionView>,
        plan: &Plan,
        now: DateTime<Utc>,
    ) -> SubscriptionView {
        if let (Some(current), Some(state)) = (current, self.ending_state()) {
            if lifetime_keeps_access(plan, state) {
                return current.clone();
            }
        }
        match self {
            Transition::Purchase => {
                let period_end = period_from(plan, now);
                SubscriptionView {
                    state: SubscriptionState::Active,
                    period_end,
                    access_until: period_end,
                }
            }
            Transition::Renew => {
                // A renewal extends from the end of the paid period when it is still
                // running, so renewing early never shortens access.
                let start = current
                    .and_then(|c| c.period_end)
                    .filter(|end| *end > now)
                    .unwrap_or(now);
                let period_end = period_from(plan, start);
                SubscriptionView {
                    state: SubscriptionState::Active,
                    period_end,
                    access_until: period_end,
                }
            }
            Transition::Cancel { ends_at } => {
                let period_end = current.and_then(|c| c.period_end);
                let access_until = ends_at
                    .or(period_end)
                    .or_else(|| period_from(plan, now))
                    .unwrap_or(now);
                SubscriptionView {
                    state: SubscriptionState::Canceled,
                    period_end,
                    access_until: Some(access_until),
                }
            }
            Transition::Expire => SubscriptionView {
                state: SubscriptionState::Expired,
                period_end: current.and_then(|c| c.period_end),
                access_until: Some(now),
            },
            Transition::Refund => SubscriptionView {
                state: SubscriptionState::Refunded,
                period_end: current.and_then(|c| c.period_end),
                access_until: Some(now),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(
        state: SubscriptionState,
        period_end: Option<i64>,
        access_until: Option<i64>,
    ) -> SubscriptionView {
        let at = |days: i64| {
            chrono::TimeZone::timestamp_opt(&Utc, 1_800_000_000, 0).unwrap() + Duration::days(days)
        };
        SubscriptionView {
            state,
            period_end: period_end.map(at),
            access_until: access_until.map(at),
        }
    }

    #[test]
    fn a_reported_state_sets_access_by_table() {
        use SubscriptionState::*;
        let now = chrono::TimeZone::timestamp_opt(&Utc, 1_800_000_000, 0).unwrap();
        let day = |d: i64| now + Duration::days(d);
        let grace = Duration::days(7);
        // (current, reported state, reported end) -> (period end, access until), in days from now
        type Case = (
            Option<SubscriptionView>,
            SubscriptionState,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let cases: &[Case] = &[
            (None, Active, Some(30), Some(30), Some(30)),
            (None, Trialing, Some(14), Some(14), Some(14)),
            // cancel at period end keeps the known end when the event has none
            (
                Some(view(Active, Some(30), Some(30))),
                Canceled,
                None,
                Some(30),
                Some(30),
            ),
            // a first payment failure opens the grace period from now
            (
                Some(view(Active, Some(30), Some(30))),
                PastDue,
                None,
                Some(30),
                Some(7),
            ),
            // a second failure keeps the first deadline
            (
                Some(view(PastDue, Some(30), Some(3))),
                PastDue,
                None,
                Some(30),
                Some(3),
            ),
            (
                Some(view(Active, Some(30), Some(30))),
                Expired,
                None,
                Some(30),
                Some(0),
            ),
            (
                Some(view(Active, Some(30), Some(30))),
                Suspended,
                None,
                Some(30),
                Some(0),
            ),
            (
                Some(view(Active, Some(30), Some(30))),
                Refunded,
                None,
                Some(30),
                Some(0),
            ),
            // a renewal moves the end forward
            (
                Some(view(Active, Some(30), Some(30))),
                Active,
                Some(60),
                Some(60),
                Some(60),
            ),
        ];
        for (current, state, reported, period_end, access_until) in cases {
            let got = reported_view(current.as_ref(), *state, reported.map(day), now, grace);
            assert_eq!(got.state, *state);
            assert_eq!(
                got.period_end,
                period_end.map(day),
                "{current:?} -> {state:?}"
            );
            assert_eq!(
                got.access_until,
                access_until.map(day),
                "{current:?} -> {state:?}"
            );
        }
    }

    #[test]
    fn a_full_refund_ends_access_now_and_a_partial_one_changes_nothing() {
        use SubscriptionState::*;
        let now = chrono::TimeZone::timestamp_opt(&Utc, 1_800_000_000, 0).unwrap();
        for state in [Active, Trialing, PastDue, Canceled, Expired] {
            let current = view(state, Some(30), Some(30));
            let refunded = refunded_view(&current, true, now).expect("a full refund applies");
            assert_eq!(refunded.state, Refunded);
            assert_eq!(
                refunded.access_until,
                Some(now),
                "{state:?}: access ends now"
            );
            assert_eq!(refunded.period_end, current.period_end);
            assert_eq!(
                refunded_view(&current, false, now),
                None,
                "{state:?}: partial"
            );
        }
        // A lifetime plan (no period end) is ended by a refund too.
        let lifetime = view(Active, None, None);
        assert_eq!(
            refunded_view(&lifetime, true, now).map(|v| v.access_until),
            Some(Some(now))
        );
        assert_eq!(
            refunded_view(&view(Refunded, Some(30), Some(0)), true, now),
            None
        );
    }

    #[test]
    fn each_change_of_state_sends_its_notice_once() {
        use SubscriptionState::*;
        let cases = [
            (Some(Active), Canceled, Some(Notice::Cancel)),
            (Some(Canceled), Canceled, None),
            (Some(Canceled), Expired, Some(Notice::Expiry)),
            (None, Expired, Some(Notice::Expiry)),
            (Some(Active), PastDue, Some(Notice::PaymentFailed)),
            (Some(PastDue), PastDue, None),
            (Some(PastDue), Active, None),
            (None, Active, None),
            (Some(Active), Suspended, None),
            (Some(Active), Refunded, None),
        ];
        for (previous, next, notice) in cases {
            assert_eq!(
                notice_for(previous, next, false),
                notice,
                "{previous:?} -> {next:?}"
            );
            assert_eq!(
                notice_for(previous, next, true),
                None,
                "another subscription on the plan still grants access"
            );
        }
    }

    #[test]
    fn event_times_compare_to_the_second_so_the_rank_orders_a_second() {
        let at = chrono::TimeZone::timestamp_opt(&Utc, 1_800_000_000, 0).unwrap();
        let disable = Watermark::second_of(at + Duration::milliseconds(120));
        let not_renew = Watermark::second_of(at + Duration::milliseconds(480));
        assert_eq!(disable, at);
        let mark = Watermark {
            at: disable,
            rank: 50,
        };
        assert!(
            mark.supersedes(not_renew, 21),
            "the later not_renew of that second is older by rank"
        );
    }

    #[test]
    fn the_lifecycle_guards_say_which_status_and_why() {
        use SubscriptionState::*;
        let (lifetime, yearly) = (plan(true), plan(false));
        assert_eq!(
            leaves_unchanged(&lifetime, Some(Active), Expired),
            Some(Unchanged::Ignored(LIFETIME_KEEPS_ACCESS))
        );
        assert_eq!(
            leaves_unchanged(&yearly, Some(Expired), Canceled),
            Some(Unchanged::Superseded(ENDED_STAYS_ENDED))
        );
        assert_eq!(leaves_unchanged(&yearly, Some(Active), Canceled), None);
        assert_eq!(leaves_unchanged(&yearly, None, Expired), None);
        assert_eq!(leaves_unchanged(&lifetime, Some(Active), Refunded), None);
        for next in [Canceled, Expired, PastDue, Suspended, Refunded] {
            for plan in [&lifetime, &yearly] {
                assert_eq!(
                    leaves_unchanged(plan, Some(Refunded), next),
                    Some(Unchanged::Superseded(REFUNDED_STAYS_REFUNDED)),
                    "{next:?}"
                );
            }
        }
        assert_eq!(
            leaves_unchanged(&yearly, Some(Refunded), Active),
            None,
            "a repurchase"
        );
    }

    #[test]
    fn a_stale_payment_extends_a_live_subscription_to_its_paid_end_only() {
        use SubscriptionState::*;
        let day =
            |d: i64| chrono::TimeZone::timestamp_opt(&Utc, 1_800_000_000 + d * 86_400, 0).unwrap();
        let view = |state, until: i64| SubscriptionView {
            state,
            period_end: Some(day(until)),
            access_until: Some(day(until)),
        };
        let paid = view(Active, 30);
        let extended = stale_payment_extends(&view(Canceled, 10), &paid).unwrap();
        assert_eq!(extended.state, Canceled, "the state stays");
        assert_eq!(extended.access_until, Some(day(30)));
        assert_eq!(
            stale_payment_extends(&view(Active, 40), &paid),
            None,
            "already longer"
        );
        for ended in [Expired, Refunded, Suspended] {
            assert_eq!(
                stale_payment_extends(&view(ended, 10), &paid),
                None,
                "{ended:?}"
            );
        }
    }

    #[test]
    fn only_an_activation_moves_a_row_to_another_subscription() {
        use SubscriptionState::*;
        let (row, other) = (Some("sub_new"), Some("sub_old"));
        for ending in [Canceled, Expired, PastDue, Suspended, Refunded] {
            assert!(
                concerns_replaced_subscription(row, other, ending),
                "{ending:?}"
            );
            assert!(
                !concerns_replaced_subscription(row, row, ending),
                "{ending:?} of its own"
            );
            assert!(
                !concerns_replaced_subscription(None, other, ending),
                "{ending:?}, no ref yet"
            );
            assert!(
                !concerns_replaced_subscription(row, None, ending),
                "{ending:?}, event names none"
            );
        }
        for activation in [Active, Trialing] {
            assert!(
                !concerns_replaced_subscription(row, other, activation),
                "{activation:?}"
            );
        }
    }

    #[test]
    fn only_a_payment_reopens_an_ended_subscription() {
        use SubscriptionState::*;
        for ended in [Expired, Refunded] {
            assert!(reopens_ended(ended, Canceled), "{ended:?} -> canceled");
            assert!(reopens_ended(ended, PastDue), "{ended:?} -> past due");
            for next in [Active, Trialing, Expired, Refunded, Suspended] {
                assert!(!reopens_ended(ended, next), "{ended:?} -> {next:?}");
            }
        }
        for live in [Active, Trialing, PastDue, Canceled, Suspended] {
            assert!(!reopens_ended(live, Canceled), "{live:?} -> canceled");
        }
    }

    #[test]
    fn a_cancel_or_expiry_leaves_a_lifetime_plan_and_ends_a_periodic_one() {
        let now = chrono::TimeZone::timestamp_opt(&Utc, 1_800_000_000, 0).unwrap();
        let (lifetime, yearly) = (plan(true), plan(false));
        let bought = Transition::Purchase.apply(None, &lifetime, now);
        assert_eq!(bought.access_until, None);
        for change in [
            Transition::Cancel { ends_at: Some(now) },
            Transition::Expire,
        ] {
            let state = change.ending_state().unwrap();
            assert!(lifetime_keeps_access(&lifetime, state));
            assert!(!lifetime_keeps_access(&yearly, state));
            let after = change.apply(Some(&bought), &lifetime, now);
            assert_eq!(after, bought, "{change:?} keeps lifetime access");
            assert!(has_access(
                after.state,
                after.access_until,
                now + Duration::days(9999)
            ));
            let held = Transition::Purchase.apply(None, &yearly, now);
            let ended = change.apply(Some(&held), &yearly, now);
            assert_eq!(ended.state, state, "{change:?} ends a periodic plan");
        }
        assert!(!lifetime_keeps_access(
            &lifetime,
            SubscriptionState::Refunded
        ));
    }

    #[test]
    fn a_watermark_supersedes_older_events_and_lower_ranks_in_its_second() {
        let at = chrono::TimeZone::timestamp_opt(&Utc, 1_800_000_000, 0).unwrap();
        let mark = Watermark { at, rank: 20 };
        assert!(mark.supersedes(at - Duration::seconds(1), 99));
        assert!(mark.supersedes(at, 19));
        assert!(
            !mark.supersedes(at, 20),
            "the same rank in the same second applies"
        );
        assert!(!mark.supersedes(at, 21));
        assert!(!mark.supersedes(at + Duration::seconds(1), 0));
    }

    use chrono::TimeZone;

    #[test]
    fn a_pass_bought_while_another_runs_starts_when_it_ends() {
        // Day n of 2026, past January too.
        let at = |n: i64| at(1) + Duration::days(n - 1);
        let now = at(10);
        let running = SubscriptionView {
            state: SubscriptionState::Active,
            period_end: Some(at(40)),
            access_until: Some(at(40)),
        };
        let bought = SubscriptionView {
            state: SubscriptionState::Active,
            period_end: Some(at(100)),
            access_until: Some(at(100)),
        };
        let start = pass_starts_at(Some(&running), true, &bought, now);
        assert_eq!(start, Some(at(40)));
        let queued = queued_pass(&bought, at(40), now);
        assert_eq!(
            queued.access_until,
            Some(at(130)),
            "90 paid days after day 40"
        );
        // Nothing running, a subscription, an ended pass, or lifetime: at once.
        assert_eq!(pass_starts_at(None, true, &bought, now), None);
        assert_eq!(pass_starts_at(Some(&running), false, &bought, now), None);
        assert_eq!(pass_starts_at(Some(&running), true, &bought, at(41)), None);
        let lifetime = SubscriptionView {
            access_until: None,
            period_end: None,
            ..bought
        };
        assert_eq!(pass_starts_at(Some(&running), true, &lifetime, now), None);
        let refunded = SubscriptionView {
            state: SubscriptionState::Refunded,
            ..running
        };
        assert_eq!(pass_starts_at(Some(&refunded), true, &bought, now), None);
    }

    #[test]
    fn a_queued_pass_refunded_before_it_starts_takes_back_only_its_days() {
        let at = |n: i64| at(1) + Duration::days(n - 1);
        let stacked = SubscriptionView {
            state: SubscriptionState::Active,
            period_end: Some(at(130)),
            access_until: Some(at(130)),
        };
        let view = refunded_queued_view(&stacked, at(40), true, at(10)).unwrap();
        assert_eq!(view.state, SubscriptionState::Active);
        assert_eq!(
            view.access_until,
            Some(at(40)),
            "the first pass keeps its days"
        );
        let started = refunded_queued_view(&stacked, at(40), true, at(50)).unwrap();
        assert_eq!(started.state, SubscriptionState::Refunded);
        assert_eq!(refunded_queued_view(&stacked, at(40), false, at(10)), None);
    }

    #[test]
    fn a_disable_after_the_members_own_cancel_keeps_the_paid_period() {
        let now = at(10);
        let paid = SubscriptionView {
            state: SubscriptionState::Active,
            period_end: Some(at(20)),
            access_until: Some(at(20)),
        };
        let expired = SubscriptionState::Expired;
        assert_eq!(
            disable_keeps_paid_period(Some(&paid), true, expired, now),
            SubscriptionState::Canceled
        );
        // The merchant disabled it (no member cancel), or the period is over:
        // it ends now, as before.
        assert_eq!(
            disable_keeps_paid_period(Some(&paid), false, expired, now),
            expired
        );
        assert_eq!(
            disable_keeps_paid_period(Some(&paid), true, expired, at(21)),
            expired
        );
        let refunded = SubscriptionView {
            state: SubscriptionState::Refunded,
            access_until: Some(at(5)),
            ..paid
        };
        assert_eq!(
            disable_keeps_paid_period(Some(&refunded), true, expired, now),
            expired,
            "access already ended stays ended"
        );
        assert_eq!(
            disable_keeps_paid_period(Some(&paid), true, SubscriptionState::Active, now),
            SubscriptionState::Active
        );
    }

    fn plan(lifetime: bool) -> Plan {
        Plan {
            id: "nssa_annual".into(),
            name: "NSSA".into(),
            partner: Some("NSSA".into()),
            period_days: if lifetime { None } else { Some(365) },
            lifetime,
            roles: vec![],
            sale: None,
        }
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap()
    }

    #[test]
    fn access_rule() {
        use SubscriptionState::*;
        assert!(has_access(Active, None, at(1)));
        assert!(has_access(Active, Some(at(2)), at(1)));
        assert!(!has_access(Active, Some(at(2)), at(3)));
        assert!(has_access(Canceled, Some(at(5)), at(4)));
        assert!(!has_access(Canceled, Some(at(5)), at(5)));
        assert!(!has_access(Canceled, None, at(1)));
        assert!(!has_access(Expired, None, at(1)));
        assert!(!has_access(Refunded, Some(at(30)), at(1)));
        assert!(!has_access(Suspended, None, at(1)));
        assert!(
            has_access(PastDue, Some(at(8)), at(7)),
            "past due keeps access through the grace period"
        );
        assert!(!has_access(PastDue, Some(at(8)), at(9)));
    }

    #[test]
    fn purchase_starts_a_period() {
        let view = Transition::Purchase.apply(None, &plan(false), at(1));
        assert_eq!(view.state, SubscriptionState::Active);
        assert_eq!(view.period_end, Some(at(1) + Duration::days(365)));
        let lifetime = Transition::Purchase.apply(None, &plan(true), at(1));
        assert_eq!(lifetime.access_until, None);
        assert!(has_access(
            lifetime.state,
            lifetime.access_until,
            at(1) + Duration::days(5000)
        ));
    }

    #[test]
    fn cancel_keeps_access_until_payload_date_or_period_end() {
        let active = Transition::Purchase.apply(None, &plan(false), at(1));
        let with_date = Transition::Cancel {
            ends_at: Some(at(20)),
        }
        .apply(Some(&active), &plan(false), at(2));
        assert_eq!(with_date.state, SubscriptionState::Canceled);
        assert_eq!(with_date.access_until, Some(at(20)));
        let without =
            Transition::Cancel { ends_at: None }.apply(Some(&active), &plan(false), at(2));
        assert_eq!(without.access_until, active.period_end);
        assert!(has_access(without.state, without.access_until, at(3)));
    }

    #[test]
    fn renew_extends_from_running_period_and_reactivates() {
        let active = Transition::Purchase.apply(None, &plan(false), at(1));
        let canceled =
            Transition::Cancel { ends_at: None }.apply(Some(&active), &plan(false), at(2));
        let renewed = Transition::Renew.apply(Some(&canceled), &plan(false), at(3));
        assert_eq!(renewed.state, SubscriptionState::Active);
        assert_eq!(renewed.period_end, Some(at(1) + Duration::days(730)));
    }

    #[test]
    fn expire_removes_access() {
        let active = Transition::Purchase.apply(None, &plan(false), at(1));
        let expired = Transition::Expire.apply(Some(&active), &plan(false), at(2));
        assert_eq!(expired.state, SubscriptionState::Expired);
        assert!(!has_access(expired.state, expired.access_until, at(2)));
    }

    #[test]
    fn states_round_trip() {
        use SubscriptionState::*;
        for s in [
            Active, Trialing, PastDue, Canceled, Expired, Refunded, Suspended,
        ] {
            assert_eq!(SubscriptionState::parse(s.as_str()), Some(s));
        }
        assert_eq!(SubscriptionState::parse("unknown"), None);
    }
}
