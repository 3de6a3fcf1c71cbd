//! What a Click to Pay directory is given: the consumer's profile (first and last name, email,
//! phone, language, middle name if any) and each enrolled card (PAN, expiry, cardholder name,
//! billing address), and the checks that decide whether an enrolment can go ahead.

use d1_domain::{Address, PersonalInformation, Phone};
use d1_store::CardSecret;
use serde::Serialize;

/// A consumer's profile in the directory.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub first_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    pub last_name: String,
    pub email: String,
    pub mobile_phone_number: Phone,
    pub language: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Profile(<redacted>)")
    }
}

/// A card as enrolled in the directory.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolledCard {
    pub pan: String,
    /// `MMYY`.
    pub expiry: String,
    pub cardholder_name: String,
    pub billing_address: Address,
}

impl std::fmt::Debug for EnrolledCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolledCard(<redacted>)")
    }
}

/// What an enrolment's body gave for its card.
#[derive(Default)]
pub struct Given<'a> {
    pub billing: Option<&'a Address>,
    pub cardholder_name: Option<&'a str>,
}

/// The profile `pi` makes, or the reason code naming the first mandatory field it lacks
/// (`MISSING_FIELD:email`).
///
/// # Errors
/// The reason code.
pub fn profile(pi: &PersonalInformation) -> Result<Profile, String> {
    let missing = |field: &str| format!("MISSING_FIELD:{field}");
    if let Some(field) = pi.missing_click_to_pay_field() {
        return Err(missing(field));
    }
    let text = |v: Option<&str>, field: &str| v.map(str::to_owned).ok_or_else(|| missing(field));
    Ok(Profile {
        first_name: text(pi.first_name(), "firstName")?,
        middle_name: pi.middle_name().map(str::to_owned),
        last_name: text(pi.last_name(), "lastName")?,
        email: text(pi.email(), "email")?,
        mobile_phone_number: pi
            .mobile_phone_number()
            .cloned()
            .ok_or_else(|| missing("mobilePhoneNumber"))?,
        language: text(pi.language(), "language")?,
    })
}

/// The card as the directory takes it. The cardholder name is the enrolment's (`given`),
/// else the card's, else the consumer's first and last name; the billing address is the
/// enrolment's, else the consumer's residency address.
///
/// # Errors
/// `MISSING_BILLING_ADDRESS` when there is neither.
pub fn card(
    pi: &PersonalInformation,
    profile: &Profile,
    card: &CardSecret,
    given: &Given<'_>,
) -> Result<EnrolledCard, String> {
    let billing_address = given
        .billing
        .or(pi.residency_address())
        .cloned()
        .ok_or_else(|| "MISSING_BILLING_ADDRESS".to_owned())?;
    let cardholder_name = given
        .cardholder_name
        .map(str::to_owned)
        .or_else(|| card.cardholder_name.clone())
        .unwrap_or_else(|| format!("{} {}", profile.first_name, profile.last_name));
    Ok(EnrolledCard {
        pan: card.pan.clone(),
        expiry: card.expiry.clone(),
        cardholder_name,
        billing_address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use d1_domain::PersonalInformationInput;

    fn address() -> Address {
        Address {
            line1: "1 rue de la Paix".into(),
            line2: None,
            line3: None,
            city: Some("Paris".into()),
            state: None,
            zip_code: Some("75002".into()),
            country_code: "FR".into(),
        }
    }

    fn input() -> PersonalInformationInput {
        PersonalInformationInput {
            language: Some("fr-FR".into()),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            email: Some("ada@example.com".into()),
            mobile_phone_number: Some(Phone {
                country_code: "+33".into(),
                phone_number: "612345678".into(),
            }),
            ..Default::default()
        }
    }

    fn secret(name: Option<&str>) -> CardSecret {
        CardSecret {
            pan: "4111111111111111".into(),
            expiry: "1230".into(),
            cardholder_name: name.map(str::to_owned),
        }
    }

    #[test]
    fn a_missing_mandatory_field_is_named_in_the_reason() {
        let pi = PersonalInformation::parse(PersonalInformationInput {
            email: None,
            ..input()
        })
        .unwrap();
        assert_eq!(profile(&pi).unwrap_err(), "MISSING_FIELD:email");
    }

    fn billed(billing: &Address) -> Given<'_> {
        Given {
            billing: Some(billing),
            cardholder_name: None,
        }
    }

    #[test]
    fn the_cardholder_name_is_the_enrolments_else_the_cards_else_the_consumers() {
        let pi = PersonalInformation::parse(input()).unwrap();
        let p = profile(&pi).unwrap();
        let billing = address();
        let c = card(&pi, &p, &secret(None), &billed(&billing)).unwrap();
        assert_eq!(c.cardholder_name, "Ada Lovelace");
        let named = card(&pi, &p, &secret(Some("A LOVELACE")), &billed(&billing)).unwrap();
        assert_eq!(named.cardholder_name, "A LOVELACE");
        let given = Given {
            cardholder_name: Some("Countess of Lovelace"),
            ..billed(&billing)
        };
        for on_card in [None, Some("A LOVELACE")] {
            let c = card(&pi, &p, &secret(on_card), &given).unwrap();
            assert_eq!(c.cardholder_name, "Countess of Lovelace");
        }
    }

    #[test]
    fn the_billing_address_comes_from_the_body_else_the_residency_address_else_fails() {
        let pi = PersonalInformation::parse(input()).unwrap();
        let p = profile(&pi).unwrap();
        assert_eq!(
            card(&pi, &p, &secret(None), &Given::default()).unwrap_err(),
            "MISSING_BILLING_ADDRESS"
        );
        let resident = PersonalInformation::parse(PersonalInformationInput {
            residency_address: Some(address()),
            ..input()
        })
        .unwrap();
        let c = card(&resident, &p, &secret(None), &Given::default()).unwrap();
        assert_eq!(c.billing_address.country_code, "FR");
    }
}
