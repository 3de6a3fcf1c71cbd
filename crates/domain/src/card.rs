//! Card data: PANs, expiries, schemes, the card identifiers, a card's state and the data
//! sealed at rest with its holder's.
//!
//! A [`Pan`] never prints: its `Debug` shows only the last four digits, and nothing else
//! exposes the digits but [`Pan::digits`], used to seal and to MAC it.

use std::fmt;

use time::{Date, Month};
use zeroize::Zeroizing;

use crate::field::FieldError;
use crate::guard::luhn_valid;
use crate::ids::{check_guarded, is_id_char, IdError};

pub mod lifecycle;

fn card_like_id(value: &str) -> Result<(), IdError> {
    check_guarded(value, 48, is_id_char).map(|_| ())
}

/// A card id, `^[A-Za-z0-9_-]{1,48}$`, never a PAN.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CardId(String);

/// A card product id, `^[A-Za-z0-9_-]{1,48}$`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CardProductId(String);

impl CardId {
    /// Parses a card id.
    ///
    /// # Errors
    /// [`IdError::Format`] on pattern or length, [`IdError::Pan`] if it is a PAN.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        card_like_id(value).map(|()| Self(value.to_owned()))
    }

    /// The id as sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl CardProductId {
    /// Parses a card product id.
    ///
    /// # Errors
    /// [`IdError::Format`] on pattern or length, [`IdError::Pan`] if it is a PAN.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        card_like_id(value).map(|()| Self(value.to_owned()))
    }

    /// The id as sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A card scheme, as configured on a product or recognised from a PAN's leading digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Other,
}

impl Scheme {
    /// The scheme's wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "VISA",
            Self::Mastercard => "MASTERCARD",
            Self::Amex => "AMEX",
            Self::Discover => "DISCOVER",
            Self::Other => "OTHER",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "VISA" => Some(Self::Visa),
            "MASTERCARD" => Some(Self::Mastercard),
            "AMEX" => Some(Self::Amex),
            "DISCOVER" => Some(Self::Discover),
            "OTHER" => Some(Self::Other),
            _ => None,
        }
    }

    /// The scheme a PAN's leading digits belong to.
    #[must_use]
    pub fn of(pan: &Pan) -> Self {
        let d = pan.digits();
        let prefix = |n: usize| d.get(..n).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        match (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6)) {
            (4, ..) => Self::Visa,
            (_, 51..=55, ..) | (_, _, _, 2221..=2720, _) => Self::Mastercard,
            (_, 34 | 37, ..) => Self::Amex,
            (_, 65, ..) | (_, _, 644..=649, ..) | (_, _, _, 6011, _) | (.., 622_126..=622_925) => {
                Self::Discover
            }
            _ => Self::Other,
        }
    }
}

/// A primary account number: 12 to 19 digits passing Luhn.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(Zeroizing<String>);

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan(…{})", self.last4())
    }
}

impl Pan {
    /// Parses a PAN.
    ///
    /// # Errors
    /// A value error (never quoting the digits) unless it is 12 to 19 digits passing Luhn.
    pub fn parse(value: &str, field: &str) -> Result<Self, FieldError> {
        if !(12..=19).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::value(field, "the PAN must be 12 to 19 digits"));
        }
        if !luhn_valid(value) {
            return Err(FieldError::value(field, "the PAN fails the Luhn check"));
        }
        Ok(Self(Zeroizing::new(value.to_owned())))
    }

    /// A PAN of `length` digits starting with `bin`, filled from `random` (digits 0 to 9),
    /// with the Luhn check digit last.
    #[must_use]
    pub fn allocate(bin: &str, length: usize, random: &mut dyn FnMut() -> u8) -> Self {
        let mut body: String = bin.chars().filter(char::is_ascii_digit).collect();
        while body.len() + 1 < length {
            body.push(char::from(b'0' + random() % 10));
        }
        let check = (0u8..10)
            .find(|d| luhn_valid(&format!("{body}{d}")))
            .unwrap_or(0);
        body.push(char::from(b'0' + check));
        Self(Zeroizing::new(body))
    }

    /// The digits, for sealing and MACing only.
    #[must_use]
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// The last four digits, kept for display.
    #[must_use]
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

/// A card expiry month, `MMYY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    month: u8,
    year: u16,
}

impl Expiry {
    /// Parses `MMYY`, refusing impossible months and months already past `today`.
    ///
    /// # Errors
    /// A value error naming `field`.
    pub fn parse(value: &str, today: Date, field: &str) -> Result<Self, FieldError> {
        let (Some(mm), Some(yy), true) = (
            value.get(..2),
            value.get(2..),
            value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()),
        ) else {
            return Err(FieldError::value(field, "exp must be MMYY"));
        };
        let month: u8 = mm.parse().unwrap_or(0);
        let year = 2000 + yy.parse::<u16>().unwrap_or(0);
        if !(1..=12).contains(&month) {
            return Err(FieldError::value(field, "exp is not a real month"));
        }
        let expiry = Self { month, year };
        if (i32::from(year), month) < (today.year(), u8::from(today.month())) {
            return Err(FieldError::value(field, "the card has expired"));
        }
        Ok(expiry)
    }

    /// `months` after `today`'s month.
    #[must_use]
    pub fn months_after(today: Date, months: u32) -> Self {
        let total = u32::try_from(today.year()).unwrap_or(2000) * 12
            + u32::from(u8::from(today.month()))
            - 1
            + months;
        Self {
            month: u8::try_from(total % 12 + 1).unwrap_or(1),
            year: u16::try_from(total / 12).unwrap_or(2099),
        }
    }

    /// Reads a stored `MMYY`, past or not; `None` unless it is a real month.
    #[must_use]
    pub fn stored(value: &str) -> Option<Self> {
        let digits = value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit());
        let month: u8 = value.get(..2).filter(|_| digits)?.parse().ok()?;
        let year = 2000 + value.get(2..)?.parse::<u16>().ok()?;
        (1..=12).contains(&month).then_some(Self { month, year })
    }

    /// Whether this month comes after `other`.
    #[must_use]
    pub fn is_after(self, other: Self) -> bool {
        (self.year, self.month) > (other.year, other.month)
    }

    /// `MMYY`.
    #[must_use]
    pub fn mmyy(self) -> String {
        format!("{:02}{:02}", self.month, self.year % 100)
    }

    /// The month, 1 to 12.
    #[must_use]
    pub fn month(self) -> Month {
        Month::try_from(self.month).unwrap_or(Month::January)
    }
}

