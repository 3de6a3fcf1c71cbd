//! Card life-cycle bodies (contract section 6): one serde type per family of operations
//! (suspend, resume, delete and activate take a reason; renew adds `encryptedData`; replace
//! adds `newCardId` too), parsed in D1's order of checks, and the reply every operation gives.

use d1_domain::card::lifecycle::{CardOperation, ReasonCode};
use d1_domain::card::CardId;
use d1_domain::consumer::reason_text;
use d1_domain::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::card::compact_jwe;
use super::checks::{check, id_error, Checked};

/// Body of suspend, resume, delete and activate.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardOperationRequest {
    /// One of the operation's codes (contract section 6); required but for activate
    /// (default `ISSUER_DECISION`).
    #[schema(example = "CARD_LOST")]
    pub reason_code: Option<String>,
    #[schema(pattern = "^[a-zA-Z0-9 ]{1,64}$")]
    pub reason: Option<String>,
}

/// Body of renew.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenewCardRequest {
    /// `EXPIRY` (the default) or `ISSUER_DECISION`.
    #[schema(example = "EXPIRY")]
    pub reason_code: Option<String>,
    #[schema(pattern = "^[a-zA-Z0-9 ]{1,64}$")]
    pub reason: Option<String>,
    /// For a registered card: a compact JWE of `{"pan", "exp"}` with the card's PAN and its
    /// later expiry. A created card is renewed without it.
    pub encrypted_data: Option<String>,
}

/// Body of replace.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplaceCardRequest {
    #[schema(example = "CARD_STOLEN")]
    pub reason_code: Option<String>,
    #[schema(pattern = "^[a-zA-Z0-9 ]{1,64}$")]
    pub reason: Option<String>,
    /// The replacement's cardId: required for a registered card; a created card's is
    /// `crd_…` unless given.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,48}$")]
    pub new_card_id: Option<String>,
    /// For a registered card: a compact JWE of the new card's `{"pan", "exp"}`.
    pub encrypted_data: Option<String>,
}

/// An operation's body after its rules; a JWE is still sealed.
pub struct CardOperationBody {
    pub reason_code: ReasonCode,
    pub reason: Option<String>,
    pub new_card_id: Option<CardId>,
    pub encrypted_data: Option<String>,
}

/// The fields of any of the three bodies, in their order.
struct Fields {
    reason_code: Option<String>,
    reason: Option<String>,
    new_card_id: Option<String>,
    encrypted_data: Option<String>,
}

impl Fields {
    fn parse(self, op: CardOperation) -> Result<Checked<CardOperationBody>, FieldError> {
        let code = check(op.reason_code(self.reason_code.as_deref()))?;
        let reason = reason_text(self.reason)?;
        let new_card_id = match &self.new_card_id {
            None => Checked::ok(None),
            Some(raw) => check(
                CardId::parse(raw)
                    .map(Some)
                    .map_err(|e| id_error("newCardId", e)),
            )?,
        };
        if let Some(jwe) = &self.encrypted_data {
            compact_jwe(jwe, "encryptedData")?;
        }
        let encrypted_data = self.encrypted_data;
        Ok(code
            .and(new_card_id)
            .map(|(reason_code, new_card_id)| CardOperationBody {
                reason_code,
                reason,
                new_card_id,
                encrypted_data,
            }))
    }
}

/// Reads the body of `op` (empty is allowed: every field is optional to serde), in D1's
/// order: the type's format first, then each field's rules.
///
/// # Errors
/// The first format error; a value error is kept in the [`Checked`].
pub fn read_body(
    op: CardOperation,
    empty: bool,
    read: impl FnOnce(CardOperation) -> Result<BodyOf, FieldError>,
) -> Result<Checked<CardOperationBody>, FieldError> {
    let fields = if empty {
        Fields {
            reason_code: None,
            reason: None,
            new_card_id: None,
            encrypted_data: None,
        }
    } else {
        match read(op)? {
            BodyOf::Plain(b) => Fields {
                reason_code: b.reason_code,
                reason: b.reason,
                new_card_id: None,
                encrypted_data: None,
            },
            BodyOf::Renew(b) => Fields {
                reason_code: b.reason_code,
                reason: b.reason,
                new_card_id: None,
                encrypted_data: b.encrypted_data,
            },
            BodyOf::Replace(b) => Fields {
                reason_code: b.reason_code,
                reason: b.reason,
                new_card_id: b.new_card_id,
                encrypted_data: b.encrypted_data,
            },
        }
    };
    fields.parse(op)
}

