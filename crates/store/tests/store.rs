//! The shared store suite: every use case against a real database. Each test takes a fresh
//! store from `fresh()`; a backend added later runs the same functions.

use std::sync::Arc;

use d1_domain::{
    ConsumerId, DeleteReason, IssuerId, LookalikePolicy, OperationKind, PersonalInformation,
    PersonalInformationInput,
};
use d1_store::{
    ChangeOutcome, DeleteConsumer, Durability, IssuerChange, NewIssuer, PiStorage,
    RegisterConsumer, RegisterOutcome, Store, StoreError, StoreOptions, TrailContext,
    UpdateConsumer,
};

#[path = "store/aggregators.rs"]
mod aggregators;
#[path = "store/enrolment.rs"]
mod enrolment;
#[path = "store/operators.rs"]
mod operators;
#[path = "store/registered_cards.rs"]
mod registered_cards;
#[path = "store/trail.rs"]
mod trail;

struct Fresh {
    store: Arc<dyn Store>,
    url: String,
    _dir: tempfile::TempDir,
}

/// The `store` target runs on SQLite; `store_postgres` (the same file) on a fresh schema of
/// the database in `D1_TEST_DATABASE_URL`.
fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "store_postgres"
}

async fn database_url(dir: &std::path::Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}", dir.join("registry.db").display());
    }
    let base = std::env::var("D1_TEST_DATABASE_URL").expect("D1_TEST_DATABASE_URL");
    d1_scratch::fresh(&base, "d1t_store_").await.unwrap()
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(dir.path()).await;
    let store = d1_store::open(StoreOptions {
        database_url: url.clone(),
        kek_file: dir.path().join("kek.key"),
        durability: Durability::Full,
        read_connections: 2,
        pool: d1_store::postgres::PoolOptions::default(),
    })
    .await
    .unwrap();
    Fresh {
        store,
        url,
        _dir: dir,
    }
}

/// Runs `sql` on the store's database behind its back, as an operator's mistake would.
async fn tamper(f: &Fresh, sql: &str) {
    match f.url.strip_prefix("sqlite://") {
        Some(path) => {
            rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap();
        }
        None => d1_scratch::connect(&f.url)
            .await
            .unwrap()
            .batch_execute(sql)
            .await
            .unwrap(),
    }
}

fn issuer() -> IssuerId {
    IssuerId::parse("BANK000001").unwrap()
}

fn consumer(id: &str) -> ConsumerId {
    ConsumerId::parse(id).unwrap().0
}

fn pi(first: &str) -> PersonalInformation {
    PersonalInformation::parse(PersonalInformationInput {
        first_name: Some(first.into()),
        ..Default::default()
    })
    .unwrap()
}

fn register(id: &str, pi: Option<PersonalInformation>) -> RegisterConsumer {
    RegisterConsumer {
        issuer_id: issuer(),
        consumer_id: consumer(id),
        pi,
        trail: TrailContext::default(),
    }
}

fn delete(id: &str) -> DeleteConsumer {
    DeleteConsumer {
        issuer_id: issuer(),
        consumer_id: consumer(id),
        reason: DeleteReason::default(),
        trail: TrailContext::default(),
    }
}

async fn kinds(store: &dyn Store, id: &str) -> Vec<OperationKind> {
    let page = store
        .operations(&issuer(), &consumer(id), 50, None)
        .await
        .unwrap()
        .unwrap();
    page.operations.iter().map(|o| o.operation).collect()
}

