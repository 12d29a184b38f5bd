//! One scale that orders events of the same second, for every provider. A
//! watermark is the event's time plus its rank (`Watermark`): of two events
//! in one second, the later stage of a subscription's life wins, so a
//! `created(incomplete)` delivered after an `updated(active)` of the same
//! second changes nothing. Providers map their events onto this scale
//! (`providers::stripe::lifecycle_rank`, and the Paystack and Kajabi rules).

/// Stripe's `incomplete`: created, first payment pending.
pub const INCOMPLETE: i64 = 0;
/// A trial.
pub const TRIALING: i64 = 10;
/// Active: an activation, a payment, a purchase, a renewal.
pub const ACTIVE: i64 = 20;
/// Canceled at period end: still active, winding down. One above its state.
pub const WINDING_DOWN: i64 = 1;
pub const CANCELING: i64 = ACTIVE + WINDING_DOWN;
/// A failed payment, in dunning.
pub const PAST_DUE: i64 = 30;
/// Held without access (Stripe's `unpaid`, `paused`).
pub const SUSPENDED: i64 = 40;
/// Ended: canceled or deleted, expired, disabled, refunded.
pub const ENDED: i64 = 50;

// Winding down stays inside its stage.
const _: () = assert!(TRIALING + WINDING_DOWN < ACTIVE && PAST_DUE + WINDING_DOWN < SUSPENDED);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_stages_rank_higher() {
        let scale = [
            INCOMPLETE, TRIALING, ACTIVE, CANCELING, PAST_DUE, SUSPENDED, ENDED,
        ];
        assert!(scale.windows(2).all(|w| w[0] < w[1]), "{scale:?}");
    }
}
