//! The vault's sealing of enrolment details, old form included.

use super::*;
use crate::EnrolmentDetails;

fn address() -> d1_domain::Address {
    d1_domain::Address {
        line1: "1 rue de la Paix".into(),
        line2: None,
        line3: None,
        city: Some("Paris".into()),
        state: None,
        zip_code: None,
        country_code: "FR".into(),
    }
}

#[test]
fn enrolment_details_open_and_so_does_a_billing_address_sealed_alone_before_them() {
    let vault = Vault::new(Kek::from_bytes(&[7; 32]).unwrap(), &[9; 32]);
    let issuer = IssuerId::parse("BANK000001").unwrap();
    let consumer = ConsumerId::parse("c1").unwrap().0;
    let (key, _) = vault.new_consumer_key(&issuer, &consumer).unwrap();
    let details = EnrolmentDetails {
        billing_address: Some(address()),
        cardholder_name: Some("Ada L".into()),
    };
    let sealed = vault
        .seal_enrolment(&key, &issuer, &consumer, &details)
        .unwrap();
    let opened = vault.open_enrolment(&key, &issuer, &consumer, &sealed);
    assert!(opened.unwrap() == details);

    let before = serde_json::to_vec(&address()).unwrap();
    let sealed = key
        .seal(&before, &context(ConsumerSeal::Billing, &issuer, &consumer))
        .unwrap();
    let opened = vault
        .open_enrolment(&key, &issuer, &consumer, &sealed)
        .unwrap();
    assert!(opened.billing_address == Some(address()));
    assert!(opened.cardholder_name.is_none());

    let other = ConsumerId::parse("c2").unwrap().0;
    assert!(vault
        .open_enrolment(&key, &issuer, &other, &sealed)
        .is_err());
}
