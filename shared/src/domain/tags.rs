//! Kajabi tags: the order of changes to one member's tag. Kajabi's tag hooks
//! carry no event time, only the contact's `updated_at`, which a tag change
//! moves; so that orders them, and at the same instant a removal wins (a
//! fixed rule, so every arrival order ends the same).

use chrono::{DateTime, Utc};

/// When a change to a tag happened, as stored: sortable as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagStamp {
    pub at_millis: i64,
    /// 0 for an addition, 1 for a removal.
    pub rank: u8,
}

impl TagStamp {
    pub fn new(at: DateTime<Utc>, added: bool) -> Self {
        Self {
            at_millis: at.timestamp_millis().max(0),
            rank: u8::from(!added),
        }
    }

    /// Fixed width, so stored stamps compare as text in a condition.
    pub fn encode(&self) -> String {
        format!("{:015}#{}", self.at_millis, self.rank)
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let (at, rank) = raw.split_once('#')?;
        Some(Self {
            at_millis: at.parse().ok()?,
            rank: rank.parse().ok()?,
        })
    }
}

/// What a tag change does to what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStep {
    /// Newer than what is stored (or the first): written, even when the tag's
    /// presence does not change, so an older change arriving later loses.
    Apply,
    /// The same change at the same instant, from another delivery.
    AlreadySo,
    /// Older than what is stored.
    Superseded,
}

pub fn tag_step(stored: Option<TagStamp>, incoming: TagStamp) -> TagStep {
    match stored {
        None => TagStep::Apply,
        Some(stored) if incoming > stored => TagStep::Apply,
        Some(stored) if incoming == stored => TagStep::AlreadySo,
        Some(_) => TagStep::Superseded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
    }

    /// Plays changes in an order and returns whether the tag ends present.
    fn play(changes: &[(i64, bool)]) -> Option<bool> {
        let mut stored: Option<(TagStamp, bool)> = None;
        for (secs, added) in changes {
            let stamp = TagStamp::new(at(*secs), *added);
            if tag_step(stored.map(|s| s.0), stamp) == TagStep::Apply {
                stored = Some((stamp, *added));
            }
        }
        stored.map(|s| s.1)
    }

    #[test]
    fn every_order_of_changes_ends_as_the_latest_says() {
        let changes = [(1, true), (2, false), (3, true), (3, false), (5, true)];
        // All 120 orders.
        let mut orders: Vec<Vec<usize>> = vec![vec![]];
        for _ in 0..changes.len() {
            let mut next = Vec::new();
            for order in &orders {
                for i in 0..changes.len() {
                    if !order.contains(&i) {
                        let mut longer = order.clone();
                        longer.push(i);
                        next.push(longer);
                    }
                }
            }
            orders = next;
        }
        assert_eq!(orders.len(), 120);
        for order in orders {
            let played: Vec<(i64, bool)> = order.iter().map(|i| changes[*i]).collect();
            assert_eq!(play(&played), Some(true), "{played:?}");
        }
        // At one instant a removal wins, whichever came first.
        assert_eq!(play(&[(3, true), (3, false)]), Some(false));
        assert_eq!(play(&[(3, false), (3, true)]), Some(false));
    }

    #[test]
    fn the_same_change_twice_is_already_so_and_stamps_sort_as_text() {
        let stamp = TagStamp::new(at(1), true);
        assert_eq!(tag_step(Some(stamp), stamp), TagStep::AlreadySo);
        assert_eq!(TagStamp::parse(&stamp.encode()), Some(stamp));
        let later = TagStamp::new(at(1), false);
        assert!(stamp.encode() < later.encode());
        assert!(later.encode() < TagStamp::new(at(2), true).encode());
    }
}
