//! A strict JSON object reader that names the first field in error.
//!
//! Bodies are read from a `serde_json::Value` rather than derived structs so that every
//! refusal maps to D1's codes exactly: a wrong type, an unknown field or a missing required
//! field is `FIELD_INVALID_FORMAT` naming the field by its dotted path. `null` counts as
//! absent for an optional field and as missing for a required one.

use d1_domain::FieldError;
use serde_json::{Map, Value};

/// Parses a request body as a JSON object; the whole body is named `body` in errors.
///
/// # Errors
/// `FIELD_INVALID_FORMAT` for malformed JSON or a non-object.
pub fn parse_object(bytes: &[u8]) -> Result<Value, FieldError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| FieldError::format("body", "is not valid JSON"))?;
    if !value.is_object() {
        return Err(FieldError::format("body", "must be a JSON object"));
    }
    Ok(value)
}

/// A JSON object being read, with the path that names its fields.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// Reads `value` as an object at `path` ("" for the body itself).
    ///
    /// # Errors
    /// `FIELD_INVALID_FORMAT` naming `path` if it is not an object.
    pub fn new(value: &'a Value, path: &str) -> Result<Self, FieldError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_owned(),
            }),
            _ => Err(FieldError::format(
                if path.is_empty() { "body" } else { path },
                "must be a JSON object",
            )),
        }
    }

    fn name(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    /// Refuses the first field, in document order, that is not in `allowed`.
    ///
    /// # Errors
    /// `FIELD_INVALID_FORMAT` naming the unknown field.
    pub fn only(&self, allowed: &[&str]) -> Result<(), FieldError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(FieldError::format(
                self.name(unknown),
                "is not a known field",
            )),
            None => Ok(()),
        }
    }

    /// An optional string.
    ///
    /// # Errors
    /// `FIELD_INVALID_FORMAT` if present with another type.
    pub fn opt_str(&self, field: &str) -> Result<Option<String>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(FieldError::format(self.name(field), "must be a string")),
        }
    }

    /// A required string.
    ///
    /// # Errors
    /// `FIELD_INVALID_FORMAT` if missing, null or of another type.
    pub fn req_str(&self, field: &str) -> Result<String, FieldError> {
        self.opt_str(field)?
            .ok_or_else(|| FieldError::format(self.name(field), "is required"))
    }

    /// An optional nested object.
    ///
    /// # Errors
    /// `FIELD_INVALID_FORMAT` if present with another type.
    pub fn opt_obj(&self, field: &str) -> Result<Option<Obj<'a>>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Obj::new(v, &self.name(field)).map(Some),
        }
    }

    /// A required nested object.
    ///
    /// # Errors
    /// `FIELD_INVALID_FORMAT` if missing, null or of another type.
    pub fn req_obj(&self, field: &str) -> Result<Obj<'a>, FieldError> {
        self.opt_obj(field)?
            .ok_or_else(|| FieldError::format(self.name(field), "is required"))
    }

    /// The path of this object, for errors about it as a whole.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unknown_fields_are_named_in_document_order() {
        let v = parse_object(br#"{"a": 1, "zz": 2, "b": 3}"#).unwrap();
        let e = Obj::new(&v, "").unwrap().only(&["a"]).unwrap_err();
        assert_eq!(e.field, "zz");
    }

    #[test]
    fn nested_paths_are_dotted_and_types_are_checked() {
        let v = parse_object(br#"{"o": {"s": 5}}"#).unwrap();
        let o = Obj::new(&v, "").unwrap().req_obj("o").unwrap();
        assert_eq!(o.opt_str("s").unwrap_err().field, "o.s");
        assert_eq!(o.req_str("t").unwrap_err().field, "o.t");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_object(&bytes);
        }
    }
}
