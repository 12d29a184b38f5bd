use std::fmt;

/// An email address, always normalized (trimmed, lowercased). Parsing is the
/// only way to get one, so every `Email` in the system can be used as a key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is empty")]
    Empty,
    #[error("email is longer than 254 characters")]
    TooLong,
    #[error("email contains whitespace or control characters")]
    InvalidCharacter,
    #[error("email must have one '@' with a local part and a domain containing a dot")]
    Shape,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > 254 {
            return Err(EmailError::TooLong);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::InvalidCharacter);
        }
        let normalized = trimmed.to_lowercase();
        let mut parts = normalized.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::Shape);
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err(EmailError::Shape);
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug output masks the local part so an accidental `{:?}` in a log line
/// does not leak the address.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (local, domain) = self.0.split_once('@').unwrap_or(("", &self.0));
        let first = local.chars().next().unwrap_or('?');
        write!(f, "Email({first}***@{domain})")
    }
}

/// `text` with every email address in it replaced by `<email>`, for error
/// text from elsewhere (an SES rejection names the address it refused) that is
/// logged or stored. A word (a run without whitespace) holding `@` with a `.`
/// after it is taken whole, keeping the brackets and punctuation around it, so
/// every address `Email::parse` accepts goes, whatever it is made of; a few
/// words that only look like addresses go with them.
pub fn redact_emails(text: &str) -> String {
    let edge = |c: char| "<>()[]{}\"'`,;:.!?".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let looks_like_address = word
            .split_once('@')
            .is_some_and(|(_, after)| after.contains('.'));
        if looks_like_address {
            let start = word.len() - word.trim_start_matches(edge).len();
            let end = word.trim_end_matches(edge).len().max(start);
            out.push_str(&word[..start]);
            out.push_str("<email>");
            out.push_str(&word[end..]);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_address_and_nothing_else() {
        // SES's wording for an unverified recipient in the sandbox.
        let ses = "MessageRejected: Email address is not verified. The following identities failed the check in region US-EAST-1: Ada.Lovelace+vip@Example.com, bob@mail.example.org.";
        assert_eq!(
            redact_emails(ses),
            "MessageRejected: Email address is not verified. The following identities failed the check in region US-EAST-1: <email>, <email>."
        );
        assert_eq!(redact_emails("<a@b.co>"), "<<email>>");
        assert_eq!(
            redact_emails("no address @ here, user@localhost"),
            "no address @ here, user@localhost"
        );
        assert_eq!(redact_emails("ünï@exämple.com"), "<email>");
        assert_eq!(redact_emails(""), "");
    }

    #[test]
    fn normalizes_case_and_whitespace() {
        let email = Email::parse("  John.Doe@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "john.doe@example.com");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
        assert_eq!(Email::parse("no-at.example.com"), Err(EmailError::Shape));
        assert_eq!(Email::parse("a@b@c.com"), Err(EmailError::Shape));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::Shape));
        assert_eq!(Email::parse("a@localhost"), Err(EmailError::Shape));
        assert_eq!(Email::parse("a@.example.com"), Err(EmailError::Shape));
        assert_eq!(
            Email::parse("a b@example.com"),
            Err(EmailError::InvalidCharacter)
        );
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn debug_masks_local_part() {
        let email = Email::parse("secret.person@example.com").unwrap();
        let shown = format!("{email:?}");
        assert!(!shown.contains("secret.person"), "{shown}");
        assert_eq!(shown, "Email(s***@example.com)");
    }
}
