//! `personalInformation` on the wire: one type for the request, the response and the OpenAPI
//! document, read by [`super::json`] and parsed into the domain type.

use d1_domain::{Address, FieldError, PersonalInformation, PersonalInformationInput, Phone};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json;

/// A mobile phone number.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhoneDto {
    #[schema(example = "+33", pattern = r"^\+?[0-9]{1,3}$")]
    pub country_code: String,
    #[schema(example = "612345678", pattern = "^[0-9]{4,14}$")]
    pub phone_number: String,
}

/// A postal address.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressDto {
    #[schema(max_length = 128)]
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
    /// ISO 3166-1 alpha-2.
    #[schema(example = "FR", pattern = "^[A-Z]{2}$")]
    pub country_code: String,
}

/// Personal information of an end user. Unknown fields are refused.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonalInformationDto {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "en-US", pattern = "^[a-z]{2}-[a-zA-Z]{2}$")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 40)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1990-04-01", format = Date)]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 254, format = Email)]
    pub email: Option<String>,
    #[serde(
        default,
        deserialize_with = "json::opt_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub mobile_phone_number: Option<PhoneDto>,
    #[serde(
        default,
        deserialize_with = "json::opt_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub residency_address: Option<AddressDto>,
}

impl From<PhoneDto> for Phone {
    fn from(p: PhoneDto) -> Self {
        Self {
            country_code: p.country_code,
            phone_number: p.phone_number,
        }
    }
}

impl From<AddressDto> for Address {
    fn from(a: AddressDto) -> Self {
        Self {
            line1: a.line1,
            line2: a.line2,
            line3: a.line3,
            city: a.city,
            state: a.state,
            zip_code: a.zip_code,
            country_code: a.country_code,
        }
    }
}

impl PersonalInformationDto {
    /// Applies the PI rules; errors name their field under `path`
    /// (`personalInformation.language`).
    ///
    /// # Errors
    /// The first field in error, format before value.
    pub fn parse(self, path: &str) -> Result<PersonalInformation, FieldError> {
        let input = PersonalInformationInput {
            language: self.language,
            title: self.title,
            first_name: self.first_name,
            middle_name: self.middle_name,
            last_name: self.last_name,
            date_of_birth: self.date_of_birth,
            email: self.email,
            mobile_phone_number: self.mobile_phone_number.map(Phone::from),
            residency_address: self.residency_address.map(Address::from),
        };
        PersonalInformation::parse(input).map_err(|e| {
            if e.field == "personalInformation" {
                FieldError {
                    field: path.to_owned(),
                    ..e
                }
            } else {
                e.under(path)
            }
        })
    }
}

impl From<&Address> for AddressDto {
    fn from(a: &Address) -> Self {
        Self {
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            line3: a.line3.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            zip_code: a.zip_code.clone(),
            country_code: a.country_code.clone(),
        }
    }
}

impl From<&PersonalInformation> for PersonalInformationDto {
    fn from(pi: &PersonalInformation) -> Self {
        Self {
            language: pi.language().map(str::to_owned),
            title: pi.title().map(str::to_owned),
            first_name: pi.first_name().map(str::to_owned),
            middle_name: pi.middle_name().map(str::to_owned),
            last_name: pi.last_name().map(str::to_owned),
            date_of_birth: pi.date_of_birth().map(str::to_owned),
            email: pi.email().map(str::to_owned),
            mobile_phone_number: pi.mobile_phone_number().map(|p| PhoneDto {
                country_code: p.country_code.clone(),
                phone_number: p.phone_number.clone(),
            }),
            residency_address: pi.residency_address().map(AddressDto::from),
        }
    }
}

/// Reads a Get Consumer Information body (the `consumerInfo` object) with the rules inbound PI
/// follows; `None` if it breaks any.
#[must_use]
pub fn consumer_info(bytes: &[u8]) -> Option<PersonalInformation> {
    json::read::<PersonalInformationDto>(bytes)
        .ok()?
        .parse("consumerInfo")
        .ok()
}

// PI never prints: these types are logged nowhere, and a stray `{:?}` must not change that.
macro_rules! redacted_debug {
    ($($name:ident),+) => {
        $(impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        })+
    };
}

redacted_debug!(PhoneDto, AddressDto, PersonalInformationDto);
