//! Field-level validation errors, the raw material of D1's `FIELD_INVALID_*` answers.

/// Which of the two D1 validation codes a field error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FIELD_INVALID_FORMAT`: malformed, wrong type, pattern or length.
    Format,
    /// `FIELD_INVALID_VALUE`: well-formed but not allowed.
    Value,
}

/// A refused field. `field` is the dotted path of the first field in error; `detail` is a
/// fixed text that never repeats the refused value, which may be personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct FieldError {
    pub kind: FieldErrorKind,
    pub field: String,
    pub detail: &'static str,
}

impl FieldError {
    /// A format error on `field`.
    pub fn format(field: impl Into<String>, detail: &'static str) -> Self {
        Self {
            kind: FieldErrorKind::Format,
            field: field.into(),
            detail,
        }
    }

    /// A value error on `field`.
    pub fn value(field: impl Into<String>, detail: &'static str) -> Self {
        Self {
            kind: FieldErrorKind::Value,
            field: field.into(),
            detail,
        }
    }

    /// The same error, with its field path nested under `parent`.
    #[must_use]
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}