/// A body as read by its operation's type.
pub enum BodyOf {
    Plain(CardOperationRequest),
    Renew(RenewCardRequest),
    Replace(ReplaceCardRequest),
}

/// The reply of every card operation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardOperationResponse {
    pub operation_id: String,
    #[schema(example = "SUCCESSFUL")]
    pub status: &'static str,
    /// The card operated on; for a replace, the new card.
    pub card_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use d1_domain::FieldErrorKind::{Format, Value};

    fn plain(code: Option<&str>, reason: Option<&str>) -> BodyOf {
        BodyOf::Plain(CardOperationRequest {
            reason_code: code.map(str::to_owned),
            reason: reason.map(str::to_owned),
        })
    }

    fn outcome(
        op: CardOperation,
        body: BodyOf,
    ) -> Result<CardOperationBody, (d1_domain::FieldErrorKind, String)> {
        use super::super::checks::Finish;
        read_body(op, false, |_| Ok(body))
            .and_then(Finish::finish)
            .map_err(|e| (e.kind, e.field))
    }

    #[test]
    fn a_reason_with_a_dollar_is_a_format_error_and_a_foreign_code_a_value_error() {
        let dollar = outcome(CardOperation::Suspend, plain(Some("CARD_LOST"), Some("$5")));
        assert_eq!(dollar.err(), Some((Format, "reason".into())));
        let foreign = outcome(CardOperation::Suspend, plain(Some("CARD_FOUND"), None));
        assert_eq!(foreign.err(), Some((Value, "reasonCode".into())));
        let missing = outcome(CardOperation::Resume, plain(None, None));
        assert_eq!(missing.err(), Some((Format, "reasonCode".into())));
        // The format error of `reason` wins over the value error of `reasonCode` before it.
        let both = outcome(CardOperation::Suspend, plain(Some("NOPE"), Some("a$")));
        assert_eq!(both.err(), Some((Format, "reason".into())));
    }

    #[test]
    fn replace_reads_its_new_card_id_and_jwe_shape() {
        let body = |id: &str, jwe: &str| {
            BodyOf::Replace(ReplaceCardRequest {
                reason_code: Some("CARD_LOST".into()),
                reason: None,
                new_card_id: Some(id.into()),
                encrypted_data: Some(jwe.into()),
            })
        };
        let read = outcome(CardOperation::Replace, body("k2", "e30.a.b.c.d")).unwrap();
        assert_eq!(read.new_card_id.unwrap().as_str(), "k2");
        let bad_id = outcome(CardOperation::Replace, body("k 2", "e30.a.b.c.d"));
        assert_eq!(bad_id.err(), Some((Format, "newCardId".into())));
        let pan_id = outcome(
            CardOperation::Replace,
            body("4111111111111111", "e30.a.b.c.d"),
        );
        assert_eq!(pan_id.err(), Some((Value, "newCardId".into())));
        let bad_jwe = outcome(CardOperation::Replace, body("k2", "a.b"));
        assert_eq!(bad_jwe.err(), Some((Format, "encryptedData".into())));
        // Five parts, but a header that is not base64url JSON: not a compact JWE either.
        let bad_header = outcome(CardOperation::Replace, body("k2", "a.b.c.d.e"));
        assert_eq!(bad_header.err(), Some((Format, "encryptedData".into())));
    }

    #[test]
    fn an_empty_body_takes_the_defaults_where_there_are_any() {
        let renew = read_body(CardOperation::Renew, true, |_| unreachable!()).unwrap();
        use super::super::checks::Finish;
        assert_eq!(renew.finish().unwrap().reason_code, ReasonCode::Expiry);
        assert!(read_body(CardOperation::Delete, true, |_| unreachable!()).is_err());
    }
}