/// The state of a card (contract section 6, "Card life cycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardState {
    Active,
    Inactive,
    /// Suspended with a reason; the reason decides how it may be resumed.
    Suspended,
    /// Final: deleted, its sealed data shredded.
    Deleted,
    /// Final: replaced by another card; its cardId may be reused, its PAN never.
    Replaced,
}

impl CardState {
    /// The wire and database form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Deleted => "DELETED",
            Self::Replaced => "REPLACED",
        }
    }

    /// Parses the wire form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "INACTIVE" => Some(Self::Inactive),
            "SUSPENDED" => Some(Self::Suspended),
            "DELETED" => Some(Self::Deleted),
            "REPLACED" => Some(Self::Replaced),
            _ => None,
        }
    }

    /// Whether no operation can change the card any more: DELETED or REPLACED.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Deleted | Self::Replaced)
    }
}

/// The card data sealed at rest: PAN and expiry, and for created cards the cardholder
/// names and accounts (personal data too).
#[derive(Debug, Clone)]
pub struct CardData {
    pub pan: Pan,
    pub expiry: Expiry,
    pub holder: Option<HolderData>,
}

/// Cardholder names and accounts of a created card, already validated.
#[derive(Clone, Default)]
pub struct HolderData(pub serde_json::Map<String, serde_json::Value>);

impl std::fmt::Debug for HolderData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HolderData(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn pans_need_12_to_19_digits_and_luhn() {
        assert!(Pan::parse("4111111111111111", "pan").is_ok());
        assert!(Pan::parse("4111111111111112", "pan").is_err());
        assert!(Pan::parse("41111111111", "pan").is_err());
        assert!(Pan::parse("4111 1111 1111 1111", "pan").is_err());
        assert_eq!(
            format!("{:?}", Pan::parse("4111111111111111", "pan").unwrap()),
            "Pan(…1111)"
        );
    }

    #[test]
    fn expiries_are_real_months_not_yet_past() {
        let today = date!(2026 - 11 - 25);
        assert!(Expiry::parse("1126", today, "exp").is_ok());
        assert!(Expiry::parse("1026", today, "exp").is_err());
        assert!(Expiry::parse("1399", today, "exp").is_err());
        assert!(Expiry::parse("0030", today, "exp").is_err());
        assert_eq!(Expiry::months_after(today, 36).mmyy(), "1129");
        let (old, new) = (
            Expiry::stored("1225").unwrap(),
            Expiry::stored("0126").unwrap(),
        );
        assert!(new.is_after(old) && !old.is_after(new) && !old.is_after(old));
        assert_eq!(Expiry::stored("1325"), None);
        assert_eq!(Expiry::stored("12x5"), None);
        assert_eq!(
            Expiry::months_after(date!(2026 - 12 - 01), 1).mmyy(),
            "0127"
        );
    }

    #[test]
    fn schemes_come_from_leading_digits() {
        let scheme = |p: &str| Scheme::of(&Pan::parse(p, "pan").unwrap());
        assert_eq!(scheme("4111111111111111"), Scheme::Visa);
        assert_eq!(scheme("5555555555554444"), Scheme::Mastercard);
        assert_eq!(scheme("2223003122003222"), Scheme::Mastercard);
        assert_eq!(scheme("378282246310005"), Scheme::Amex);
        assert_eq!(scheme("6011111111111117"), Scheme::Discover);
    }

    proptest::proptest! {
        #[test]
        fn an_allocated_pan_passes_luhn_and_keeps_its_bin(bin in "[1-9][0-9]{5,7}", seed in proptest::prelude::any::<u64>(), amex in proptest::prelude::any::<bool>()) {
            let mut state = seed;
            let mut random = || { state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1); u8::try_from(state >> 56).unwrap_or(0) };
            let length = if amex { 15 } else { 16 };
            let pan = Pan::allocate(&bin, length, &mut random);
            proptest::prop_assert_eq!(pan.digits().len(), length);
            proptest::prop_assert!(pan.digits().starts_with(&bin));
            proptest::prop_assert!(Pan::parse(pan.digits(), "pan").is_ok());
        }
    }

    #[test]
    fn card_ids_refuse_pans_and_long_values() {
        assert_eq!(CardId::parse("4111111111111111"), Err(IdError::Pan));
        assert_eq!(CardId::parse(&"c".repeat(49)), Err(IdError::Format));
        assert!(CardId::parse(&"c".repeat(48)).is_ok());
    }
}
