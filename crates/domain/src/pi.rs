//! Personal information (PI) and its field rules (contract section 5).
//!
//! Parsing runs in two passes so that the answer follows D1's order of checks: every format
//! rule of every field first (`FIELD_INVALID_FORMAT`), then the value rules
//! (`FIELD_INVALID_VALUE`). Within a pass, fields are checked in the documented order and the
//! first one in error is named. Strings are NFC-normalised before lengths are counted.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::field::FieldError;

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\p{L}\p{N}\x{0600}-\x{06FF} ,.'_#;:/-]+$").expect("static pattern")
});
static LANGUAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]{2}-[a-zA-Z]{2}$").expect("static pattern"));
static DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$").expect("static pattern"));
/// The fields Click to Pay needs whenever PI is sent, in the order they are checked.
pub const CLICK_TO_PAY_MANDATORY: [&str; 5] = [
    "language",
    "firstName",
    "lastName",
    "email",
    "mobilePhoneNumber",
];

/// A mobile phone number as D1 carries it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Phone {
    pub country_code: String,
    pub phone_number: String,
}

/// A postal address (`residencyAddress`, and the Click to Pay `billingAddress`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
    pub country_code: String,
}

/// Validated personal information. Built only by [`PersonalInformation::parse`]; the serde
/// derives serve the encrypted at-rest form, which only this service writes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::struct_field_names)]
pub struct PersonalInformation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mobile_phone_number: Option<Phone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    residency_address: Option<Address>,
}

impl std::fmt::Debug for PersonalInformation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalInformation(<redacted>)")
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Address(<redacted>)")
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Phone(<redacted>)")
    }
}

/// Raw PI as it arrives, after JSON types were checked and before any field rule.
#[derive(Default, Clone)]
pub struct PersonalInformationInput {
    pub language: Option<String>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub email: Option<String>,
    pub mobile_phone_number: Option<Phone>,
    pub residency_address: Option<Address>,
}

fn nfc(value: Option<String>) -> Option<String> {
    value.map(to_nfc)
}

/// NFC form of `value`; ASCII, the common case, is already in it.
fn to_nfc(value: String) -> String {
    if value.is_ascii() {
        value
    } else {
        value.nfc().collect()
    }
}

fn char_len(value: &str) -> usize {
    value.chars().count()
}

fn name_format(field: &str, value: Option<&String>, max: usize) -> Result<(), FieldError> {
    let detail = if max == 40 {
        "must be 1 to 40 letters, digits, spaces or ,.'_#;:/-"
    } else {
        "must be 1 to 128 letters, digits, spaces or ,.'_#;:/-"
    };
    match value {
        Some(v) if char_len(v) > max || !NAME.is_match(v) => Err(FieldError::format(field, detail)),
        _ => Ok(()),
    }
}

fn free_text_format(field: &str, value: Option<&String>, max: usize) -> Result<(), FieldError> {
    match value {
        Some(v) if v.is_empty() || char_len(v) > max || v.chars().any(char::is_control) => {
            Err(FieldError::format(
                field,
                "must be 1 to 128 characters without control characters",
            ))
        }
        _ => Ok(()),
    }
}

