//! Tests of the parent module.

use super::*;
use crate::field::FieldErrorKind;
use proptest::prelude::*;

fn input() -> PersonalInformationInput {
    PersonalInformationInput {
        language: Some("en-US".into()),
        first_name: Some("Jean-Luc".into()),
        last_name: Some("O'Neil".into()),
        email: Some("jl@example.com".into()),
        mobile_phone_number: Some(Phone {
            country_code: "+33".into(),
            phone_number: "612345678".into(),
        }),
        ..Default::default()
    }
}

fn err(i: PersonalInformationInput) -> (FieldErrorKind, String) {
    let e = PersonalInformation::parse(i).unwrap_err();
    (e.kind, e.field)
}

#[test]
fn names_from_many_scripts_are_accepted() {
    for name in ["محمد", "Jérôme", "Jean-Luc O'Neil", "Zoë", "李小龍"] {
        let mut i = input();
        i.first_name = Some(name.into());
        assert!(PersonalInformation::parse(i).is_ok(), "{name}");
    }
}

#[test]
fn decomposed_accents_are_normalised_before_counting() {
    let decomposed = "Je\u{301}ro\u{302}me";
    let mut i = input();
    i.first_name = Some(decomposed.into());
    let pi = PersonalInformation::parse(i).unwrap();
    assert_eq!(pi.first_name(), Some("Jérôme"));
}

#[test]
fn a_dollar_in_a_name_is_a_format_error_naming_the_field() {
    let mut i = input();
    i.last_name = Some("Dollar$".into());
    assert_eq!(err(i), (FieldErrorKind::Format, "lastName".into()));
}

#[test]
fn upper_case_language_prefix_is_a_format_error() {
    let mut i = input();
    i.language = Some("EN-us".into());
    assert_eq!(err(i), (FieldErrorKind::Format, "language".into()));
}

#[test]
fn an_impossible_date_is_a_value_error() {
    let mut i = input();
    i.date_of_birth = Some("2023-02-31".into());
    assert_eq!(err(i), (FieldErrorKind::Value, "dateOfBirth".into()));
    let mut i = input();
    i.date_of_birth = Some("2024-02-29".into());
    assert!(PersonalInformation::parse(i).is_ok());
}

#[test]
fn format_errors_come_before_value_errors_whatever_the_field_order() {
    let mut i = input();
    i.date_of_birth = Some("2023-02-31".into());
    i.email = Some("not an email".into());
    assert_eq!(err(i), (FieldErrorKind::Format, "email".into()));
}

#[test]
fn nested_fields_are_named_with_their_path() {
    let mut i = input();
    i.mobile_phone_number = Some(Phone {
        country_code: "+33".into(),
        phone_number: "12".into(),
    });
    assert_eq!(
        err(i),
        (
            FieldErrorKind::Format,
            "mobilePhoneNumber.phoneNumber".into()
        )
    );
    let mut i = input();
    i.mobile_phone_number = Some(Phone {
        country_code: "+3366".into(),
        phone_number: "12345678901234".into(),
    });
    assert_eq!(
        err(i),
        (
            FieldErrorKind::Format,
            "mobilePhoneNumber.countryCode".into()
        )
    );
    let mut i = input();
    i.mobile_phone_number = Some(Phone {
        country_code: "336".into(),
        phone_number: "12345678901234".into(),
    });
    assert_eq!(
        err(i),
        (
            FieldErrorKind::Value,
            "mobilePhoneNumber.phoneNumber".into()
        )
    );
}

#[test]
fn an_empty_object_is_a_value_error() {
    assert_eq!(
        err(PersonalInformationInput::default()),
        (FieldErrorKind::Value, "personalInformation".into())
    );
}

#[test]
fn click_to_pay_names_the_first_missing_field() {
    let mut i = input();
    i.email = None;
    assert_eq!(
        PersonalInformation::parse(i)
            .unwrap()
            .missing_click_to_pay_field(),
        Some("email")
    );
    assert_eq!(
        PersonalInformation::parse(input())
            .unwrap()
            .missing_click_to_pay_field(),
        None
    );
}

#[test]
fn debug_never_shows_the_values() {
    let pi = PersonalInformation::parse(input()).unwrap();
    assert!(!format!("{pi:?}").contains("Jean"));
}

proptest! {
    #[test]
    fn parse_never_panics(first in "\\PC{0,140}", lang in "\\PC{0,8}", dob in "[0-9-]{0,12}") {
        let mut i = input();
        i.first_name = Some(first);
        i.language = Some(lang);
        i.date_of_birth = Some(dob);
        let _ = PersonalInformation::parse(i);
    }

    #[test]
    fn valid_pi_round_trips_through_its_stored_form(first in "[A-Za-z][A-Za-z ]{0,30}") {
        let mut i = input();
        i.first_name = Some(first);
        let pi = PersonalInformation::parse(i).unwrap();
        let back: PersonalInformation = serde_json::from_slice(&serde_json::to_vec(&pi).unwrap()).unwrap();
        prop_assert_eq!(back, pi);
    }
}
