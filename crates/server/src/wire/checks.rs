//! D1's order of checks, as types: a format error answers at once, while a value error waits
//! until every format check of the request has passed, and then the first one answers.
//!
//! A check that passed its format phase is a [`Checked`]: its value or its value error.
//! [`Finish::finish`] ends the format phase over a tuple of them and hands back the values, so
//! no handler has to unwrap an `Option` that "cannot" be empty.

use std::ops::RangeInclusive;

use d1_domain::{FieldError, FieldErrorKind, IdError};

/// The outcome of a check whose format passed: its value, or the value error to report once
/// the format phase is over.
#[must_use]
pub struct Checked<T>(Result<T, FieldError>);

/// Splits a check's result: a format error is returned at once, a value error is kept.
///
/// # Errors
/// A format error.
pub fn check<T>(result: Result<T, FieldError>) -> Result<Checked<T>, FieldError> {
    match result {
        Err(e) if e.kind == FieldErrorKind::Format => Err(e),
        other => Ok(Checked(other)),
    }
}

impl<T> Checked<T> {
    /// A check that passed.
    pub fn ok(value: T) -> Self {
        Self(Ok(value))
    }

    /// Maps the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Checked<U> {
        Checked(self.0.map(f))
    }

    /// Applies a later value rule to the value; an earlier error is kept.
    pub fn and_value(self, rule: impl FnOnce(&T) -> Result<(), FieldError>) -> Self {
        Self(self.0.and_then(|v| rule(&v).map(|()| v)))
    }

    /// Both values, or the first error of the two (this one's first).
    pub fn and<U>(self, other: Checked<U>) -> Checked<(T, U)> {
        Checked(self.0.and_then(|a| other.0.map(|b| (a, b))))
    }
}

impl<T> FromIterator<Checked<T>> for Checked<Vec<T>> {
    /// Every value in order, or the first error.
    fn from_iter<I: IntoIterator<Item = Checked<T>>>(iter: I) -> Self {
        Self(iter.into_iter().map(|c| c.0).collect())
    }
}

/// A whole number of the query: `default` when absent. Anything but an optional minus and
/// digits is a format error; a whole number outside `range` is a value error saying `allowed`.
///
/// # Errors
/// The field's format or value error.
pub fn whole_number(
    raw: Option<&str>,
    field: &str,
    range: RangeInclusive<u64>,
    default: u64,
    allowed: &'static str,
) -> Result<u64, FieldError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::format(field, "must be a whole number"));
    }
    // Only a number too long for an i128 fails to parse, and it is far out of range either
    // way. Past u64::MAX is taken as u64::MAX: for `offset`, past the end of any trail.
    let value = raw
        .parse::<i128>()
        .unwrap_or(if raw.starts_with('-') {
            i128::MIN
        } else {
            i128::MAX
        })
        .min(i128::from(u64::MAX));
    let allowed_range = i128::from(*range.start())..=i128::from(*range.end());
    match u64::try_from(value) {
        Ok(v) if allowed_range.contains(&value) => Ok(v),
        _ => Err(FieldError::value(field, allowed)),
    }
}

/// Ends the format phase of a request.
pub trait Finish {
    /// The checked values.
    type Output;

    /// The values, or the first value error in the order given, which is the order the
    /// checks were made in.
    ///
    /// # Errors
    /// That value error.
    fn finish(self) -> Result<Self::Output, FieldError>;
}

impl<T> Finish for Checked<T> {
    type Output = T;

    fn finish(self) -> Result<T, FieldError> {
        self.0
    }
}

macro_rules! finish_tuple {
    ($($t:ident $v:ident),+) => {
        impl<$($t),+> Finish for ($(Checked<$t>,)+) {
            type Output = ($($t,)+);

            fn finish(self) -> Result<Self::Output, FieldError> {
                let ($($v,)+) = self;
                Ok(($($v.0?,)+))
            }
        }
    };
}

finish_tuple!(A a);
finish_tuple!(A a, B b);
finish_tuple!(A a, B b, C c);
finish_tuple!(A a, B b, C c, D d);

/// Maps an identifier refusal to its field error.
pub fn id_error(field: &str, e: IdError) -> FieldError {
    match e {
        IdError::Format => FieldError::format(field, "does not match the identifier pattern"),
        IdError::Pan => FieldError::value(field, "must not carry a card number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_answers_at_once_and_the_first_value_error_waits() {
        assert!(check::<()>(Err(FieldError::format("a", "x"))).is_err());
        let first = check::<u8>(Err(FieldError::value("first", "x"))).unwrap();
        let second = check::<u8>(Err(FieldError::value("second", "x"))).unwrap();
        let fine = Checked::ok(1u8);
        assert_eq!((fine, first, second).finish().unwrap_err().field, "first");
        let (a, b) = (Checked::ok(1u8), Checked::ok("b")).finish().unwrap();
        assert_eq!((a, b), (1, "b"));
    }

    #[test]
    fn collected_checks_keep_the_first_error_and_later_rules_the_earlier_one() {
        let all: Checked<Vec<u8>> = [Checked::ok(1), Checked(Err(FieldError::value("x", "y")))]
            .into_iter()
            .collect();
        assert_eq!(all.finish().unwrap_err().field, "x");
        let kept = Checked::<u8>(Err(FieldError::value("early", "y")))
            .and_value(|_| Err(FieldError::value("late", "y")));
        assert_eq!(kept.finish().unwrap_err().field, "early");
    }
}