#[tokio::test]
async fn register_creates_then_an_identical_retry_changes_nothing() {
    let f = fresh().await;
    assert_eq!(
        f.store
            .register_consumer(register("c1", Some(pi("Ann"))))
            .await
            .unwrap(),
        RegisterOutcome::Created
    );
    assert_eq!(
        f.store
            .register_consumer(register("c1", Some(pi("Ann"))))
            .await
            .unwrap(),
        RegisterOutcome::Unchanged
    );
    assert_eq!(
        f.store
            .register_consumer(register("c1", None))
            .await
            .unwrap(),
        RegisterOutcome::Unchanged
    );
    assert_eq!(
        f.store
            .register_consumer(register("c1", Some(pi("Bob"))))
            .await
            .unwrap(),
        RegisterOutcome::Updated
    );
    assert_eq!(
        kinds(f.store.as_ref(), "c1").await,
        [OperationKind::Register, OperationKind::Register]
    );
    let view = f
        .store
        .consumer(&issuer(), &consumer("c1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.pi.unwrap().first_name(), Some("Bob"));
}

#[tokio::test]
async fn update_and_delete_report_what_they_found() {
    let f = fresh().await;
    let update = |id: &str| UpdateConsumer {
        issuer_id: issuer(),
        consumer_id: consumer(id),
        pi: pi("Cy"),
        trail: TrailContext::default(),
    };
    assert_eq!(
        f.store.update_consumer(update("ghost")).await.unwrap(),
        ChangeOutcome::NotFound
    );
    assert_eq!(
        f.store.delete_consumer(delete("ghost")).await.unwrap(),
        ChangeOutcome::NotFound
    );
    f.store
        .register_consumer(register("c1", None))
        .await
        .unwrap();
    assert_eq!(
        f.store.update_consumer(update("c1")).await.unwrap(),
        ChangeOutcome::Applied
    );
    assert_eq!(
        f.store.update_consumer(update("c1")).await.unwrap(),
        ChangeOutcome::Unchanged
    );
    assert_eq!(
        f.store.delete_consumer(delete("c1")).await.unwrap(),
        ChangeOutcome::Applied
    );
    assert_eq!(
        f.store.delete_consumer(delete("c1")).await.unwrap(),
        ChangeOutcome::Unchanged
    );
    assert_eq!(
        f.store.update_consumer(update("c1")).await.unwrap(),
        ChangeOutcome::Deleted
    );
    let view = f
        .store
        .consumer(&issuer(), &consumer("c1"))
        .await
        .unwrap()
        .unwrap();
    assert!(view.pi.is_none());
}

#[tokio::test]
async fn a_deleted_consumer_registered_again_starts_with_a_new_key() {
    let f = fresh().await;
    f.store
        .register_consumer(register("c1", Some(pi("Ann"))))
        .await
        .unwrap();
    f.store.delete_consumer(delete("c1")).await.unwrap();
    assert_eq!(
        f.store
            .register_consumer(register("c1", None))
            .await
            .unwrap(),
        RegisterOutcome::Created
    );
    let view = f
        .store
        .consumer(&issuer(), &consumer("c1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.state, d1_domain::ConsumerState::Active);
    assert!(view.pi.is_none());
    assert_eq!(
        kinds(f.store.as_ref(), "c1").await,
        [
            OperationKind::Register,
            OperationKind::Delete,
            OperationKind::Register
        ]
    );
}

#[tokio::test]
async fn concurrent_writes_are_all_committed() {
    let f = fresh().await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                store
                    .register_consumer(register(&format!("c{i}"), Some(pi(&format!("N{i}")))))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), RegisterOutcome::Created);
    }
    for i in 0..200 {
        let view = f
            .store
            .consumer(&issuer(), &consumer(&format!("c{i}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            view.pi.unwrap().first_name(),
            Some(format!("N{i}").as_str())
        );
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_consumer_id_create_it_once() {
    let f = fresh().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                store
                    .register_consumer(register("same", Some(pi(&format!("N{i}")))))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let created = outcomes
        .iter()
        .filter(|o| **o == RegisterOutcome::Created)
        .count();
    let updated = outcomes
        .iter()
        .filter(|o| **o == RegisterOutcome::Updated)
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert_eq!(
        kinds(f.store.as_ref(), "same").await.len(),
        created + updated,
        "one trail entry per write that changed something"
    );
}

#[tokio::test]
async fn a_jti_is_accepted_once() {
    let f = fresh().await;
    let far = d1_store::now_ms() + 60_000;
    f.store.use_jti(&issuer(), "j1", far).await.unwrap();
    assert!(matches!(
        f.store.use_jti(&issuer(), "j1", far).await,
        Err(StoreError::Conflict(_))
    ));
    f.store
        .use_jti(&IssuerId::parse("BANK000002").unwrap(), "j1", far)
        .await
        .unwrap();
}

#[tokio::test]
async fn client_certificate_bindings_are_stored_replaced_and_removed() {
    let f = fresh().await;
    let bound = d1_store::CertBindings {
        subjects: vec!["CN=bank-a-client,O=Bank A".into()],
        sans: vec!["a.bank.example".into(), "spiffe://bank-a/client".into()],
    };
    f.store
        .add_issuer(NewIssuer {
            issuer_id: issuer(),
            pi_storage: PiStorage::Allowed,
            click_to_pay: false,
            lookalike_policy: LookalikePolicy::Warn,
            kid: "k1".into(),
            public_jwk: "{}".into(),
            client_certs: bound.clone(),
            require_jti: false,
        })
        .await
        .unwrap();
    let read = || async {
        f.store
            .issuer(&issuer())
            .await
            .unwrap()
            .unwrap()
            .client_certs
    };
    assert_eq!(read().await, bound);
    let other = d1_store::CertBindings {
        subjects: Vec::new(),
        sans: vec!["b.bank.example".into()],
    };
    let change = |certs| IssuerChange {
        client_certs: Some(certs),
        ..Default::default()
    };
    f.store
        .change_issuer(issuer(), change(other.clone()))
        .await
        .unwrap();
    assert_eq!(read().await, other, "a change replaces every binding");
    f.store
        .change_issuer(issuer(), IssuerChange::default())
        .await
        .unwrap();
    assert_eq!(read().await, other, "a change without bindings keeps them");
    f.store
        .change_issuer(issuer(), change(d1_store::CertBindings::default()))
        .await
        .unwrap();
    assert!(read().await.is_empty());
}

#[tokio::test]
async fn issuers_and_kids_are_unique_and_keep_a_key() {
    let f = fresh().await;
    let new = |id: &str, kid: &str| NewIssuer {
        issuer_id: IssuerId::parse(id).unwrap(),
        pi_storage: PiStorage::Allowed,
        click_to_pay: false,
        lookalike_policy: LookalikePolicy::Warn,
        kid: kid.into(),
        public_jwk: "{}".into(),
        client_certs: d1_store::CertBindings::default(),
        require_jti: false,
    };
    f.store.add_issuer(new("BANK000001", "k1")).await.unwrap();
    assert!(matches!(
        f.store.add_issuer(new("BANK000001", "k2")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        f.store.add_issuer(new("BANK000002", "k1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        f.store
            .issuer(&IssuerId::parse("BANK000002").unwrap())
            .await
            .unwrap()
            .is_none(),
        "a refused add leaves nothing behind"
    );
    let remove = |kid: &str| IssuerChange {
        remove_kid: Some(kid.into()),
        ..Default::default()
    };
    assert!(matches!(
        f.store.change_issuer(issuer(), remove("k1")).await,
        Err(StoreError::Conflict(_))
    ));
    let add = IssuerChange {
        add_key: Some(("k2".into(), "{}".into())),
        pi_storage: Some(PiStorage::Forbidden),
        ..Default::default()
    };
    f.store.change_issuer(issuer(), add).await.unwrap();
    f.store.change_issuer(issuer(), remove("k1")).await.unwrap();
    let record = f.store.issuer(&issuer()).await.unwrap().unwrap();
    assert_eq!(record.kids, ["k2"]);
    assert_eq!(record.pi_storage, PiStorage::Forbidden);
    assert_eq!(
        f.store
            .assertion_key("k2")
            .await
            .unwrap()
            .unwrap()
            .issuer_id,
        issuer()
    );
}

mod cards {
    use super::*;
    use d1_domain::card::{CardId, CardProductId, Expiry, Pan};
    use d1_store::{CardData, CardOutcome, CardState, RegisterCard};

    /// Register card of `pan` as `card_id` for `consumer_id`, product p1, expiring in a year.
    pub(super) fn card(card_id: &str, consumer_id: &str, pan: &str) -> RegisterCard {
        let today = time::OffsetDateTime::now_utc().date();
        RegisterCard {
            issuer_id: issuer(),
            card_id: CardId::parse(card_id).unwrap(),
            consumer_id: consumer(consumer_id),
            card_product_id: CardProductId::parse("p1").unwrap(),
            data: CardData {
                pan: Pan::parse(pan, "pan").unwrap(),
                expiry: Expiry::months_after(today, 12),
                holder: None,
            },
            state: None,
            trail: TrailContext::default(),
        }
    }

    #[tokio::test]
    async fn a_refused_card_leaves_no_implicit_consumer_and_a_deleted_pan_never_returns() {
        let f = fresh().await;
        assert_eq!(
            f.store
                .register_card(card("k1", "c1", "4111111111111111"))
                .await
                .unwrap(),
            CardOutcome::Registered {
                implicit_consumer: true
            }
        );
        assert_eq!(
            f.store
                .register_card(card("k1", "c1", "4111111111111111"))
                .await
                .unwrap(),
            CardOutcome::Retried
        );
        assert!(matches!(
            f.store
                .register_card(card("k2", "c2", "4111111111111111"))
                .await
                .unwrap(),
            CardOutcome::Conflict(_)
        ));
        assert!(f
            .store
            .consumer(&issuer(), &consumer("c2"))
            .await
            .unwrap()
            .is_none());
        f.store.delete_consumer(delete("c1")).await.unwrap();
        let view = f
            .store
            .card(&issuer(), &CardId::parse("k1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.state, CardState::Deleted);
        assert_eq!(
            f.store
                .register_card(card("k3", "c1", "4111111111111129"))
                .await
                .unwrap(),
            CardOutcome::ConsumerDeleted
        );
        f.store
            .register_consumer(register("c1", None))
            .await
            .unwrap();
        assert!(matches!(
            f.store
                .register_card(card("k9", "c1", "4111111111111111"))
                .await
                .unwrap(),
            CardOutcome::Conflict(_)
        ));
        assert!(
            f.store
                .cards(&issuer(), &consumer("c1"))
                .await
                .unwrap()
                .unwrap()
                .is_empty(),
            "a new life lists no old card"
        );
    }

    #[tokio::test]
    async fn an_update_keeps_the_cards() {
        let f = fresh().await;
        f.store
            .register_card(card("k1", "c1", "4111111111111111"))
            .await
            .unwrap();
        let update = d1_store::UpdateConsumer {
            issuer_id: issuer(),
            consumer_id: consumer("c1"),
            pi: pi("New"),
            trail: TrailContext::default(),
        };
        assert_eq!(
            f.store.update_consumer(update).await.unwrap(),
            ChangeOutcome::Applied
        );
        let cards = f.store.cards(&issuer(), &consumer("c1")).await.unwrap();
        assert_eq!(cards.unwrap()[0].state, CardState::Active);
    }

    #[tokio::test]
    async fn racing_writers_register_one_card_per_card_id_and_per_pan() {
        let f = fresh().await;
        // 16 consumers race for 4 cardIds and 4 PANs, mixed so that both indexes clash.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&f.store);
                let pans = [
                    "4111111111111111",
                    "4111111111111129",
                    "4111111111111137",
                    "4111111111111145",
                ];
                let cmd = card(&format!("k{}", i % 4), &format!("c{i}"), pans[i / 4]);
                tokio::spawn(async move { store.register_card(cmd).await.unwrap() })
            })
            .collect();
        let mut registered = 0;
        for task in tasks {
            match task.await.unwrap() {
                CardOutcome::Registered { .. } => registered += 1,
                CardOutcome::Conflict(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!((1..=4).contains(&registered), "{registered} registered");
        let mut live = 0;
        for i in 0..16 {
            if let Some(cards) = f
                .store
                .cards(&issuer(), &consumer(&format!("c{i}")))
                .await
                .unwrap()
            {
                live += cards.len();
            }
        }
        assert_eq!(
            live, registered,
            "a refused card leaves no consumer and no card"
        );
    }
}

mod click_to_pay {
    use super::*;
    use d1_domain::card::CardId;
    use d1_domain::OperationStatus;
    use d1_store::{
        BackendRecord, CardNotifications, Delivery, EnrolmentStart, FinishJob, JobKind, JobOutcome,
        StartEnrolment,
    };

    pub(super) async fn with_card(store: &dyn Store, card: &str, consumer_id: &str, pan: &str) {
        store
            .register_card(super::cards::card(card, consumer_id, pan))
            .await
            .unwrap();
    }

    pub(super) fn enrol(card: &str) -> StartEnrolment {
        StartEnrolment {
            issuer_id: issuer(),
            card_id: CardId::parse(card).unwrap(),
            billing: None,
            cardholder_name: None,
            reason: DeleteReason::default(),
            trail: TrailContext::default(),
            correlation_id: "corr-1".into(),
        }
    }

    fn finish(id: i64, outcome: JobOutcome) -> FinishJob {
        FinishJob {
            id,
            outcome,
            pi_fetch: None,
        }
    }

    pub(super) fn backend(notifications: CardNotifications, batch: u32) -> BackendRecord {
        BackendRecord {
            issuer_id: issuer(),
            url: "http://127.0.0.1:9".into(),
            client_id: Some("c".into()),
            sealed_secret: Some(vec![1, 2, 3]),
            send_card_id: true,
            pi_cache_ttl_s: 30,
            card_notifications: notifications,
            notification_batch_size: batch,
        }
    }

    /// The issuer with Click to Pay on.
    fn click_to_pay_issuer() -> NewIssuer {
        NewIssuer {
            issuer_id: issuer(),
            pi_storage: PiStorage::Allowed,
            click_to_pay: true,
            lookalike_policy: LookalikePolicy::Warn,
            kid: "k1".into(),
            public_jwk: "{}".into(),
            client_certs: d1_store::CertBindings::default(),
            require_jti: false,
        }
    }

    /// Onboards the issuer with a backend that takes `notifications`.
    pub(super) async fn onboard(store: &dyn Store, notifications: CardNotifications) {
        store.add_issuer(click_to_pay_issuer()).await.unwrap();
        store
            .set_issuer_backend(backend(notifications, 1))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_issuer_backend_needs_an_onboarded_issuer() {
        let f = fresh().await;
        let backend = backend(CardNotifications::ClickToPay, 7);
        assert!(matches!(
            f.store.set_issuer_backend(backend.clone()).await,
            Err(StoreError::NotFound)
        ));
        f.store.add_issuer(click_to_pay_issuer()).await.unwrap();
        f.store.set_issuer_backend(backend.clone()).await.unwrap();
        assert_eq!(
            f.store.issuer_backend(&issuer()).await.unwrap(),
            Some(backend.clone())
        );
        let changed = BackendRecord {
            card_notifications: CardNotifications::Off,
            notification_batch_size: 100,
            ..backend
        };
        f.store.set_issuer_backend(changed.clone()).await.unwrap();
        assert_eq!(
            f.store.issuer_backend(&issuer()).await.unwrap(),
            Some(changed),
            "set again, the backend's settings are replaced"
        );
    }

    #[tokio::test]
    async fn an_enrolment_is_leased_once_and_ends_with_one_notification() {
        let f = fresh().await;
        onboard(f.store.as_ref(), CardNotifications::ClickToPay).await;
        with_card(f.store.as_ref(), "k1", "c1", "4111111111111111").await;
        assert_eq!(
            f.store.start_enrolment(enrol("nope")).await.unwrap(),
            EnrolmentStart::CardNotFound
        );
        let EnrolmentStart::Started(op) = f.store.start_enrolment(enrol("k1")).await.unwrap()
        else {
            panic!("not started");
        };
        assert_eq!(
            f.store.start_enrolment(enrol("k1")).await.unwrap(),
            EnrolmentStart::Existing(op.clone(), OperationStatus::Pending)
        );
        let jobs = f.store.claim_jobs(60_000, 10).await.unwrap();
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(job.kind, JobKind::Enrol);
        assert_eq!(job.operation_id.as_deref(), Some(op.as_str()));
        assert_eq!(job.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(job.card.as_ref().unwrap().pan, "4111111111111111");
        assert!(job.stored_pi.is_none() && !job.unreadable);
        assert!(
            f.store.claim_jobs(60_000, 10).await.unwrap().is_empty(),
            "a leased job is not claimed again"
        );
        f.store
            .finish_job(finish(job.id, JobOutcome::Enrolled))
            .await
            .unwrap();
        // A second end of the same job (another node, after its lease ran out) changes nothing.
        f.store
            .finish_job(finish(job.id, JobOutcome::Failed("X".into())))
            .await
            .unwrap();
        let read = f.store.operation(&issuer(), &op).await.unwrap().unwrap();
        assert_eq!(read.status, OperationStatus::Successful);
        assert!(read.end_time.is_some());
        assert_eq!(
            f.store.start_enrolment(enrol("k1")).await.unwrap(),
            EnrolmentStart::Existing(op.clone(), OperationStatus::Successful),
            "a repeat of a finished enrolment answers its status"
        );
        let claim = f.store.claim_notifications(60_000, 10).await.unwrap();
        assert_eq!(
            claim.items.len(),
            1,
            "click-to-pay: the card's REGISTER is not queued"
        );
        let item: serde_json::Value = serde_json::from_str(&claim.items[0].item).unwrap();
        assert_eq!(item["operationId"], op.as_str());
        assert_eq!(item["operation"], "CLICK_TO_PAY_ENROLMENT");
        assert_eq!(item["status"], "SUCCESSFUL");
        assert_eq!(item["cardId"], "k1");
        assert_eq!(item["consumerId"], "c1");
        assert_eq!(
            item["startTime"].as_str().unwrap(),
            d1_domain::clock::rfc3339(job.started_at),
            "startTime is the acceptance"
        );
        assert!(item["endTime"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            claim.items[0].correlation_id.as_deref(),
            Some("corr-1"),
            "the correlation id the enrolment's 202 answered with"
        );
    }

    #[tokio::test]
    async fn notifications_of_one_card_go_out_in_order() {
        let f = fresh().await;
        onboard(f.store.as_ref(), CardNotifications::ClickToPay).await;
        with_card(f.store.as_ref(), "k1", "c1", "4111111111111111").await;
        let mut ops = Vec::new();
        for outcome in [
            JobOutcome::Failed("ISSUER_BACKEND_ERROR".into()),
            JobOutcome::Enrolled,
        ] {
            let EnrolmentStart::Started(op) = f.store.start_enrolment(enrol("k1")).await.unwrap()
            else {
                panic!("not started");
            };
            let job = f.store.claim_jobs(60_000, 10).await.unwrap().remove(0);
            f.store.finish_job(finish(job.id, outcome)).await.unwrap();
            ops.push(op);
        }
        let first = f.store.claim_notifications(0, 10).await.unwrap();
        assert_eq!(first.items.len(), 1, "the second waits for the first");
        assert_eq!(first.items[0].operation_id, ops[0]);
        assert!(first.items[0].item.contains("\"FAILED\""));
        let mut retry = first.settlement();
        retry
            .undelivered
            .push((first.items[0].id, Delivery::Retry(0)));
        f.store.settle_notifications(retry).await.unwrap();
        let again = f.store.claim_notifications(0, 10).await.unwrap();
        assert_eq!(again.items[0].operation_id, ops[0]);
        assert_eq!(again.items[0].attempts, 1);
        f.store
            .settle_notifications(again.settlement())
            .await
            .unwrap();
        let next = f.store.claim_notifications(0, 10).await.unwrap();
        assert_eq!(next.items.len(), 1);
        assert_eq!(next.items[0].operation_id, ops[1]);
        let mut dead = next.settlement();
        dead.undelivered.push((next.items[0].id, Delivery::Dead));
        f.store.settle_notifications(dead).await.unwrap();
        assert!(f
            .store
            .claim_notifications(0, 10)
            .await
            .unwrap()
            .items
            .is_empty());
        let dead = f
            .store
            .operation(&issuer(), &ops[1])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(dead.reason_code.as_deref(), Some("NOTIFICATION_DEAD"));
    }

    #[tokio::test]
    async fn an_update_or_delete_of_an_enrolled_consumer_queues_a_sync_after_its_enrolment() {
        let f = fresh().await;
        with_card(f.store.as_ref(), "k1", "c1", "4111111111111111").await;
        f.store
            .register_consumer(register("c1", Some(pi("Ada"))))
            .await
            .unwrap();
        let EnrolmentStart::Started(_) = f.store.start_enrolment(enrol("k1")).await.unwrap() else {
            panic!("not started");
        };
        f.store
            .update_consumer(UpdateConsumer {
                issuer_id: issuer(),
                consumer_id: consumer("c1"),
                pi: pi("Grace"),
                trail: TrailContext::default(),
            })
            .await
            .unwrap();
        let jobs = f.store.claim_jobs(60_000, 10).await.unwrap();
        assert_eq!(jobs.len(), 1, "the sync waits for the enrolment before it");
        assert_eq!(jobs[0].kind, JobKind::Enrol);
        f.store
            .finish_job(finish(jobs[0].id, JobOutcome::Enrolled))
            .await
            .unwrap();
        let sync = f.store.claim_jobs(60_000, 10).await.unwrap().remove(0);
        assert_eq!(sync.kind, JobKind::Sync);
        assert_eq!(sync.stored_pi, Some(pi("Grace")));
        f.store
            .finish_job(finish(sync.id, JobOutcome::Synced))
            .await
            .unwrap();
        f.store.delete_consumer(delete("c1")).await.unwrap();
        let removal = f.store.claim_jobs(60_000, 10).await.unwrap().remove(0);
        assert_eq!(removal.kind, JobKind::Sync);
        assert_eq!(removal.consumer_state, d1_domain::ConsumerState::Deleted);
        assert!(
            removal.stored_pi.is_none(),
            "nothing of a deleted consumer opens"
        );
    }
}

#[tokio::test]
async fn a_stored_value_that_does_not_decode_is_corrupt_and_only_its_place_is_named() {
    let f = fresh().await;
    f.store
        .register_consumer(register("c1", None))
        .await
        .unwrap();
    tamper(&f, "UPDATE consumers SET state = 'ZOMBIE'").await;
    let Err(e) = f.store.consumer(&issuer(), &consumer("c1")).await else {
        panic!("an unknown state read as a state");
    };
    assert!(
        matches!(&e, StoreError::Corrupt { table: "consumers", column } if column == "state"),
        "{e:?}"
    );
    assert!(!e.to_string().contains("ZOMBIE"), "{e}");
    assert!(matches!(
        f.store.register_consumer(register("c1", None)).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn the_database_answers_and_service_keys_are_kept_and_retired() {
    use d1_store::{KeyPurpose, ServiceKeyRecord};
    let f = fresh().await;
    f.store.ping().await.unwrap();
    assert!(!f.store.vault().kek().fingerprint().is_empty());
    let key = |kid: &str, purpose, at| ServiceKeyRecord {
        kid: kid.into(),
        purpose,
        wrapped: vec![7; 4],
        created_at: at,
        retired_at: None,
    };
    f.store
        .add_service_key(key("s1", KeyPurpose::Signing, 1))
        .await
        .unwrap();
    f.store
        .add_service_key(key("s2", KeyPurpose::Signing, 2))
        .await
        .unwrap();
    f.store
        .add_service_key(key("e1", KeyPurpose::Encryption, 3))
        .await
        .unwrap();
    assert!(matches!(
        f.store
            .add_service_key(key("s1", KeyPurpose::Encryption, 4))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        f.store.retire_service_key("e1").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        f.store.retire_service_key("nope").await,
        Err(StoreError::NotFound)
    ));
    f.store.retire_service_key("s1").await.unwrap();
    assert!(matches!(
        f.store.retire_service_key("s1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        f.store.retire_service_key("s2").await,
        Err(StoreError::Conflict(_))
    ));
    let keys = f.store.service_keys().await.unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["s1", "s2", "e1"]);
    assert!(keys[0].retired_at.is_some() && keys[1].retired_at.is_none());
    assert_eq!(keys[2].purpose, KeyPurpose::Encryption);
    assert_eq!(keys[2].wrapped, vec![7; 4]);
}

#[tokio::test]
async fn issuers_are_listed_by_id_with_their_kids_and_products_are_unique() {
    use d1_domain::card::{CardProductId, Scheme};
    use d1_store::ProductRecord;
    let f = fresh().await;
    for (id, kid) in [("BANK000002", "k2"), ("BANK000001", "k1")] {
        f.store
            .add_issuer(NewIssuer {
                issuer_id: IssuerId::parse(id).unwrap(),
                pi_storage: PiStorage::Allowed,
                click_to_pay: true,
                lookalike_policy: LookalikePolicy::Refuse,
                kid: kid.into(),
                public_jwk: "{}".into(),
                client_certs: d1_store::CertBindings::default(),
                require_jti: false,
            })
            .await
            .unwrap();
    }
    let listed = f.store.issuers().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|i| i.issuer_id.as_str()).collect();
    assert_eq!(ids, ["BANK000001", "BANK000002"]);
    assert_eq!(listed[1].kids, ["k2"]);
    assert!(listed[0].click_to_pay);
    assert_eq!(listed[0].lookalike_policy, LookalikePolicy::Refuse);

    let product = ProductRecord {
        issuer_id: issuer(),
        card_product_id: CardProductId::parse("p1").unwrap(),
        scheme: Scheme::Visa,
        bin: "411111".into(),
        validity_months: 36,
    };
    f.store.add_product(product.clone()).await.unwrap();
    assert!(matches!(
        f.store.add_product(product.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    let id = CardProductId::parse("p1").unwrap();
    assert_eq!(
        f.store.product(&issuer(), &id).await.unwrap(),
        Some(product)
    );
    let other = IssuerId::parse("BANK000002").unwrap();
    assert_eq!(f.store.product(&other, &id).await.unwrap(), None);
}

mod lifecycle {
    use super::*;
    use d1_domain::card::{CardId, CardProductId, Scheme};
    use d1_store::{
        CardOutcome, CardSpec, CardState, CreateCard, CreateOutcome, ProductRecord, RegisterCards,
    };

    fn spec(card_id: &str, pan: &str) -> CardSpec {
        let one = super::cards::card(card_id, "c1", pan);
        CardSpec {
            card_id: one.card_id,
            card_product_id: one.card_product_id,
            data: one.data,
            state: None,
        }
    }

    fn with_cards(cards: Vec<CardSpec>) -> RegisterCards {
        RegisterCards {
            issuer_id: issuer(),
            consumer_id: consumer("c1"),
            cards,
            trail: TrailContext::default(),
        }
    }

    async fn card_ids(store: &dyn Store) -> Vec<String> {
        let cards = store.cards(&issuer(), &consumer("c1")).await.unwrap();
        cards
            .unwrap_or_default()
            .iter()
            .map(|c| c.card_id.as_str().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn v1_register_with_cards_is_all_or_nothing_and_starts_a_deleted_consumer_afresh() {
        let f = fresh().await;
        let first = with_cards(vec![
            spec("k1", "4111111111111111"),
            spec("k2", "4111111111111129"),
        ]);
        assert_eq!(
            f.store.register_cards(first.clone()).await.unwrap(),
            CardOutcome::Registered {
                implicit_consumer: false
            }
        );
        assert_eq!(card_ids(&*f.store).await, ["k1", "k2"]);
        // The same cards again are a retry.
        assert_eq!(
            f.store.register_cards(first).await.unwrap(),
            CardOutcome::Registered {
                implicit_consumer: false
            }
        );
        // k3 would be new, but k4's PAN is k1's: neither stays.
        let clash = with_cards(vec![
            spec("k3", "4111111111111137"),
            spec("k4", "4111111111111111"),
        ]);
        assert!(matches!(
            f.store.register_cards(clash).await.unwrap(),
            CardOutcome::Conflict(_)
        ));
        assert_eq!(card_ids(&*f.store).await, ["k1", "k2"]);
        f.store.delete_consumer(delete("c1")).await.unwrap();
        let again = with_cards(vec![spec("k5", "4111111111111145")]);
        f.store.register_cards(again).await.unwrap();
        assert_eq!(card_ids(&*f.store).await, ["k5"]);
        let view = f.store.consumer(&issuer(), &consumer("c1")).await.unwrap();
        assert_eq!(view.unwrap().state, d1_domain::ConsumerState::Active);
        let old = f
            .store
            .card(&issuer(), &CardId::parse("k1").unwrap())
            .await
            .unwrap();
        assert_eq!(old.unwrap().state, CardState::Deleted);
    }

    #[tokio::test]
    async fn create_card_allocates_in_the_products_range_and_answers_a_key_once() {
        let f = fresh().await;
        let product = ProductRecord {
            issuer_id: issuer(),
            card_product_id: CardProductId::parse("p2").unwrap(),
            scheme: Scheme::Visa,
            bin: "411111".into(),
            validity_months: 24,
        };
        let create = |key: Option<(&str, &[u8])>| CreateCard {
            issuer_id: issuer(),
            consumer_id: consumer("c1"),
            product: product.clone(),
            state: CardState::Inactive,
            holder: None,
            idempotency: key.map(|(k, h)| (k.to_owned(), h.to_vec())),
            trail: TrailContext::default(),
        };
        assert_eq!(
            f.store.create_card(create(None)).await.unwrap(),
            CreateOutcome::ConsumerNotFound
        );
        f.store
            .register_consumer(register("c1", None))
            .await
            .unwrap();
        let CreateOutcome::Created(id) = f
            .store
            .create_card(create(Some(("key-1", b"h1"))))
            .await
            .unwrap()
        else {
            panic!("no card created");
        };
        let card = f.store.card(&issuer(), &id).await.unwrap().unwrap();
        assert_eq!(
            (
                card.state,
                card.card_product_id.as_str(),
                card.scheme.as_str()
            ),
            (CardState::Inactive, "p2", "VISA")
        );
        assert_eq!(card.last4.len(), 4);
        assert_eq!(
            f.store
                .create_card(create(Some(("key-1", b"h1"))))
                .await
                .unwrap(),
            CreateOutcome::Created(id.clone())
        );
        assert_eq!(
            f.store
                .create_card(create(Some(("key-1", b"h2"))))
                .await
                .unwrap(),
            CreateOutcome::KeyReused
        );
        assert_eq!(card_ids(&*f.store).await, [id.as_str()]);
        assert_eq!(
            kinds(&*f.store, "c1").await,
            [OperationKind::CardCreate, OperationKind::Register]
        );
        f.store.delete_consumer(delete("c1")).await.unwrap();
        assert_eq!(
            f.store.create_card(create(None)).await.unwrap(),
            CreateOutcome::ConsumerDeleted
        );
    }

    #[tokio::test]
    async fn the_directory_keeps_a_profile_and_its_cards_until_removed() {
        use d1_store::{DirectoryWrite, Sealed};
        let f = fresh().await;
        let sealed = |b: u8| Sealed {
            wrapped_key: vec![b],
            sealed: vec![b, b],
        };
        let write = |card: Option<&str>, b: u8| DirectoryWrite {
            issuer_id: issuer(),
            consumer_id: consumer("c1"),
            profile: sealed(b),
            card: card.map(|c| (c.to_owned(), sealed(b))),
        };
        let (bank, c1) = (issuer(), consumer("c1"));
        let profile = || f.store.directory_profile(&bank, &c1);
        assert!(!f.store.directory_put(write(None, 1), false).await.unwrap());
        assert!(
            profile().await.unwrap().is_none(),
            "not created without create"
        );
        assert!(!f
            .store
            .directory_put(write(Some("k2"), 2), true)
            .await
            .unwrap());
        // Times are milliseconds: k1 joins in a later one than k2.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        assert!(f
            .store
            .directory_put(write(Some("k1"), 3), false)
            .await
            .unwrap());
        let stored = profile().await.unwrap().unwrap();
        // In the order they joined (k2, a millisecond or more before k1), not by id.
        assert_eq!(stored.card_ids, ["k2", "k1"]);
        assert_eq!(stored.profile.sealed, vec![3, 3]);
        assert!(stored.updated_at >= stored.created_at);
        assert!(f
            .store
            .directory_remove(&issuer(), &consumer("c1"))
            .await
            .unwrap());
        assert!(profile().await.unwrap().is_none());
        assert!(!f
            .store
            .directory_remove(&issuer(), &consumer("c1"))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_lease_is_void_when_the_only_node_starts_again() {
        let f = fresh().await;
        super::click_to_pay::with_card(&*f.store, "k1", "c1", "4111111111111111").await;
        f.store
            .start_enrolment(super::click_to_pay::enrol("k1"))
            .await
            .unwrap();
        assert_eq!(f.store.claim_jobs(60_000, 10).await.unwrap().len(), 1);
        assert!(f.store.claim_jobs(60_000, 10).await.unwrap().is_empty());
        f.store.release_leases().await.unwrap();
        // One SQLite file has one node; a shared PostgreSQL waits for the lease instead.
        let expected = usize::from(!on_postgres());
        assert_eq!(
            f.store.claim_jobs(60_000, 10).await.unwrap().len(),
            expected
        );
    }
}

mod card_life_cycle {
    use super::*;
    use d1_domain::card::{CardId, CardProductId, Expiry, Pan, Scheme};
    use d1_store::{
        CardAction, CardData, CardState, CreateCard, CreateOutcome, DirectoryWrite, EnrolmentStart,
        JobKind, OperateCard, OperateOutcome, ProductRecord, ReasonCode, RegisterCard, Sealed,
    };

    const PAN: &str = "4111111111111111";
    const OTHER_PAN: &str = "4111111111111129";
    const THIRD_PAN: &str = "4111111111111137";

    fn id(card: &str) -> CardId {
        CardId::parse(card).unwrap()
    }

    fn op(card: &str, action: CardAction, code: ReasonCode) -> OperateCard {
        OperateCard {
            issuer_id: issuer(),
            card_id: id(card),
            action,
            reason_code: code,
            reason: Some("asked by phone".into()),
            trail: TrailContext::default(),
        }
    }

    fn data(pan: &str, months: u32) -> CardData {
        CardData {
            pan: Pan::parse(pan, "pan").unwrap(),
            expiry: Expiry::months_after(time::OffsetDateTime::now_utc().date(), months),
            holder: None,
        }
    }

    /// A store whose issuer is onboarded with a backend, so that operations are notified.
    async fn notified() -> Fresh {
        let f = fresh().await;
        super::click_to_pay::onboard(f.store.as_ref(), d1_store::CardNotifications::All).await;
        f
    }

    async fn run(f: &Fresh, cmd: OperateCard) -> OperateOutcome {
        f.store.operate_card(cmd).await.unwrap()
    }

    async fn done(f: &Fresh, cmd: OperateCard) -> String {
        match run(f, cmd).await {
            OperateOutcome::Done { operation_id, .. } => operation_id,
            other => panic!("not done: {other:?}"),
        }
    }

    async fn view(f: &Fresh, card: &str) -> d1_store::CardView {
        f.store.card(&issuer(), &id(card)).await.unwrap().unwrap()
    }

    /// The notification items queued so far, delivered in as many claims as their per-card
    /// order needs: (operation, cardId, reasonCode).
    async fn items(f: &Fresh) -> Vec<(String, String, String)> {
        let mut found = Vec::new();
        loop {
            let claim = f.store.claim_notifications(60_000, 100).await.unwrap();
            if claim.items.is_empty() {
                return found;
            }
            for n in &claim.items {
                let item: serde_json::Value = serde_json::from_str(&n.item).unwrap();
                let text = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
                found.push((text("operation"), text("cardId"), text("reasonCode")));
            }
            f.store
                .settle_notifications(claim.settlement())
                .await
                .unwrap();
        }
    }

    async fn with_card(f: &Fresh, card: &str, pan: &str) {
        f.store
            .register_card(super::cards::card(card, "c1", pan))
            .await
            .unwrap();
    }

    async fn sealed_cards(f: &Fresh) -> i64 {
        let sql = "SELECT count(*) FROM cards WHERE sealed IS NOT NULL";
        match f.url.strip_prefix("sqlite://") {
            Some(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            None => d1_scratch::connect(&f.url)
                .await
                .unwrap()
                .query_one(sql, &[])
                .await
                .unwrap()
                .try_get(0)
                .unwrap(),
        }
    }

    #[tokio::test]
    async fn suspend_and_resume_follow_the_reason_table_and_a_retry_answers_the_first_id() {
        let f = notified().await;
        with_card(&f, "k1", PAN).await;
        with_card(&f, "k2", OTHER_PAN).await;
        items(&f).await;
        assert_eq!(
            run(&f, op("nope", CardAction::Suspend, ReasonCode::CardLost)).await,
            OperateOutcome::CardNotFound
        );
        let stolen = done(&f, op("k1", CardAction::Suspend, ReasonCode::CardStolen)).await;
        assert_eq!(
            run(&f, op("k1", CardAction::Suspend, ReasonCode::CardStolen)).await,
            OperateOutcome::Retried {
                operation_id: stolen.clone(),
                card_id: id("k1")
            }
        );
        let refused = OperateOutcome::InvalidState {
            state: CardState::Suspended,
            reason: Some("CARD_STOLEN".into()),
        };
        for code in [
            ReasonCode::CardFound,
            ReasonCode::IssuerDecision,
            ReasonCode::UserDecision,
        ] {
            assert_eq!(run(&f, op("k1", CardAction::Resume, code)).await, refused);
        }
        assert_eq!(
            run(&f, op("k1", CardAction::Suspend, ReasonCode::CardLost)).await,
            refused,
            "suspended again with another reason"
        );
        done(&f, op("k2", CardAction::Suspend, ReasonCode::CardLost)).await;
        assert!(matches!(
            run(&f, op("k2", CardAction::Resume, ReasonCode::IssuerDecision)).await,
            OperateOutcome::InvalidState { .. }
        ));
        let found = done(&f, op("k2", CardAction::Resume, ReasonCode::CardFound)).await;
        assert_eq!(
            run(&f, op("k2", CardAction::Resume, ReasonCode::CardFound)).await,
            OperateOutcome::Retried {
                operation_id: found,
                card_id: id("k2")
            }
        );
        assert_eq!(
            run(&f, op("k2", CardAction::Resume, ReasonCode::UserDecision)).await,
            OperateOutcome::InvalidState {
                state: CardState::Active,
                reason: Some("CARD_FOUND".into())
            },
            "resume of an ACTIVE card"
        );
        let k2 = view(&f, "k2").await;
        assert_eq!(
            (k2.state, k2.state_reason.as_deref()),
            (CardState::Active, Some("CARD_FOUND"))
        );
        assert_eq!(view(&f, "k1").await.state, CardState::Suspended);
        assert_eq!(
            kinds(&*f.store, "c1").await[..3],
            [
                OperationKind::CardResume,
                OperationKind::CardSuspend,
                OperationKind::CardSuspend
            ]
        );
        let page = f
            .store
            .operations(&issuer(), &consumer("c1"), 1, None)
            .await
            .unwrap()
            .unwrap();
        let last = &page.operations[0];
        assert_eq!(last.reason_code.as_deref(), Some("CARD_FOUND"));
        assert_eq!(last.reason.as_deref(), Some("asked by phone"));
        assert_eq!(
            items(&f).await,
            [
                ("SUSPEND".into(), "k1".into(), "CARD_STOLEN".into()),
                ("SUSPEND".into(), "k2".into(), "CARD_LOST".into()),
                ("RESUME".into(), "k2".into(), "CARD_FOUND".into()),
            ],
            "one notification per operation, none for refusals or retries"
        );
    }

    #[tokio::test]
    async fn delete_shreds_the_card_takes_it_out_of_the_directory_and_its_pan_never_returns() {
        let f = fresh().await;
        with_card(&f, "k1", PAN).await;
        with_card(&f, "k2", OTHER_PAN).await;
        let sealed = |b: u8| Sealed {
            wrapped_key: vec![b],
            sealed: vec![b],
        };
        for card in ["k1", "k2"] {
            let write = DirectoryWrite {
                issuer_id: issuer(),
                consumer_id: consumer("c1"),
                profile: sealed(1),
                card: Some((card.into(), sealed(2))),
            };
            f.store.directory_put(write, true).await.unwrap();
        }
        assert_eq!(sealed_cards(&f).await, 2);
        let deleted = done(&f, op("k1", CardAction::Delete, ReasonCode::ClosedCard)).await;
        assert_eq!(
            sealed_cards(&f).await,
            1,
            "the deleted card's data is shredded"
        );
        let profile = f
            .store
            .directory_profile(&issuer(), &consumer("c1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(profile.card_ids, ["k2"]);
        let k1 = view(&f, "k1").await;
        assert_eq!(
            (k1.state, k1.state_reason.as_deref()),
            (CardState::Deleted, Some("CLOSED_CARD"))
        );
        assert_eq!(
            run(&f, op("k1", CardAction::Delete, ReasonCode::ClosedCard)).await,
            OperateOutcome::Retried {
                operation_id: deleted,
                card_id: id("k1")
            }
        );
        let final_state = OperateOutcome::InvalidState {
            state: CardState::Deleted,
            reason: Some("CLOSED_CARD".into()),
        };
        assert_eq!(
            run(&f, op("k1", CardAction::Delete, ReasonCode::Fraud)).await,
            final_state
        );
        // Refused for its state before its (shredded) PAN could be compared.
        let renew = CardAction::Renew {
            data: Some(data(THIRD_PAN, 24)),
        };
        assert_eq!(
            run(&f, op("k1", renew, ReasonCode::Expiry)).await,
            final_state
        );
        assert!(matches!(
            f.store
                .register_card(super::cards::card("k9", "c1", PAN))
                .await
                .unwrap(),
            d1_store::CardOutcome::Conflict(_)
        ));
        assert!(matches!(
            f.store
                .register_card(super::cards::card("k1", "c1", THIRD_PAN))
                .await
                .unwrap(),
            d1_store::CardOutcome::Registered { .. }
        ));
    }

    #[tokio::test]
    async fn a_registered_card_renews_with_its_own_pan_and_a_later_expiry_only() {
        let f = fresh().await;
        with_card(&f, "k1", PAN).await;
        let renew = |pan: &str, months: u32| {
            op(
                "k1",
                CardAction::Renew {
                    data: Some(data(pan, months)),
                },
                ReasonCode::Expiry,
            )
        };
        let refused = |r: OperateOutcome| match r {
            OperateOutcome::Refused(e) => (e.kind, e.field),
            other => panic!("not refused: {other:?}"),
        };
        use d1_domain::FieldErrorKind::{Format, Value};
        assert_eq!(
            refused(run(&f, renew(OTHER_PAN, 36)).await),
            (Value, "encryptedData".into())
        );
        assert_eq!(
            refused(run(&f, renew(PAN, 12)).await),
            (Value, "encryptedData".into())
        );
        let bare = op("k1", CardAction::Renew { data: None }, ReasonCode::Expiry);
        assert_eq!(
            refused(run(&f, bare).await),
            (Format, "encryptedData".into())
        );
        let first = done(&f, renew(PAN, 36)).await;
        let k1 = view(&f, "k1").await;
        assert_eq!(k1.expiry, data(PAN, 36).expiry.mmyy());
        assert_eq!((k1.ongoing_operation, k1.renewed_expiry), (None, None));
        assert_eq!(
            run(&f, renew(PAN, 36)).await,
            OperateOutcome::Retried {
                operation_id: first,
                card_id: id("k1")
            }
        );
        done(&f, renew(PAN, 48)).await;
        assert_eq!(
            kinds(&*f.store, "c1").await[..2],
            [OperationKind::CardRenew; 2]
        );
    }

    async fn created(f: &Fresh, state: CardState) -> CardId {
        let product = ProductRecord {
            issuer_id: issuer(),
            card_product_id: CardProductId::parse("p2").unwrap(),
            scheme: Scheme::Visa,
            bin: "411111".into(),
            validity_months: 24,
        };
        let _ = f.store.add_product(product.clone()).await;
        f.store
            .register_consumer(register("c1", None))
            .await
            .unwrap();
        let cmd = CreateCard {
            issuer_id: issuer(),
            consumer_id: consumer("c1"),
            product,
            state,
            holder: None,
            idempotency: None,
            trail: TrailContext::default(),
        };
        match f.store.create_card(cmd).await.unwrap() {
            CreateOutcome::Created(id) => id,
            other => panic!("not created: {other:?}"),
        }
    }

    #[tokio::test]
    async fn due_renewals_are_created_cards_of_live_consumers_with_no_renewal_waiting() {
        let f = fresh().await;
        let card = created(&f, CardState::Active).await;
        let expiry = view(&f, card.as_str()).await.expiry;
        let due = |months: Vec<String>| {
            let store = Arc::clone(&f.store);
            async move { store.due_renewals(months, 10).await.unwrap() }
        };
        assert_eq!(
            due(vec![expiry.clone()]).await,
            vec![(issuer(), card.clone())]
        );
        assert!(due(vec!["0199".into()]).await.is_empty(), "another month");
        // A registered card of the same expiry is the issuer's to renew, never ours.
        let registered = RegisterCard {
            issuer_id: issuer(),
            card_id: id("reg-1"),
            consumer_id: consumer("c1"),
            card_product_id: CardProductId::parse("p2").unwrap(),
            data: data(PAN, 24),
            state: None,
            trail: TrailContext::default(),
        };
        f.store.register_card(registered).await.unwrap();
        assert_eq!(due(vec![expiry.clone()]).await.len(), 1);
        // Once a renewal waits for activation, the card is not due again.
        let renew = op(
            card.as_str(),
            CardAction::Renew { data: None },
            ReasonCode::Expiry,
        );
        done(&f, renew).await;
        assert!(due(vec![expiry.clone()]).await.is_empty());
        // A deleted consumer's cards are never renewed.
        let other = created(&f, CardState::Active).await;
        f.store.delete_consumer(delete("c1")).await.unwrap();
        assert!(!due(vec![expiry]).await.contains(&(issuer(), other)));
    }

    #[tokio::test]
    async fn a_scheduled_run_is_taken_by_one_caller_until_its_lease_runs_out() {
        let f = fresh().await;
        assert!(f.store.take_scheduled_run("renewal", 60_000).await.unwrap());
        assert!(!f.store.take_scheduled_run("renewal", 60_000).await.unwrap());
        assert!(
            f.store.take_scheduled_run("other", 1).await.unwrap(),
            "each name its own"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            f.store.take_scheduled_run("other", 60_000).await.unwrap(),
            "lease over"
        );
        assert!(
            f.store.take_scheduled_run("other", 1_000).await.unwrap(),
            "a lease far longer than the one asked for is cut short"
        );
        assert!(
            !f.store.take_scheduled_run("other", 600).await.unwrap(),
            "but not one less than twice as long"
        );
        let racing: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&f.store);
                tokio::spawn(async move { store.take_scheduled_run("race", 60_000).await.unwrap() })
            })
            .collect();
        let mut taken = 0;
        for r in racing {
            taken += usize::from(r.await.unwrap());
        }
        assert_eq!(taken, 1, "concurrent callers: exactly one takes it");
    }

    #[tokio::test]
    async fn a_created_card_renewal_waits_for_activate_and_activate_takes_an_inactive_card() {
        let f = fresh().await;
        let card = created(&f, CardState::Active).await;
        let card = card.as_str();
        let before = view(&f, card).await;
        let renewal = done(
            &f,
            op(card, CardAction::Renew { data: None }, ReasonCode::Expiry),
        )
        .await;
        let renewing = view(&f, card).await;
        assert_eq!(renewing.ongoing_operation.as_deref(), Some("RENEWAL"));
        assert_eq!(
            renewing.expiry, before.expiry,
            "the old expiry holds until activation"
        );
        let renewed = renewing.renewed_expiry.clone().unwrap();
        assert_eq!(
            renewed,
            Expiry::months_after(time::OffsetDateTime::now_utc().date(), 24).mmyy()
        );
        assert_eq!(
            run(
                &f,
                op(card, CardAction::Renew { data: None }, ReasonCode::Expiry)
            )
            .await,
            OperateOutcome::Retried {
                operation_id: renewal,
                card_id: id(card)
            }
        );
        let with_data = CardAction::Renew {
            data: Some(data(PAN, 36)),
        };
        assert!(matches!(
            run(&f, op(card, with_data, ReasonCode::Expiry)).await,
            OperateOutcome::Refused(_)
        ));
        done(&f, op(card, CardAction::Activate, ReasonCode::UserDecision)).await;
        let active = view(&f, card).await;
        assert_eq!(active.expiry, renewed);
        assert_eq!(
            (active.ongoing_operation, active.renewed_expiry),
            (None, None)
        );
        assert_eq!(
            active.state_reason, None,
            "the state was not set by the activate"
        );
        assert!(matches!(
            run(
                &f,
                op(card, CardAction::Activate, ReasonCode::IssuerDecision)
            )
            .await,
            OperateOutcome::InvalidState {
                state: CardState::Active,
                ..
            }
        ));
        let inactive = created(&f, CardState::Inactive).await;
        done(
            &f,
            op(
                inactive.as_str(),
                CardAction::Activate,
                ReasonCode::IssuerDecision,
            ),
        )
        .await;
        let activated = view(&f, inactive.as_str()).await;
        assert_eq!(
            (activated.state, activated.state_reason.as_deref()),
            (CardState::Active, Some("ISSUER_DECISION"))
        );
        assert!(matches!(
            run(
                &f,
                op(inactive.as_str(), CardAction::Suspend, ReasonCode::Fraud)
            )
            .await,
            OperateOutcome::Done { .. }
        ));
    }

    #[tokio::test]
    async fn a_registered_card_is_replaced_by_a_new_active_card_and_its_id_may_be_reused() {
        let f = notified().await;
        with_card(&f, "k1", PAN).await;
        with_card(&f, "k2", OTHER_PAN).await;
        items(&f).await;
        let replace = |new: Option<&str>, pan: &str| {
            let action = CardAction::Replace {
                new_card_id: new.map(id),
                data: Some(data(pan, 36)),
            };
            op("k1", action, ReasonCode::CardLost)
        };
        assert!(matches!(
            run(&f, replace(None, THIRD_PAN)).await,
            OperateOutcome::Refused(e) if e.field == "newCardId"
        ));
        assert!(matches!(
            run(&f, replace(Some("k2"), THIRD_PAN)).await,
            OperateOutcome::Conflict(_)
        ));
        assert!(matches!(
            run(&f, replace(Some("k3"), OTHER_PAN)).await,
            OperateOutcome::Conflict(_)
        ));
        let OperateOutcome::Done {
            operation_id,
            card_id,
        } = run(&f, replace(Some("k3"), THIRD_PAN)).await
        else {
            panic!("not replaced");
        };
        assert_eq!(card_id, id("k3"));
        let (old, new) = (view(&f, "k1").await, view(&f, "k3").await);
        assert_eq!(
            (old.state, old.replaced_by.as_deref()),
            (CardState::Replaced, Some("k3"))
        );
        assert_eq!(old.state_reason.as_deref(), Some("CARD_LOST"));
        assert_eq!(
            (new.state, new.replaces.as_deref()),
            (CardState::Active, Some("k1"))
        );
        assert_eq!(new.consumer_id, old.consumer_id);
        assert_eq!(new.card_product_id, old.card_product_id);
        assert_eq!(
            run(&f, replace(Some("k3"), THIRD_PAN)).await,
            OperateOutcome::Retried {
                operation_id,
                card_id: id("k3")
            }
        );
        assert!(matches!(
            run(&f, op("k1", CardAction::Resume, ReasonCode::CardFound)).await,
            OperateOutcome::InvalidState {
                state: CardState::Replaced,
                ..
            }
        ));
        assert_eq!(
            kinds(&*f.store, "c1").await[..2],
            [OperationKind::CardRegister, OperationKind::CardReplace]
        );
        assert_eq!(
            items(&f).await,
            [
                ("REPLACE".into(), "k1".into(), "CARD_LOST".into()),
                ("REGISTER".into(), "k3".into(), String::new()),
            ]
        );
        // The REPLACED card's id may be reused; its PAN never.
        assert!(matches!(
            f.store
                .register_card(super::cards::card("k1", "c1", PAN))
                .await
                .unwrap(),
            d1_store::CardOutcome::Conflict(_)
        ));
        with_card(&f, "k1", "4111111111111145").await;
        let reused = view(&f, "k1").await;
        assert_eq!(
            (reused.state, reused.replaced_by),
            (CardState::Active, None)
        );
    }

    #[tokio::test]
    async fn a_created_card_is_replaced_in_its_range_and_its_enrolment_moves_to_the_new_card() {
        let f = fresh().await;
        let card = created(&f, CardState::Active).await;
        let EnrolmentStart::Started(_) = f
            .store
            .start_enrolment(super::click_to_pay::enrol(card.as_str()))
            .await
            .unwrap()
        else {
            panic!("not started");
        };
        let action = CardAction::Replace {
            new_card_id: None,
            data: None,
        };
        let OperateOutcome::Done { card_id, .. } =
            run(&f, op(card.as_str(), action, ReasonCode::CardStolen)).await
        else {
            panic!("not replaced");
        };
        assert!(card_id.as_str().starts_with("crd_") && card_id != card);
        let new = view(&f, card_id.as_str()).await;
        assert_eq!(new.replaces.as_deref(), Some(card.as_str()));
        assert_eq!(new.state, CardState::Active);
        assert_eq!(
            kinds(&*f.store, "c1").await[0],
            OperationKind::ClickToPayEnrolment
        );
        let jobs = f.store.claim_jobs(60_000, 10).await.unwrap();
        let enrolments: Vec<_> = jobs
            .iter()
            .filter(|j| j.kind == JobKind::Enrol)
            .map(|j| j.card_id.clone().unwrap_or_default())
            .collect();
        assert!(
            enrolments.contains(&card_id.as_str().to_owned()),
            "{enrolments:?}"
        );
        let with_data = CardAction::Replace {
            new_card_id: None,
            data: Some(data(PAN, 36)),
        };
        assert!(matches!(
            run(&f, op(card_id.as_str(), with_data, ReasonCode::CardLost)).await,
            OperateOutcome::Refused(_)
        ));
    }

    #[tokio::test]
    async fn a_card_of_a_deleted_consumer_is_refused_and_concurrent_suspends_apply_once() {
        let f = fresh().await;
        with_card(&f, "k1", PAN).await;
        let codes = [
            ReasonCode::CardLost,
            ReasonCode::CardStolen,
            ReasonCode::Fraud,
            ReasonCode::UserDecision,
            ReasonCode::IssuerDecision,
            ReasonCode::CardBroken,
        ];
        let tasks: Vec<_> = codes
            .into_iter()
            .map(|code| {
                let store = Arc::clone(&f.store);
                tokio::spawn(async move {
                    store
                        .operate_card(op("k1", CardAction::Suspend, code))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut applied = 0;
        for task in tasks {
            match task.await.unwrap() {
                OperateOutcome::Done { .. } => applied += 1,
                OperateOutcome::InvalidState { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(applied, 1, "one suspension wins, the others see it");
        f.store.delete_consumer(delete("c1")).await.unwrap();
        assert_eq!(
            run(&f, op("k1", CardAction::Delete, ReasonCode::ClosedAccount)).await,
            OperateOutcome::ConsumerDeleted
        );
    }
}

mod notifications {
    use super::click_to_pay::{backend, onboard};
    use super::*;
    use d1_domain::CorrelationId;
    use d1_store::{CardNotifications, CardOutcome, CardSpec, Delivery, RegisterCards};
    use serde_json::Value;

    fn with_correlation(mut cmd: d1_store::RegisterCard, id: &str) -> d1_store::RegisterCard {
        cmd.trail.correlation_id = Some(CorrelationId::parse_v2(id).unwrap());
        cmd
    }

    /// Every queued item, claimed and delivered: (operation, cardId, item).
    async fn drain(store: &dyn Store) -> Vec<(String, String, Value)> {
        let mut seen = Vec::new();
        loop {
            let claim = store.claim_notifications(60_000, 100).await.unwrap();
            if claim.items.is_empty() {
                return seen;
            }
            for n in &claim.items {
                let item: Value = serde_json::from_str(&n.item).unwrap();
                assert_eq!(item["operationId"], n.operation_id.as_str());
                assert_eq!(item["cardId"], n.card_id.as_str());
                seen.push((
                    item["operation"].as_str().unwrap().to_owned(),
                    n.card_id.clone(),
                    item,
                ));
            }
            store
                .settle_notifications(claim.settlement())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn every_card_operation_queues_one_item_and_an_identical_retry_none() {
        let f = fresh().await;
        onboard(f.store.as_ref(), CardNotifications::All).await;
        let first = with_correlation(super::cards::card("k1", "c1", "4111111111111111"), "corr-9");
        assert_eq!(
            f.store.register_card(first.clone()).await.unwrap(),
            CardOutcome::Registered {
                implicit_consumer: true
            }
        );
        // An identical retry changes nothing and is not notified; a new state is.
        assert_eq!(
            f.store.register_card(first.clone()).await.unwrap(),
            CardOutcome::Retried
        );
        let mut inactive = first.clone();
        inactive.state = Some(d1_store::CardState::Inactive);
        f.store.register_card(inactive).await.unwrap();
        // A refused registration (the PAN of k1 under another cardId) is not notified.
        assert!(matches!(
            f.store
                .register_card(super::cards::card("k9", "c1", "4111111111111111"))
                .await
                .unwrap(),
            CardOutcome::Conflict(_)
        ));
        let spec = |card: &str, pan: &str| {
            let one = super::cards::card(card, "c2", pan);
            CardSpec {
                card_id: one.card_id,
                card_product_id: one.card_product_id,
                data: one.data,
                state: None,
            }
        };
        f.store
            .register_cards(RegisterCards {
                issuer_id: issuer(),
                consumer_id: consumer("c2"),
                cards: vec![
                    spec("k2", "4111111111111129"),
                    spec("k3", "4111111111111137"),
                ],
                trail: TrailContext::default(),
            })
            .await
            .unwrap();
        f.store.delete_consumer(delete("c2")).await.unwrap();

        let seen = drain(f.store.as_ref()).await;
        let kinds: Vec<(&str, &str)> = seen
            .iter()
            .map(|(op, card, _)| (op.as_str(), card.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                // The first claim: the oldest item of each card.
                ("REGISTER", "k1"),
                ("REGISTER", "k2"),
                ("REGISTER", "k3"),
                // The next: what waited behind them.
                ("REGISTER", "k1"),
                ("DELETE", "k2"),
                ("DELETE", "k3"),
            ],
            "one item per operation, the cascade one per card, a card's items in order"
        );
        let item = &seen[0].2;
        assert_eq!(item["status"], "SUCCESSFUL");
        assert_eq!(item["consumerId"], "c1");
        assert_eq!(
            item["startTime"], item["endTime"],
            "a synchronous operation"
        );
        assert!(item.get("reasonCode").is_none());
        let trail = f
            .store
            .operations(&issuer(), &consumer("c1"), 10, None)
            .await
            .unwrap()
            .unwrap();
        let registered = trail
            .operations
            .iter()
            .filter(|o| o.operation == OperationKind::CardRegister)
            .map(|o| o.operation_id.as_str())
            .collect::<Vec<_>>();
        assert!(registered.contains(&item["operationId"].as_str().unwrap()));
    }

    #[tokio::test]
    async fn the_backend_setting_decides_what_is_queued() {
        let f = fresh().await;
        f.store
            .register_card(super::cards::card("k0", "c0", "4111111111111152"))
            .await
            .unwrap();
        onboard(f.store.as_ref(), CardNotifications::Off).await;
        f.store
            .register_card(super::cards::card("k1", "c1", "4111111111111111"))
            .await
            .unwrap();
        f.store
            .set_issuer_backend(backend(CardNotifications::ClickToPay, 1))
            .await
            .unwrap();
        f.store
            .register_card(super::cards::card("k2", "c1", "4111111111111129"))
            .await
            .unwrap();
        assert!(
            drain(f.store.as_ref()).await.is_empty(),
            "no backend, off, and click-to-pay leave a registration out"
        );
        f.store
            .set_issuer_backend(backend(CardNotifications::All, 1))
            .await
            .unwrap();
        f.store
            .register_card(super::cards::card("k3", "c1", "4111111111111137"))
            .await
            .unwrap();
        let seen = drain(f.store.as_ref()).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, "k3");
    }

    #[tokio::test]
    async fn a_claim_takes_many_items_one_per_card_and_a_stale_settlement_changes_nothing() {
        let f = fresh().await;
        onboard(f.store.as_ref(), CardNotifications::All).await;
        let pans = ["4111111111111111", "4111111111111129", "4111111111111137"];
        for (n, pan) in pans.iter().enumerate() {
            let cmd = with_correlation(
                super::cards::card(&format!("k{n}"), "c1", pan),
                &format!("corr-{n}"),
            );
            f.store.register_card(cmd).await.unwrap();
        }
        let mut again = super::cards::card("k0", "c1", pans[0]);
        again.state = Some(d1_store::CardState::Inactive);
        f.store.register_card(again).await.unwrap();

        let claim = f.store.claim_notifications(0, 100).await.unwrap();
        let cards: Vec<&str> = claim.items.iter().map(|n| n.card_id.as_str()).collect();
        assert_eq!(
            cards,
            ["k0", "k1", "k2"],
            "k0's second item waits for its first"
        );
        assert_eq!(claim.items[1].correlation_id.as_deref(), Some("corr-1"));
        // Lease 0: the items are due again at once, and another node claims them.
        let other = f.store.claim_notifications(60_000, 100).await.unwrap();
        assert_eq!(other.items.len(), 3);
        f.store
            .settle_notifications(claim.settlement())
            .await
            .unwrap();
        let mut failed = other.settlement();
        failed
            .undelivered
            .push((other.items[1].id, Delivery::Retry(0)));
        f.store.settle_notifications(failed).await.unwrap();
        let rest = f.store.claim_notifications(60_000, 100).await.unwrap();
        let cards: Vec<&str> = rest.items.iter().map(|n| n.card_id.as_str()).collect();
        assert_eq!(
            cards,
            ["k1", "k0"],
            "the stale claim settled nothing; the other's delivered items are gone"
        );
        assert_eq!(rest.items[0].attempts, 1);
        assert_eq!(rest.items[1].attempts, 0, "k0's second item, due now");
    }

    #[tokio::test]
    async fn an_item_that_does_not_decode_stays_out_of_its_claims_settlement() {
        let f = fresh().await;
        onboard(f.store.as_ref(), CardNotifications::All).await;
        f.store
            .register_card(super::cards::card("k1", "c1", "4111111111111111"))
            .await
            .unwrap();
        f.store
            .register_card(super::cards::card("k2", "c1", "4111111111111129"))
            .await
            .unwrap();
        tamper(
            &f,
            "UPDATE notifications SET issuer_id = 'not an issuer' WHERE card_id = 'k1'",
        )
        .await;
        let claim = f.store.claim_notifications(0, 100).await.unwrap();
        assert_eq!(claim.items.len(), 1);
        assert_eq!(claim.items[0].card_id, "k2");
        f.store
            .settle_notifications(claim.settlement())
            .await
            .unwrap();
        tamper(
            &f,
            "UPDATE notifications SET issuer_id = 'BANK000001' WHERE card_id = 'k1'",
        )
        .await;
        let left = f.store.claim_notifications(0, 100).await.unwrap();
        let cards: Vec<&str> = left.items.iter().map(|n| n.card_id.as_str()).collect();
        assert_eq!(cards, ["k1"], "kept, not taken for delivered");
    }
}

/// A notification queued before the outbox held items (an envelope of one item) is still
/// delivered after the upgrade: its item is the envelope's, with the fields items carry now,
/// and an issuer backend set before keeps getting every card operation, one per call.
#[tokio::test]
async fn the_upgrade_keeps_queued_notifications_and_backends_take_every_operation() {
    let old: &[&str] = if on_postgres() {
        &[
            include_str!("../migrations/postgres/0001_init.sql"),
            include_str!("../migrations/postgres/0002_click_to_pay.sql"),
            include_str!("../migrations/postgres/0003_trail_without_foreign_key.sql"),
        ]
    } else {
        &[
            include_str!("../migrations/sqlite/0001_init.sql"),
            include_str!("../migrations/sqlite/0002_cards.sql"),
            include_str!("../migrations/sqlite/0003_trail_index.sql"),
            include_str!("../migrations/sqlite/0004_click_to_pay.sql"),
        ]
    };
    let upgrade = if on_postgres() {
        include_str!("../migrations/postgres/0005_card_notifications.sql")
    } else {
        include_str!("../migrations/sqlite/0006_card_notifications.sql")
    };
    let op = "0190a0b0-0000-7000-8000-000000000001";
    let rows = format!(
        "INSERT INTO issuers (issuer_id, pi_storage, click_to_pay, lookalike_policy, created_at)
         VALUES ('BANK000001', 'allowed', TRUE, 'warn', 1);
         INSERT INTO issuer_backends (issuer_id, url, send_card_id, pi_cache_ttl_s, updated_at)
         VALUES ('BANK000001', 'http://127.0.0.1:9', FALSE, 0, 1);
         INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, created_at, updated_at)
         VALUES ('BANK000001', 'c1', 'ACTIVE', 'STORED', 1, 1);
         INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time,
                                 end_time, card_id, correlation_id)
         VALUES ((SELECT id FROM consumers), '{op}', 'CLICK_TO_PAY_ENROLMENT', 'SUCCESSFUL',
                 1000, 1767225600123, 'k1', 'corr-7');
         INSERT INTO notifications (issuer_id, card_id, operation_id, body, state,
                                    next_attempt_at, created_at)
         VALUES ('BANK000001', 'k1', '{op}',
                 '{{\"operations\": [{{\"operationId\": \"{op}\", \"operation\": \"CLICK_TO_PAY_ENROLMENT\", \"status\": \"SUCCESSFUL\", \"startTime\": \"1970-01-01T00:00:01.000Z\", \"cardId\": \"k1\"}}]}}',
                 'PENDING', 0, 5);"
    );
    let read = "SELECT item, correlation_id, created_at FROM notifications";
    let backend = "SELECT card_notifications, notification_batch_size FROM issuer_backends";
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(dir.path()).await;
    let (item, correlation, created, setting, size): (String, String, i64, String, i64) =
        match url.strip_prefix("sqlite://") {
            Some(path) => {
                let db = rusqlite::Connection::open(path).unwrap();
                for sql in old {
                    db.execute_batch(sql).unwrap();
                }
                db.execute_batch(&rows).unwrap();
                db.execute_batch(upgrade).unwrap();
                let (item, correlation, created) = db
                    .query_row(read, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap();
                let (setting, size) = db
                    .query_row(backend, [], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap();
                (item, correlation, created, setting, size)
            }
            None => {
                let db = d1_scratch::connect(&url).await.unwrap();
                for sql in old {
                    db.batch_execute(sql).await.unwrap();
                }
                db.batch_execute(&rows).await.unwrap();
                db.batch_execute(upgrade).await.unwrap();
                let row = db.query_one(read, &[]).await.unwrap();
                let b = db.query_one(backend, &[]).await.unwrap();
                (
                    row.try_get(0).unwrap(),
                    row.try_get(1).unwrap(),
                    row.try_get(2).unwrap(),
                    b.try_get(0).unwrap(),
                    b.try_get(1).unwrap(),
                )
            }
        };
    let item: serde_json::Value = serde_json::from_str(&item).unwrap();
    assert_eq!(
        item,
        serde_json::json!({
            "operationId": op,
            "operation": "CLICK_TO_PAY_ENROLMENT",
            "status": "SUCCESSFUL",
            "startTime": "1970-01-01T00:00:01.000Z",
            "cardId": "k1",
            "consumerId": "c1",
            "endTime": "2026-01-01T00:00:00.123Z",
        })
    );
    assert_eq!((correlation.as_str(), created), ("corr-7", 5));
    assert_eq!((setting.as_str(), size), ("all", 1));
}
