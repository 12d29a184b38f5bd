//! Provider text stored as it came, within a size that always fits the record.

/// `text` cut to at most `max_bytes` bytes at a character boundary, marked
/// with how long it was, so a stored record never outgrows DynamoDB's limits.
pub fn bounded(text: impl Into<String>, max_bytes: usize) -> String {
    let text = text.into();
    if text.len() <= max_bytes {
        return text;
    }
    let marker = format!("… ({} bytes)", text.len());
    let mut end = max_bytes.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_at_a_character_with_its_length() {
        assert_eq!(bounded("invoice.paid", 64), "invoice.paid");
        let long = "é".repeat(100); // 200 bytes
        let cut = bounded(long.clone(), 64);
        assert!(cut.len() <= 64, "{} bytes", cut.len());
        assert!(cut.ends_with("… (200 bytes)"), "{cut}");
        assert!(long.starts_with(cut.trim_end_matches("… (200 bytes)")));
        assert_eq!(bounded("", 0), "");
    }
}
