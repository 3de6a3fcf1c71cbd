//! The rules of the two PI objects: a residency address and a mobile phone number.

use std::sync::LazyLock;

use regex::Regex;

use super::{free_text_format, nfc, to_nfc, Address, Phone};
use crate::country;
use crate::field::FieldError;

static COUNTRY_CALLING_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\+?[0-9]{1,3}$").expect("static pattern"));
static PHONE_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]{4,14}$").expect("static pattern"));
static ZIP_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9 -]{1,16}$").expect("static pattern"));
static ALPHA2: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z]{2}$").expect("static pattern"));

impl Address {
    /// NFC-normalises every line.
    #[must_use]
    pub fn normalised(self) -> Self {
        Self {
            line1: to_nfc(self.line1),
            line2: nfc(self.line2),
            line3: nfc(self.line3),
            city: nfc(self.city),
            state: nfc(self.state),
            zip_code: self.zip_code,
            country_code: self.country_code,
        }
    }

    /// Format rules, field names relative to the address.
    ///
    /// # Errors
    /// The first field that breaks its pattern or length.
    pub fn check_format(&self) -> Result<(), FieldError> {
        free_text_format("line1", Some(&self.line1), 128)?;
        free_text_format("line2", self.line2.as_ref(), 128)?;
        free_text_format("line3", self.line3.as_ref(), 128)?;
        free_text_format("city", self.city.as_ref(), 128)?;
        free_text_format("state", self.state.as_ref(), 128)?;
        if let Some(zip) = &self.zip_code {
            if !ZIP_CODE.is_match(zip) {
                return Err(FieldError::format(
                    "zipCode",
                    "must be 1 to 16 letters, digits, spaces or -",
                ));
            }
        }
        if !ALPHA2.is_match(&self.country_code) {
            return Err(FieldError::format(
                "countryCode",
                "must be two upper-case letters",
            ));
        }
        Ok(())
    }

    /// Value rules, field names relative to the address.
    ///
    /// # Errors
    /// A country code that ISO 3166-1 does not assign.
    pub fn check_value(&self) -> Result<(), FieldError> {
        if !country::is_assigned(&self.country_code) {
            return Err(FieldError::value(
                "countryCode",
                "is not an ISO 3166-1 alpha-2 code",
            ));
        }
        Ok(())
    }
}

impl Phone {
    pub(super) fn check_format(&self) -> Result<(), FieldError> {
        if !COUNTRY_CALLING_CODE.is_match(&self.country_code) {
            return Err(FieldError::format(
                "countryCode",
                "must be 1 to 3 digits, optionally after +",
            ));
        }
        if !PHONE_NUMBER.is_match(&self.phone_number) {
            return Err(FieldError::format("phoneNumber", "must be 4 to 14 digits"));
        }
        Ok(())
    }

    pub(super) fn check_value(&self) -> Result<(), FieldError> {
        let code = self.country_code.trim_start_matches('+');
        if code.starts_with('0') {
            return Err(FieldError::value(
                "countryCode",
                "is not a country calling code",
            ));
        }
        if code.len() + self.phone_number.len() > 15 {
            return Err(FieldError::value(
                "phoneNumber",
                "is longer than E.164 allows",
            ));
        }
        Ok(())
    }
}