fn valid_date(value: &str) -> bool {
    let mut parts = value.split('-').map(str::parse::<u32>);
    let (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(year) = i32::try_from(year) else {
        return false;
    };
    let Ok(month) = u8::try_from(month)
        .map_err(|_| ())
        .and_then(|m| time::Month::try_from(m).map_err(|_| ()))
    else {
        return false;
    };
    year >= 1900 && day >= 1 && day <= u32::from(time::util::days_in_month(month, year))
}

impl PersonalInformation {
    /// Applies every field rule of section 5 to raw input.
    ///
    /// # Errors
    /// The first field in error: format errors of any field before value errors.
    pub fn parse(input: PersonalInformationInput) -> Result<Self, FieldError> {
        let pi = Self {
            language: input.language,
            title: nfc(input.title),
            first_name: nfc(input.first_name),
            middle_name: nfc(input.middle_name),
            last_name: nfc(input.last_name),
            date_of_birth: input.date_of_birth,
            email: nfc(input.email),
            mobile_phone_number: input.mobile_phone_number,
            residency_address: input.residency_address.map(Address::normalised),
        };
        pi.check_format()?;
        pi.check_value()?;
        Ok(pi)
    }

    fn check_format(&self) -> Result<(), FieldError> {
        if let Some(language) = &self.language {
            if !LANGUAGE.is_match(language) {
                return Err(FieldError::format("language", "must look like en-US"));
            }
        }
        name_format("title", self.title.as_ref(), 40)?;
        name_format("firstName", self.first_name.as_ref(), 128)?;
        name_format("middleName", self.middle_name.as_ref(), 128)?;
        name_format("lastName", self.last_name.as_ref(), 128)?;
        if let Some(date) = &self.date_of_birth {
            if !DATE.is_match(date) {
                return Err(FieldError::format("dateOfBirth", "must be YYYY-MM-DD"));
            }
        }
        if let Some(email) = &self.email {
            if char_len(email) > 254 || !email_address::EmailAddress::is_valid(email) {
                return Err(FieldError::format(
                    "email",
                    "must be an e-mail address of at most 254 characters",
                ));
            }
        }
        if let Some(phone) = &self.mobile_phone_number {
            phone
                .check_format()
                .map_err(|e| e.under("mobilePhoneNumber"))?;
        }
        if let Some(address) = &self.residency_address {
            address
                .check_format()
                .map_err(|e| e.under("residencyAddress"))?;
        }
        Ok(())
    }

    fn check_value(&self) -> Result<(), FieldError> {
        if self.is_empty() {
            return Err(FieldError::value(
                "personalInformation",
                "must hold at least one field",
            ));
        }
        if let Some(date) = &self.date_of_birth {
            if !valid_date(date) {
                return Err(FieldError::value("dateOfBirth", "is not a real date"));
            }
        }
        if let Some(phone) = &self.mobile_phone_number {
            phone
                .check_value()
                .map_err(|e| e.under("mobilePhoneNumber"))?;
        }
        if let Some(address) = &self.residency_address {
            address
                .check_value()
                .map_err(|e| e.under("residencyAddress"))?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.language.is_none()
            && self.title.is_none()
            && self.first_name.is_none()
            && self.middle_name.is_none()
            && self.last_name.is_none()
            && self.date_of_birth.is_none()
            && self.email.is_none()
            && self.mobile_phone_number.is_none()
            && self.residency_address.is_none()
    }

    /// The first Click to Pay mandatory field that is missing, if any.
    #[must_use]
    pub fn missing_click_to_pay_field(&self) -> Option<&'static str> {
        let present = [
            self.language.is_some(),
            self.first_name.is_some(),
            self.last_name.is_some(),
            self.email.is_some(),
            self.mobile_phone_number.is_some(),
        ];
        CLICK_TO_PAY_MANDATORY
            .iter()
            .zip(present)
            .find(|(_, p)| !p)
            .map(|(name, _)| *name)
    }

    /// `language`, such as `en-US`.
    #[must_use]
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }
    /// `title`.
    #[must_use]
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    /// `firstName`.
    #[must_use]
    pub fn first_name(&self) -> Option<&str> {
        self.first_name.as_deref()
    }
    /// `middleName`.
    #[must_use]
    pub fn middle_name(&self) -> Option<&str> {
        self.middle_name.as_deref()
    }
    /// `lastName`.
    #[must_use]
    pub fn last_name(&self) -> Option<&str> {
        self.last_name.as_deref()
    }
    /// `dateOfBirth`, `YYYY-MM-DD`.
    #[must_use]
    pub fn date_of_birth(&self) -> Option<&str> {
        self.date_of_birth.as_deref()
    }
    /// `email`.
    #[must_use]
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    /// `mobilePhoneNumber`.
    #[must_use]
    pub fn mobile_phone_number(&self) -> Option<&Phone> {
        self.mobile_phone_number.as_ref()
    }
    /// `residencyAddress`.
    #[must_use]
    pub fn residency_address(&self) -> Option<&Address> {
        self.residency_address.as_ref()
    }
}

mod contact;
mod holder;

pub use holder::{CardholderName, CARDHOLDER_NAME_MAX};

#[cfg(test)]
mod tests;
