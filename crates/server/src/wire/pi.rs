//! `personalInformation` on the wire: read strictly into the domain type, written back out.

use d1_domain::{Address, FieldError, PersonalInformation, PersonalInformationInput, Phone};
use serde::Serialize;
use utoipa::ToSchema;

use super::json::Obj;

const PI_FIELDS: [&str; 9] = [
    "language",
    "title",
    "firstName",
    "middleName",
    "lastName",
    "dateOfBirth",
    "email",
    "mobilePhoneNumber",
    "residencyAddress",
];
const PHONE_FIELDS: [&str; 2] = ["countryCode", "phoneNumber"];
const ADDRESS_FIELDS: [&str; 7] = [
    "line1",
    "line2",
    "line3",
    "city",
    "state",
    "zipCode",
    "countryCode",
];

/// A mobile phone number.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneDto {
    #[schema(example = "+33", pattern = r"^\+?[0-9]{1,3}$")]
    pub country_code: String,
    #[schema(example = "612345678", pattern = "^[0-9]{4,14}$")]
    pub phone_number: String,
}

/// A postal address.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressDto {
    #[schema(max_length = 128)]
    pub line1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line3: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "FR", pattern = "^[A-Z]{2}$")]
    pub country_code: String,
}

/// Personal information of an end user. Unknown fields are refused.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonalInformationDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "en-US", pattern = "^[a-z]{2}-[a-zA-Z]{2}$")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 40)]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "1990-04-01", format = Date)]
    pub date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 254, format = Email)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile_phone_number: Option<PhoneDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residency_address: Option<AddressDto>,
}

fn phone(obj: &Obj<'_>) -> Result<Phone, FieldError> {
    obj.only(&PHONE_FIELDS)?;
    Ok(Phone {
        country_code: obj.req_str("countryCode")?,
        phone_number: obj.req_str("phoneNumber")?,
    })
}

/// Reads an address object (`residencyAddress` or `billingAddress`), types only.
///
/// # Errors
/// `FIELD_INVALID_FORMAT` for unknown fields, wrong types or missing required lines.
pub fn address(obj: &Obj<'_>) -> Result<Address, FieldError> {
    obj.only(&ADDRESS_FIELDS)?;
    Ok(Address {
        line1: obj.req_str("line1")?,
        line2: obj.opt_str("line2")?,
        line3: obj.opt_str("line3")?,
        city: obj.opt_str("city")?,
        state: obj.opt_str("state")?,
        zip_code: obj.opt_str("zipCode")?,
        country_code: obj.req_str("countryCode")?,
    })
}

/// Reads and validates a `personalInformation` object.
///
/// # Errors
/// The first field in error, format before value.
pub fn read(obj: &Obj<'_>) -> Result<PersonalInformation, FieldError> {
    obj.only(&PI_FIELDS)?;
    let input = PersonalInformationInput {
        language: obj.opt_str("language")?,
        title: obj.opt_str("title")?,
        first_name: obj.opt_str("firstName")?,
        middle_name: obj.opt_str("middleName")?,
        last_name: obj.opt_str("lastName")?,
        date_of_birth: obj.opt_str("dateOfBirth")?,
        email: obj.opt_str("email")?,
        mobile_phone_number: obj
            .opt_obj("mobilePhoneNumber")?
            .map(|o| phone(&o))
            .transpose()?,
        residency_address: obj
            .opt_obj("residencyAddress")?
            .map(|o| address(&o))
            .transpose()?,
    };
    PersonalInformation::parse(input).map_err(|e| {
        if e.field == "personalInformation" {
            FieldError {
                field: obj.path().to_owned(),
                ..e
            }
        } else {
            e.under(obj.path())
        }
    })
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
    let value = super::json::parse_object(bytes).ok()?;
    read(&Obj::new(&value, "consumerInfo").ok()?).ok()
}
