//! Identifiers of the D1 API. Each is a newtype with a private field, built by `parse`.

use std::fmt;

use crate::guard::{classify, IdShape};

/// Why an identifier was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong length or characters: `FIELD_INVALID_FORMAT`.
    #[error("does not match the identifier pattern")]
    Format,
    /// A PAN where an identifier was expected: `FIELD_INVALID_VALUE`.
    #[error("must not carry a card number")]
    Pan,
}

pub(crate) fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn check(value: &str, max: usize, allowed: impl Fn(u8) -> bool) -> Result<(), IdError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(allowed) {
        return Err(IdError::Format);
    }
    Ok(())
}

pub(crate) fn check_guarded(
    value: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<IdShape, IdError> {
    check(value, max, allowed)?;
    match classify(value) {
        IdShape::Pan => Err(IdError::Pan),
        shape => Ok(shape),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier as sent on the wire.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: exactly 10 ASCII letters or digits.
    IssuerId
);
id_type!(
    /// The issuer-chosen id of an end user, `^[A-Za-z0-9_-]{1,64}$`, never a PAN.
    ConsumerId
);
id_type!(
    /// The `x-correlation-id` header. Logged in clear, so it never holds a PAN.
    CorrelationId
);
id_type!(
    /// The informational `x-user-id` header, `^[A-Za-z0-9_-]{1,15}$`.
    UserId
);
id_type!(
    /// A key id (`kid`) of an issuer's assertion key or of a service key.
    Kid
);

impl IssuerId {
    /// Parses an issuer id.
    ///
    /// # Errors
    /// [`IdError::Format`] unless it is exactly 10 ASCII letters or digits.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.len() != 10 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IdError::Format);
        }
        Ok(Self(value.to_owned()))
    }
}

impl ConsumerId {
    /// Parses a consumer id and tells what the guard thinks of it.
    ///
    /// # Errors
    /// [`IdError::Format`] on pattern or length, [`IdError::Pan`] if it is a PAN.
    pub fn parse(value: &str) -> Result<(Self, IdShape), IdError> {
        let shape = check_guarded(value, 64, is_id_char)?;
        Ok((Self(value.to_owned()), shape))
    }
}

impl CorrelationId {
    /// Parses a v2 correlation id, `^[A-Za-z0-9_-]{1,64}$`.
    ///
    /// # Errors
    /// [`IdError::Format`] on pattern or length, [`IdError::Pan`] if it is a PAN.
    pub fn parse_v2(value: &str) -> Result<Self, IdError> {
        check_guarded(value, 64, is_id_char)?;
        Ok(Self(value.to_owned()))
    }

    /// Parses a v1 correlation id, which may also hold `.` and spaces.
    ///
    /// # Errors
    /// [`IdError::Format`] on pattern or length, [`IdError::Pan`] if it is a PAN (spaces and
    /// dots are ignored when looking for one).
    pub fn parse_v1(value: &str) -> Result<Self, IdError> {
        check(value, 64, |b| is_id_char(b) || b == b'.' || b == b' ')?;
        let digits: String = value.chars().filter(|c| *c != ' ' && *c != '.').collect();
        if classify(&digits) == IdShape::Pan {
            return Err(IdError::Pan);
        }
        Ok(Self(value.to_owned()))
    }

    /// A fresh correlation id for a request that came without a usable one.
    #[must_use]
    pub fn generated(seed: &str) -> Self {
        Self(seed.to_owned())
    }
}

impl UserId {
    /// Parses an `x-user-id`.
    ///
    /// # Errors
    /// [`IdError::Format`] on pattern or length, [`IdError::Pan`] never (15 characters cannot
    /// hold a PAN that the guard would not also see as a phone number).
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check(value, 15, is_id_char)?;
        Ok(Self(value.to_owned()))
    }
}

impl Kid {
    /// Parses a key id: 1 to 128 visible ASCII characters.
    ///
    /// # Errors
    /// [`IdError::Format`] otherwise.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check(value, 128, |b| b.is_ascii_graphic())?;
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn issuer_ids_are_exactly_ten_alphanumerics() {
        assert!(IssuerId::parse("BANK000001").is_ok());
        assert_eq!(IssuerId::parse("BANK00001"), Err(IdError::Format));
        assert_eq!(IssuerId::parse("BANK-00001"), Err(IdError::Format));
    }

    #[test]
    fn consumer_ids_refuse_dots_non_ascii_and_length() {
        assert!(ConsumerId::parse("c_1-A").is_ok());
        assert_eq!(ConsumerId::parse("a.b").unwrap_err(), IdError::Format);
        assert_eq!(ConsumerId::parse("jérôme").unwrap_err(), IdError::Format);
        assert_eq!(
            ConsumerId::parse(&"a".repeat(65)).unwrap_err(),
            IdError::Format
        );
        assert!(ConsumerId::parse(&"a".repeat(64)).is_ok());
        assert_eq!(ConsumerId::parse("").unwrap_err(), IdError::Format);
    }

    #[test]
    fn a_pan_is_refused_as_consumer_or_correlation_id() {
        assert_eq!(
            ConsumerId::parse("4111111111111111").unwrap_err(),
            IdError::Pan
        );
        assert_eq!(
            CorrelationId::parse_v2("4111111111111111").unwrap_err(),
            IdError::Pan
        );
        assert_eq!(
            CorrelationId::parse_v1("4111 1111 1111 1111").unwrap_err(),
            IdError::Pan
        );
    }

    #[test]
    fn a_phone_number_is_a_lookalike() {
        assert_eq!(
            ConsumerId::parse("33612345678").unwrap().1,
            IdShape::PhoneLike
        );
    }

    proptest! {
        #[test]
        fn every_pattern_conforming_id_parses(s in "[A-Za-z_-][A-Za-z0-9_-]{0,63}") {
            prop_assert!(ConsumerId::parse(&s).is_ok());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = ConsumerId::parse(&s);
            let _ = CorrelationId::parse_v1(&s);
            let _ = IssuerId::parse(&s);
        }
    }
}
