//! Rate-limit counters.

use super::*;

impl Tx {
    /// Adds one to a counter, failing the transaction if it already reached `limit`.
    pub fn count_within(
        &mut self,
        scope: &str,
        bucket: &str,
        limit: u32,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::rate(scope, bucket), keys::RATE)))
                .update_expression("ADD #count :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .set_expression_attribute_names(names(&[("#count", "count"), ("#ttl", "ttl")]))
                .set_expression_attribute_values(values(vec![
                    (":one", n(1)),
                    (":limit", n(limit)),
                    (":ttl", n(expires_at.timestamp())),
                ])),
        )
    }
}
