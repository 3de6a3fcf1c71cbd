//! The cardholder name an enrolment may give (contract section 9): personal information, held
//! to the characters of the PI names and at most 26 of them.

use super::{char_len, to_nfc, NAME};
use crate::field::FieldError;

/// The most characters a cardholder name may have.
pub const CARDHOLDER_NAME_MAX: usize = 26;

/// A cardholder name: 1 to 26 letters, digits, Arabic letters, spaces or `,.'_#;:/-`
/// (`^[\p{L}\p{N}\u0600-\u06FF ,.'_#;:\/-]{1,26}$`), counted after NFC normalisation.
#[derive(Clone, PartialEq, Eq)]
pub struct CardholderName(String);

impl std::fmt::Debug for CardholderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardholderName(<redacted>)")
    }
}

impl CardholderName {
    /// Parses a cardholder name, NFC-normalised first.
    ///
    /// # Errors
    /// A format error naming `field` (never quoting the name) unless it follows the pattern.
    pub fn parse(value: String, field: &str) -> Result<Self, FieldError> {
        let value = to_nfc(value);
        if value.is_empty() || char_len(&value) > CARDHOLDER_NAME_MAX || !NAME.is_match(&value) {
            return Err(FieldError::format(
                field,
                "must be 1 to 26 letters, digits, spaces or ,.'_#;:/-",
            ));
        }
        Ok(Self(value))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_any_script_up_to_26_characters_are_accepted() {
        for name in [
            "A",
            "Jean-Luc O'Neil",
            "محمد علي",
            "Zoë Ünal",
            "Dr. J; K: L/M #2_x",
        ] {
            assert_eq!(
                CardholderName::parse(name.into(), "n").unwrap().as_str(),
                name
            );
        }
        let longest = "A".repeat(26);
        assert!(CardholderName::parse(longest, "n").is_ok());
        // A decomposed "é" counts as one character once normalised.
        let decomposed = format!("{}e\u{301}", "A".repeat(25));
        let parsed = CardholderName::parse(decomposed, "n").unwrap();
        assert_eq!(parsed.as_str().chars().count(), 26);
    }

    #[test]
    fn an_empty_long_or_odd_name_is_a_format_error_that_does_not_quote_it() {
        for name in [
            String::new(),
            "A".repeat(27),
            "Ann$".into(),
            "Ann\n".into(),
            "a@b".into(),
        ] {
            let e = CardholderName::parse(name.clone(), "cardholderName").unwrap_err();
            assert_eq!(e.kind, crate::FieldErrorKind::Format);
            assert_eq!(e.field, "cardholderName");
            assert!(name.is_empty() || !e.to_string().contains(&name));
        }
    }
}
