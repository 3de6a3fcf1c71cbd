//! The one reader of JSON bodies: a serde type read through `serde_path_to_error`, every
//! refusal mapped to `FIELD_INVALID_FORMAT` naming the first field in error by its path.
//!
//! Malformed JSON, a wrong type, `null` where a value is due, a missing required field, an
//! unknown field and a key given twice are all format errors. Serde's messages quote the
//! refused value (`invalid type: string "4111…"`), so they never leave this module: the error
//! text is built from the path and the kind of error only, as fixed words.
//!
//! Serde's derived structs also accept a JSON array positionally (`["en-US", "Jean"]`); the
//! body and every nested object are therefore read through [`object`] and its kin, which
//! accept nothing but a JSON object.

use std::fmt;
use std::marker::PhantomData;

use d1_domain::FieldError;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_path_to_error::{Path, Segment, Track};

/// What a JSON object is called when a type is refused.
const AN_OBJECT: &str = "a JSON object";
/// What an array of JSON objects is called when a type is refused.
const OBJECTS: &str = "an array of JSON objects";

/// Reads a whole body as a JSON object of type `T`; the body itself is named `body`.
///
/// # Errors
/// `FIELD_INVALID_FORMAT` naming the first field in error, with a text that never repeats
/// a value.
pub fn read<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let mut track = Track::new();
    let read = object(serde_path_to_error::Deserializer::new(
        &mut json, &mut track,
    ));
    match read {
        Ok(value) => {
            json.end()
                .map_err(|_| FieldError::format("body", "is not valid JSON"))?;
            Ok(value)
        }
        // A body that is not JSON is refused as such even when a type error comes before
        // the broken part: the syntax is checked over the whole text, on this path only.
        Err(_) if serde_json::from_slice::<IgnoredAny>(bytes).is_err() => {
            Err(FieldError::format("body", "is not valid JSON"))
        }
        Err(e) => Err(refusal(&track.path(), &e)),
    }
}

/// Deserializes a JSON object as `T`, and nothing else: not an array, not `null`.
///
/// # Errors
/// The deserializer's error for any other JSON type.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(ObjectVisitor(PhantomData))
}

/// An optional JSON object: absent or `null` is `None`. For `#[serde(default)]` fields.
///
/// # Errors
/// As [`object`].
pub fn opt_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(d)?.map(|o| o.0))
}

/// A JSON array of JSON objects.
///
/// # Errors
/// As [`object`], for the array or any item.
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    d.deserialize_seq(ObjectsVisitor(PhantomData))
}

/// An optional JSON array of JSON objects: absent or `null` is `None`.
///
/// # Errors
/// As [`objects`].
pub fn opt_objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Ok(Option::<Objects<T>>::deserialize(d)?.map(|o| o.0))
}

/// An optional field that may be absent but not `null`. For `#[serde(default)]` fields.
///
/// # Errors
/// The deserializer's error for `null` or another type.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(Self)
    }
}

struct Objects<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Objects<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        objects(d).map(Self)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(AN_OBJECT)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        // The map is the path-tracking one, so the fields' paths stay known.
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

struct ObjectsVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectsVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OBJECTS)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(128));
        while let Some(Object(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }
}

/// Whether a key the client chose may be repeated in an error text: a name of letters, digits
/// and `_` that starts with a letter, as every field of the contract is. Anything else (a PAN
/// or a person's name sent as a key) is never echoed.
#[must_use]
pub fn printable_key(key: &str) -> bool {
    key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The dotted path of `path` (`cards[0].cardId`), or `body` for the body itself.
fn dotted(path: &Path) -> String {
    dotted_segments(path.iter())
}

/// The dotted path of `segments`.
fn dotted_segments<'a>(segments: impl Iterator<Item = &'a Segment>) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// The field name serde quotes after `prefix`, if the message is of that kind. Only used for
/// the kinds whose quoted name is one of our own field names (missing, duplicate).
fn named<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    let name = &rest[..rest.find('`')?];
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(name)
}

/// The fixed detail for a refused type, from what was expected (a text of our own types,
/// never of the value: serde writes it last, after `, expected `).
fn wrong_type(message: &str) -> &'static str {
    if message.starts_with("invalid type: null,") {
        return "is required";
    }
    let expected = message
        .rsplit_once(", expected ")
        .map_or("", |(_, expected)| expected);
    if expected.starts_with(AN_OBJECT) {
        "must be a JSON object"
    } else if expected.starts_with(OBJECTS) {
        "must be an array of JSON objects"
    } else if expected.starts_with("a string") {
        "must be a string"
    } else if expected.starts_with("a boolean") {
        "must be a boolean"
    } else {
        "has the wrong type"
    }
}

