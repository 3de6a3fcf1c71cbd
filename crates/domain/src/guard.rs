//! The personal-data guard: identifiers must not carry a PAN or a phone number.
//!
//! D1 states the rule and nobody enforces it. We refuse PAN-shaped values outright and, by
//! default, only count phone-shaped ones, since many banks use numeric customer numbers.

use serde::{Deserialize, Serialize};

/// What an identifier looks like to the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdShape {
    /// Nothing personal recognised.
    Plain,
    /// All digits, of a phone number's length: suspicious but allowed by default.
    PhoneLike,
    /// 13 to 19 digits passing the Luhn check: a PAN, always refused.
    Pan,
}

/// What an issuer wants done with phone-shaped identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LookalikePolicy {
    /// Count and log a warning, accept the value.
    #[default]
    Warn,
    /// Refuse with `FIELD_INVALID_VALUE`.
    Refuse,
}

impl LookalikePolicy {
    /// The policy's name as written in configuration and the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Refuse => "refuse",
        }
    }

    /// Parses `warn` or `refuse`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warn" => Some(Self::Warn),
            "refuse" => Some(Self::Refuse),
            _ => None,
        }
    }
}

/// Classifies an identifier that already passed its pattern.
#[must_use]
pub fn classify(value: &str) -> IdShape {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return IdShape::Plain;
    }
    let len = value.len();
    if (13..=19).contains(&len) && luhn_valid(value) {
        IdShape::Pan
    } else if (7..=15).contains(&len) {
        IdShape::PhoneLike
    } else {
        IdShape::Plain
    }
}

/// The Luhn (mod 10) check over a string of ASCII digits. Anything else is invalid.
#[must_use]
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_test_pans_pass_luhn_and_are_pan_shaped() {
        for pan in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
        ] {
            assert!(luhn_valid(pan), "{pan}");
            assert_eq!(classify(pan), IdShape::Pan);
        }
    }

    #[test]
    fn a_bad_check_digit_is_not_a_pan() {
        assert!(!luhn_valid("4111111111111112"));
        assert_eq!(classify("4111111111111112"), IdShape::Plain);
    }

    #[test]
    fn phone_lengths_are_lookalikes_and_short_numbers_are_plain() {
        assert_eq!(classify("33612345678"), IdShape::PhoneLike);
        assert_eq!(classify("123456"), IdShape::Plain);
        assert_eq!(classify("abc-123"), IdShape::Plain);
    }

    proptest! {
        #[test]
        fn appending_the_right_check_digit_always_passes(body in "[0-9]{11,18}") {
            let check = (0..10).find(|d| luhn_valid(&format!("{body}{d}"))).unwrap();
            let pan = format!("{body}{check}");
            prop_assert!(luhn_valid(&pan));
            // Exactly one check digit in ten fits.
            let fits = (0..10).filter(|d| luhn_valid(&format!("{body}{d}"))).count();
            prop_assert_eq!(fits, 1);
        }

        #[test]
        fn classify_never_panics(s in "\\PC{0,40}") {
            let _ = classify(&s);
        }
    }
}
