//! What a Click to Pay enrolment's body gives: a billing address and a cardholder name sealed
//! with the job, and a reason and code on its trail entry, kept when it succeeds.

use super::click_to_pay::{enrol, with_card};
use super::*;
use d1_domain::{Address, CardholderName, OperationStatus};
use d1_store::{EnrolmentStart, FinishJob, JobOutcome, OperationRecord};

fn address() -> Address {
    Address {
        line1: "15 rue Lepic".into(),
        line2: None,
        line3: None,
        city: Some("Paris".into()),
        state: None,
        zip_code: Some("75018".into()),
        country_code: "FR".into(),
    }
}

async fn started(store: &dyn Store, cmd: d1_store::StartEnrolment) -> String {
    match store.start_enrolment(cmd).await.unwrap() {
        EnrolmentStart::Started(op) => op,
        other => panic!("not started: {other:?}"),
    }
}

async fn entry(store: &dyn Store, op: &str) -> OperationRecord {
    store.operation(&issuer(), op).await.unwrap().unwrap()
}

fn end(id: i64, outcome: JobOutcome) -> FinishJob {
    FinishJob {
        id,
        outcome,
        pi_fetch: None,
    }
}

#[tokio::test]
async fn an_enrolments_body_is_sealed_with_its_job_and_its_reason_kept_on_its_entry() {
    let f = fresh().await;
    let store = f.store.as_ref();
    with_card(store, "k1", "c1", "4111111111111111").await;
    with_card(store, "k2", "c1", "4012888888881881").await;
    let reason = DeleteReason::parse(Some("asked in branch".into()), Some("USER_DECISION"));
    let op = started(
        store,
        d1_store::StartEnrolment {
            billing: Some(address()),
            cardholder_name: Some(CardholderName::parse("Zoë Ünal".into(), "n").unwrap()),
            reason: reason.unwrap(),
            ..enrol("k1")
        },
    )
    .await;
    let pending = entry(store, &op).await;
    assert_eq!(pending.status, OperationStatus::Pending);
    assert_eq!(pending.reason.as_deref(), Some("asked in branch"));
    assert_eq!(pending.reason_code.as_deref(), Some("USER_DECISION"));
    let plain = started(store, enrol("k2")).await;
    let defaults = entry(store, &plain).await;
    assert_eq!(defaults.reason, None);
    assert_eq!(defaults.reason_code.as_deref(), Some("ISSUER_DECISION"));

    let jobs = store.claim_jobs(60_000, 10).await.unwrap();
    let job = |op: &str| {
        jobs.iter()
            .find(|j| j.operation_id.as_deref() == Some(op))
            .unwrap()
    };
    assert_eq!(job(&op).cardholder_name.as_deref(), Some("Zoë Ünal"));
    assert!(job(&op).billing == Some(address()));
    assert!(!job(&op).unreadable);
    assert!(job(&plain).cardholder_name.is_none() && job(&plain).billing.is_none());

    // A success keeps the issuer's reason; a failure's reason code replaces it.
    store
        .finish_job(end(job(&op).id, JobOutcome::Enrolled))
        .await
        .unwrap();
    let done = entry(store, &op).await;
    assert_eq!(done.status, OperationStatus::Successful);
    assert_eq!(done.reason.as_deref(), Some("asked in branch"));
    assert_eq!(done.reason_code.as_deref(), Some("USER_DECISION"));
    let failure = JobOutcome::Failed("MISSING_BILLING_ADDRESS".into());
    store
        .finish_job(end(job(&plain).id, failure))
        .await
        .unwrap();
    let failed = entry(store, &plain).await;
    assert_eq!(failed.status, OperationStatus::Failed);
    assert_eq!(failed.reason.as_deref(), Some("MISSING_BILLING_ADDRESS"));
    assert_eq!(failed.reason_code.as_deref(), Some("ISSUER_DECISION"));

    // A repeat answers the existing enrolment's status; a failed one is started again.
    assert_eq!(
        store.start_enrolment(enrol("k1")).await.unwrap(),
        EnrolmentStart::Existing(op, OperationStatus::Successful)
    );
    assert_ne!(started(store, enrol("k2")).await, plain);
}
