//! Aggregators (contract section 4): onboarding, their keys found by kid with the issuers they
//! sign for, ids and kids shared with issuers, `require_jti`, and the trail naming them.

use super::*;
use d1_store::NewAggregator;

fn issuer_with(id: &str, kid: &str) -> NewIssuer {
    NewIssuer {
        issuer_id: IssuerId::parse(id).unwrap(),
        pi_storage: PiStorage::Allowed,
        click_to_pay: false,
        lookalike_policy: LookalikePolicy::Warn,
        kid: kid.into(),
        public_jwk: "{}".into(),
        require_jti: false,
        client_certs: d1_store::CertBindings::default(),
    }
}

fn aggregator(id: &str, kid: &str, issuers: &[&str]) -> NewAggregator {
    NewAggregator {
        aggregator_id: IssuerId::parse(id).unwrap(),
        kid: kid.into(),
        public_jwk: "{\"agg\":1}".into(),
        issuers: issuers
            .iter()
            .map(|i| IssuerId::parse(i).unwrap())
            .collect(),
        require_jti: true,
    }
}

#[tokio::test]
async fn an_aggregator_key_names_its_issuers_and_ids_and_kids_are_shared_with_issuers() {
    let f = fresh().await;
    let store = f.store.as_ref();
    store
        .add_issuer(issuer_with("BANK000001", "i1"))
        .await
        .unwrap();
    store
        .add_issuer(issuer_with("BANK000002", "i2"))
        .await
        .unwrap();
    store
        .add_aggregator(aggregator(
            "AGGR000001",
            "a1",
            &["BANK000002", "BANK000001"],
        ))
        .await
        .unwrap();
    let key = store.assertion_key("a1").await.unwrap().unwrap();
    assert_eq!(key.issuer_id.as_str(), "AGGR000001");
    assert_eq!(key.public_jwk, "{\"agg\":1}");
    assert!(key.require_jti);
    let issuers: Vec<&str> = key
        .aggregated
        .as_ref()
        .unwrap()
        .iter()
        .map(IssuerId::as_str)
        .collect();
    assert_eq!(issuers, ["BANK000001", "BANK000002"]);
    let own = store.assertion_key("i1").await.unwrap().unwrap();
    assert_eq!(own.aggregated, None);
    assert!(!own.require_jti);

    for (refused, why) in [
        (
            aggregator("BANK000001", "a2", &["BANK000002"]),
            "an issuer's id",
        ),
        (
            aggregator("AGGR000001", "a3", &["BANK000002"]),
            "its own id again",
        ),
        (
            aggregator("AGGR000002", "i1", &["BANK000002"]),
            "an issuer's kid",
        ),
        (
            aggregator("AGGR000003", "a1", &["BANK000002"]),
            "another aggregator's kid",
        ),
        (aggregator("AGGR000004", "a4", &[]), "no issuer"),
    ] {
        let result = store.add_aggregator(refused).await;
        assert!(
            matches!(result, Err(StoreError::Conflict(_))),
            "{why}: {result:?}"
        );
    }
    assert!(matches!(
        store
            .add_aggregator(aggregator(
                "AGGR000005",
                "a5",
                &["BANK000001", "BANK000099"]
            ))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.add_issuer(issuer_with("AGGR000001", "i9")).await,
        Err(StoreError::Conflict(_))
    ));
    let add_aggregator_kid = IssuerChange {
        add_key: Some(("a1".into(), "{}".into())),
        ..Default::default()
    };
    assert!(matches!(
        store.change_issuer(issuer(), add_aggregator_kid).await,
        Err(StoreError::Conflict(_))
    ));
    let listed = store.aggregators().await.unwrap();
    assert_eq!(listed.len(), 1, "refusals write nothing: {listed:?}");
    assert_eq!(listed[0].kids, ["a1"]);
    assert_eq!(listed[0].issuers.len(), 2);
    assert!(store.assertion_key("a5").await.unwrap().is_none());
}

#[tokio::test]
async fn require_jti_is_set_and_read_back_on_an_issuer() {
    let f = fresh().await;
    let store = f.store.as_ref();
    store
        .add_issuer(issuer_with("BANK000001", "i1"))
        .await
        .unwrap();
    assert!(!store.issuer(&issuer()).await.unwrap().unwrap().require_jti);
    let on = IssuerChange {
        require_jti: Some(true),
        ..Default::default()
    };
    store.change_issuer(issuer(), on).await.unwrap();
    assert!(store.issuer(&issuer()).await.unwrap().unwrap().require_jti);
    assert!(
        store
            .assertion_key("i1")
            .await
            .unwrap()
            .unwrap()
            .require_jti
    );
}

#[tokio::test]
async fn a_write_through_an_aggregator_names_it_in_the_trail() {
    let f = fresh().await;
    let store = f.store.as_ref();
    let through = TrailContext {
        aggregator_id: Some(IssuerId::parse("AGGR000001").unwrap()),
        ..Default::default()
    };
    store
        .register_consumer(RegisterConsumer {
            trail: through.clone(),
            ..register("c1", Some(pi("Ann")))
        })
        .await
        .unwrap();
    store
        .register_consumer(register("c1", Some(pi("Bob"))))
        .await
        .unwrap();
    store
        .delete_consumer(DeleteConsumer {
            trail: through,
            ..delete("c1")
        })
        .await
        .unwrap();
    let page = store
        .operations(&issuer(), &consumer("c1"), 50, None)
        .await
        .unwrap()
        .unwrap();
    let named: Vec<Option<&str>> = page
        .operations
        .iter()
        .map(|o| o.aggregator_id.as_deref())
        .collect();
    assert_eq!(named, [Some("AGGR000001"), None, Some("AGGR000001")]);
    let v1 = store
        .operations_at(&issuer(), &consumer("c1"), 0, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1[0].aggregator_id.as_deref(), Some("AGGR000001"));
    assert_eq!(v1[1].aggregator_id, None);
}
