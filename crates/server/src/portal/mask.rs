//! How the consumer page shows personal information until a reveal: small pure functions,
//! each keeping only what lets an operator recognise a caller (an initial, the email's
//! domain, the phone's last two digits, the address's country).

use d1_domain::pi::{Address, Phone};

const STARS: &str = "***";

/// A name as its initial with a dot: `Jean-Luc` → `J.`.
#[must_use]
pub fn initial(name: &str) -> String {
    name.trim()
        .chars()
        .next()
        .map_or_else(String::new, |c| format!("{}.", c.to_uppercase()))
}

/// The initials of the names given, in order: `Jean`, `Doe` → `J. D.`.
#[must_use]
pub fn initials(names: &[Option<&str>]) -> String {
    names
        .iter()
        .flatten()
        .map(|n| initial(n))
        .filter(|i| !i.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An email with its local part cut to the first character: `jean@example.com` →
/// `j***@example.com`. A text without `@` is masked whole.
#[must_use]
pub fn email(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}{STARS}@{domain}")
        }
        None => text(address),
    }
}

/// A phone number with every digit but the last two masked; the country code is kept:
/// `+33`, `612345678` → `+33 *******78`.
#[must_use]
pub fn phone(phone: &Phone) -> String {
    let digits: Vec<char> = phone.phone_number.chars().collect();
    let keep = digits.len().min(2);
    let masked: String = std::iter::repeat_n('*', digits.len() - keep)
        .chain(digits[digits.len() - keep..].iter().copied())
        .collect();
    format!("{} {masked}", phone.country_code)
}

/// Any other text, cut to its first character: `Paris` → `P***`; empty stays empty.
#[must_use]
pub fn text(value: &str) -> String {
    value
        .chars()
        .next()
        .map_or_else(String::new, |c| format!("{c}{STARS}"))
}

/// A date, masked whole.
#[must_use]
pub fn date(_value: &str) -> String {
    "****-**-**".to_owned()
}

/// An address with its lines, city and zip code masked and its country kept.
#[must_use]
pub fn address(a: &Address) -> String {
    let mut parts = vec![text(&a.line1)];
    parts.extend(a.line2.as_deref().map(text));
    parts.extend(a.line3.as_deref().map(text));
    parts.extend(a.zip_code.as_deref().map(|_| STARS.to_owned()));
    parts.extend(a.city.as_deref().map(text));
    parts.extend(a.state.as_deref().map(text));
    parts.push(a.country_code.clone());
    parts.join(", ")
}

/// An address in clear, for a reveal.
#[must_use]
pub fn address_clear(a: &Address) -> String {
    let mut parts = vec![a.line1.clone()];
    parts.extend(a.line2.clone());
    parts.extend(a.line3.clone());
    parts.extend(a.zip_code.clone());
    parts.extend(a.city.clone());
    parts.extend(a.state.clone());
    parts.push(a.country_code.clone());
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_initials() {
        assert_eq!(initials(&[Some("John"), None, Some("Doe")]), "J. D.");
        assert_eq!(initials(&[Some("élodie"), Some("O'Neil")]), "É. O.");
        assert_eq!(initials(&[None, None]), "");
    }

    #[test]
    fn an_email_keeps_its_first_letter_and_domain() {
        assert_eq!(email("jean-luc@example.com"), "j***@example.com");
        assert_eq!(email("a@b.example"), "a***@b.example");
        assert_eq!(email("nope"), "n***");
    }

    #[test]
    fn a_phone_keeps_its_last_two_digits() {
        let p = |n: &str| Phone {
            country_code: "+33".into(),
            phone_number: n.into(),
        };
        assert_eq!(phone(&p("612345678")), "+33 *******78");
        assert_eq!(phone(&p("7")), "+33 7");
    }

    #[test]
    fn an_address_keeps_its_country_only() {
        let a = Address {
            line1: "1 rue de la Paix".into(),
            line2: None,
            line3: None,
            city: Some("Paris".into()),
            state: None,
            zip_code: Some("75002".into()),
            country_code: "FR".into(),
        };
        let masked = address(&a);
        assert_eq!(masked, "1***, ***, P***, FR");
        assert!(!masked.contains("Paix") && !masked.contains("75002"));
        assert_eq!(address_clear(&a), "1 rue de la Paix, 75002, Paris, FR");
    }

    #[test]
    fn other_texts_keep_one_character() {
        assert_eq!(text("en-US"), "e***");
        assert_eq!(text(""), "");
        assert_eq!(date("1980-02-29"), "****-**-**");
    }
}