/// Maps serde's refusal at `path` to D1's format error; the message is read, never passed on.
fn refusal(path: &Path, error: &serde_json::Error) -> FieldError {
    let at = dotted(path);
    let message = error.to_string();
    let join = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    if matches!(
        error.classify(),
        serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io
    ) {
        return FieldError::format("body", "is not valid JSON");
    }
    let (field, detail) = if let Some(name) = named(&message, "missing field `") {
        (join(name), "is required")
    } else if let Some(name) = named(&message, "duplicate field `") {
        (join(name), "is given more than once")
    } else if message.starts_with("unknown field `") {
        // The last segment is the client's own key: named only when it looks like a name.
        match path.iter().next_back() {
            Some(Segment::Map { key }) if !printable_key(key) => {
                let count = path.iter().count().saturating_sub(1);
                (
                    dotted_segments(path.iter().take(count)),
                    "has a field that is not known",
                )
            }
            _ => (at, "is not a known field"),
        }
    } else if message.starts_with("invalid type: ") {
        (at, wrong_type(&message))
    } else {
        (at, "is not valid")
    };
    if field.is_empty() {
        FieldError::format("body", detail)
    } else {
        FieldError::format(field, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use d1_domain::FieldErrorKind;
    use proptest::prelude::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Outer {
        #[serde(default, deserialize_with = "opt_object")]
        inner: Option<Inner>,
        #[serde(default, deserialize_with = "opt_objects")]
        items: Option<Vec<Inner>>,
        #[serde(default, deserialize_with = "present")]
        flag: Option<bool>,
        name: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Inner {
        last_name: String,
        middle: Option<String>,
    }

    fn refused(body: &str) -> FieldError {
        let e = read::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(e.kind, FieldErrorKind::Format, "{body}");
        e
    }

    #[test]
    fn every_refusal_names_its_field_by_path_and_its_kind_in_fixed_words() {
        for (body, field, detail) in [
            (
                r#"{"inner": {"lastName": "a", "zz": 2}}"#,
                "inner.zz",
                "is not a known field",
            ),
            (r#"{"zz": 1, "inner": 5}"#, "zz", "is not a known field"),
            (
                r#"{"inner": {"lastName": 5}}"#,
                "inner.lastName",
                "must be a string",
            ),
            (r#"{"inner": {}}"#, "inner.lastName", "is required"),
            (
                r#"{"inner": {"lastName": null}}"#,
                "inner.lastName",
                "is required",
            ),
            (
                r#"{"items": [{"lastName": "a"}, {"lastName": 1}]}"#,
                "items[1].lastName",
                "must be a string",
            ),
            (
                r#"{"items": {"lastName": "a"}}"#,
                "items",
                "must be an array of JSON objects",
            ),
            (r#"{"items": [1]}"#, "items[0]", "must be a JSON object"),
            (r#"{"flag": null}"#, "flag", "is required"),
            (r#"{"flag": "yes"}"#, "flag", "must be a boolean"),
            (r#"{"inner": ["a", "b"]}"#, "inner", "must be a JSON object"),
            (r#"["a"]"#, "body", "must be a JSON object"),
            ("", "body", "is not valid JSON"),
            ("{", "body", "is not valid JSON"),
            (r#"{"name": 5} trailing"#, "body", "is not valid JSON"),
            (r#"{"name": 5, "#, "body", "is not valid JSON"),
        ] {
            let e = refused(body);
            assert_eq!((e.field.as_str(), e.detail), (field, detail), "{body}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        let e = refused(r#"{"inner": {"lastName": "First", "lastName": "Second"}}"#);
        assert_eq!(
            (e.field.as_str(), e.detail),
            ("inner.lastName", "is given more than once")
        );
        assert_eq!(refused(r#"{"name": "a", "name": "b"}"#).field, "name");
        let e = refused(r#"{"items": [{"lastName": "a", "middle": null, "middle": "b"}]}"#);
        assert_eq!(e.field, "items[0].middle");
    }

    #[test]
    fn an_unknown_key_that_is_not_a_name_is_never_repeated() {
        for (body, field) in [
            (r#"{"4111111111111111": 1}"#, "body"),
            (r#"{"inner": {"lastName": "a", "Jean Dupont": 2}}"#, "inner"),
        ] {
            let e = refused(body);
            assert_eq!(
                (e.field.as_str(), e.detail),
                (field, "has a field that is not known")
            );
        }
        assert!(printable_key("cardholderName") && printable_key("zz"));
        assert!(!printable_key("4111111111111111") && !printable_key("a b") && !printable_key(""));
    }

    #[test]
    fn null_is_absent_for_optional_fields() {
        let v = read::<Outer>(br#"{"inner": null, "items": null, "name": null}"#).unwrap();
        assert!(v.inner.is_none() && v.items.is_none() && v.name.is_none() && v.flag.is_none());
        let v = read::<Outer>(br#"{"inner": {"lastName": "a", "middle": null}, "flag": true}"#)
            .unwrap();
        let inner = v.inner.unwrap();
        assert_eq!((inner.last_name.as_str(), inner.middle), ("a", None));
        assert_eq!(v.flag, Some(true));
    }

    #[test]
    fn refused_values_never_reach_the_text() {
        for body in [
            r#"{"name": 4111111111111111}"#,
            r#"{"inner": "4111111111111111"}"#,
            r#"{"inner": {"lastName": ["4111111111111111"]}}"#,
            r#"{"flag": "4111111111111111, expected a JSON object"}"#,
        ] {
            let e = refused(body);
            assert!(!e.to_string().contains("4111"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read::<Outer>(&bytes);
        }
    }
}
