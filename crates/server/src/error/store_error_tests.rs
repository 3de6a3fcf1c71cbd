//! Tests of the parent module.

use super::*;

async fn answer(e: d1_store::StoreError) -> (StatusCode, Option<String>, serde_json::Value) {
    let response = ApiError::from(e).into_response();
    let status = response.status();
    let retry = response
        .headers()
        .get(axum::http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, retry, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn a_full_queue_is_503_overloaded_with_retry_after() {
    let (status, retry, body) = answer(d1_store::StoreError::Overloaded).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["errorCode"], "OVERLOADED");
}

#[tokio::test]
async fn a_corrupt_value_is_a_500_that_names_nothing() {
    let corrupt = d1_store::StoreError::Corrupt {
        table: "consumers",
        column: "state".into(),
    };
    let (status, retry, body) = answer(corrupt).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(retry, None);
    assert_eq!(body["errorCode"], "INTERNAL_ERROR");
    assert!(!body.to_string().contains("consumers"), "{body}");
}

#[tokio::test]
async fn a_write_of_unknown_outcome_is_503_timeout_never_a_500() {
    let (status, retry, body) = answer(d1_store::StoreError::OutcomeUnknown).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry, None);
    assert_eq!(body["errorCode"], "TIMEOUT");
}
