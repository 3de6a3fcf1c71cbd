//! Consumer bodies: the requests (read by [`super::json`], parsed here into domain types, and
//! described by the same types in the OpenAPI document) and the responses.

use d1_domain::{DeleteReason, FieldError, PersonalInformation};
use d1_store::{ConsumerView, OperationRecord, OperationsPage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::checks::{check, Checked};
use super::json;
use super::pi::PersonalInformationDto;
use crate::clock::rfc3339;

/// Body of Register consumer. `personalInformation` is optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterConsumerRequest {
    #[serde(default, deserialize_with = "json::opt_object")]
    pub personal_information: Option<PersonalInformationDto>,
}

impl RegisterConsumerRequest {
    /// The PI, if any, after the PI rules.
    ///
    /// # Errors
    /// A format error of the PI; a value error is kept in the [`Checked`].
    pub fn parse(self) -> Result<Checked<Option<PersonalInformation>>, FieldError> {
        match self.personal_information {
            None => Ok(Checked::ok(None)),
            Some(pi) => check(pi.parse("personalInformation").map(Some)),
        }
    }
}

/// Body of Update consumer: the PI, replaced whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateConsumerRequest {
    #[serde(deserialize_with = "json::object")]
    pub personal_information: PersonalInformationDto,
}

impl UpdateConsumerRequest {
    /// The PI after the PI rules.
    ///
    /// # Errors
    /// A format error of the PI; a value error is kept in the [`Checked`].
    pub fn parse(self) -> Result<Checked<PersonalInformation>, FieldError> {
        check(self.personal_information.parse("personalInformation"))
    }
}

/// Optional body of Delete consumer (v2 and v1).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteConsumerRequest {
    #[schema(pattern = "^[a-zA-Z0-9 ]{1,64}$")]
    pub reason: Option<String>,
    /// `USER_DECISION` or `ISSUER_DECISION` (the default).
    #[schema(example = "ISSUER_DECISION")]
    pub reason_code: Option<String>,
}

impl DeleteConsumerRequest {
    /// The reason of the delete.
    ///
    /// # Errors
    /// A `reason` off its pattern; an unknown `reasonCode` is kept in the [`Checked`].
    pub fn parse(self) -> Result<Checked<DeleteReason>, FieldError> {
        check(DeleteReason::parse(
            self.reason,
            self.reason_code.as_deref(),
        ))
    }
}

/// Body of v1 Register consumer: `state` is deprecated; it is type-checked and ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V1RegisterConsumerRequest {
    /// Deprecated and ignored.
    pub state: Option<String>,
}

/// A consumer as Get consumer returns it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerResponse {
    pub consumer_id: String,
    /// `ACTIVE` or `DELETED`.
    #[schema(example = "ACTIVE")]
    pub state: &'static str,
    /// `STORED` or `ISSUER`.
    #[schema(example = "STORED")]
    pub personal_information_source: &'static str,
    /// The stored PI; absent when none is stored or the consumer is deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_information: Option<PersonalInformationDto>,
    #[schema(example = "2026-11-25T10:00:00.000Z")]
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ConsumerView> for ConsumerResponse {
    fn from(c: &ConsumerView) -> Self {
        Self {
            consumer_id: c.consumer_id.as_str().to_owned(),
            state: c.state.as_str(),
            personal_information_source: c.pi_source.as_str(),
            personal_information: c.pi.as_ref().map(PersonalInformationDto::from),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// One entry of the operations trail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationDto {
    pub operation_id: String,
    #[schema(example = "REGISTER")]
    pub operation: &'static str,
    #[schema(example = "SUCCESSFUL")]
    pub status: &'static str,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The aggregator whose token made the write, when one did (contract section 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator_id: Option<String>,
}

impl From<&OperationRecord> for OperationDto {
    fn from(op: &OperationRecord) -> Self {
        Self {
            operation_id: op.operation_id.clone(),
            operation: op.operation.as_str(),
            status: op.status.as_str(),
            start_time: rfc3339(op.start_time),
            end_time: op.end_time.map(rfc3339),
            card_id: op.card_id.clone(),
            reason: op.reason.clone(),
            reason_code: op.reason_code.clone(),
            correlation_id: op.correlation_id.clone(),
            user_id: op.user_id.clone(),
            aggregator_id: op.aggregator_id.clone(),
        }
    }
}

/// A page of the operations trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationsResponse {
    pub operations: Vec<OperationDto>,
    /// Pass as `?cursor=` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<&OperationsPage> for OperationsResponse {
    fn from(page: &OperationsPage) -> Self {
        Self {
            operations: page.operations.iter().map(OperationDto::from).collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        }
    }
}

/// The v1 operations list: a slice of the trail, newest first, with no cursor (v1 pages by
/// `offset` and `count`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1OperationsResponse {
    pub operations: Vec<OperationDto>,
}
