//! Aggregators (contract section 4): one key signing for several issuers, a token valid for
//! those issuers' routes only, and the aggregator recorded in the trail of its writes.

use d1_crypto::ec::SigningKey;
use d1_domain::IssuerId;
use d1_store::{NewAggregator, StoreError};
use serde_json::{json, Value};

use crate::harness::{assert_unauthorized, jwt, now, spawn_app, TestApp, ISSUER, OTHER_ISSUER};
use crate::process::bin;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const AGGREGATOR: &str = "AGGR000001";

/// Onboards an aggregator signing for `issuers`; its key and kid.
async fn onboard(app: &TestApp, issuers: &[&str]) -> (SigningKey, String) {
    let key = SigningKey::generate().unwrap();
    let kid = format!("agg-{}", uuid::Uuid::new_v4());
    let jwk = serde_json::to_string(&key.public_key().to_jwk(None, None, None)).unwrap();
    app.state
        .store
        .add_aggregator(NewAggregator {
            aggregator_id: IssuerId::parse(AGGREGATOR).unwrap(),
            kid: kid.clone(),
            public_jwk: jwk,
            issuers: issuers
                .iter()
                .map(|i| IssuerId::parse(i).unwrap())
                .collect(),
            require_jti: false,
        })
        .await
        .unwrap();
    (key, kid)
}

fn assertion(key: &SigningKey, kid: &str, iss: &str) -> String {
    let claims = json!({"iss": iss, "sub": iss, "exp": now() + 300, "iat": now(),
                        "jti": uuid::Uuid::new_v4().to_string()});
    jwt(key, &json!({"alg": "ES256", "kid": kid}), &claims)
}

async fn exchange(app: &TestApp, assertion: &str) -> reqwest::Response {
    app.token_form(&[("grant_type", GRANT), ("assertion", assertion)])
        .await
}

async fn aggregator_token(app: &TestApp, key: &SigningKey, kid: &str) -> String {
    let response = exchange(app, &assertion(key, kid, AGGREGATOR)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn register_url(app: &TestApp, issuer: &str, consumer: &str) -> String {
    app.url(&format!(
        "/banking/v2/issuers/{issuer}/consumers/{consumer}"
    ))
}

#[tokio::test]
async fn an_aggregator_token_works_for_its_issuers_and_is_a_401_for_every_other() {
    let app = spawn_app().await;
    let (key, kid) = onboard(&app, &[ISSUER]).await;
    let token = aggregator_token(&app, &key, &kid).await;
    let ok = app
        .put_json(&register_url(&app, ISSUER, "agg-1"), &token, &json!({}))
        .await;
    assert_eq!(ok.status(), 204);
    for url in [
        register_url(&app, OTHER_ISSUER, "agg-1"),
        register_url(&app, AGGREGATOR, "agg-1"),
        app.url(&format!(
            "/banking/v1/issuers/{OTHER_ISSUER}/consumers/agg-1"
        )),
    ] {
        let refused = app.put_json(&url, &token, &json!({})).await;
        assert_eq!(
            refused.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        assert_unauthorized(refused).await;
    }
    let read = app
        .get(&register_url(&app, OTHER_ISSUER, "agg-1"), &token)
        .await;
    assert_unauthorized(read).await;
    // The issuer's own token does not reach the other issuer either, nor the aggregator's id.
    let own = app.token().await;
    let other = app
        .put_json(&register_url(&app, OTHER_ISSUER, "own-1"), &own, &json!({}))
        .await;
    assert_unauthorized(other).await;
}

#[tokio::test]
async fn each_write_through_an_aggregator_records_it_in_the_v2_and_v1_trail() {
    let app = spawn_app().await;
    let (key, kid) = onboard(&app, &[ISSUER, OTHER_ISSUER]).await;
    let token = aggregator_token(&app, &key, &kid).await;
    let own = app.token().await;
    app.register(&own, "trail-1", Value::Null).await;
    let response = app
        .post_empty(
            &(app.consumer_url("trail-1") + "/operations:delete"),
            &token,
        )
        .await;
    assert_eq!(response.status(), 204);
    let other = app
        .put_json(
            &register_url(&app, OTHER_ISSUER, "trail-2"),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(
        other.status(),
        204,
        "an aggregator of two issuers reaches both"
    );

    let v2: Value = app
        .get(&(app.consumer_url("trail-1") + "/operations"), &own)
        .await
        .json()
        .await
        .unwrap();
    let ops = v2["operations"].as_array().unwrap();
    assert_eq!(ops[0]["operation"], "DELETE");
    assert_eq!(ops[0]["aggregatorId"], AGGREGATOR, "{v2}");
    assert_eq!(ops[1]["operation"], "REGISTER");
    assert!(
        ops[1].get("aggregatorId").is_none(),
        "the issuer's own write: {v2}"
    );
    let v1: Value = app
        .get(
            &app.url(&format!(
                "/banking/v1/issuers/{ISSUER}/consumers/trail-1/operations"
            )),
            &own,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v1["operations"][0]["aggregatorId"], AGGREGATOR, "{v1}");
    assert!(v1["operations"][1].get("aggregatorId").is_none());
    let other: Value = app
        .get(
            &(register_url(&app, OTHER_ISSUER, "trail-2") + "/operations"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        other["operations"][0]["aggregatorId"], AGGREGATOR,
        "{other}"
    );
}

#[tokio::test]
async fn an_aggregator_assertion_must_name_the_aggregator_and_ids_and_kids_are_shared() {
    let app = spawn_app().await;
    let (key, kid) = onboard(&app, &[ISSUER]).await;
    // Signed with the aggregator's key but claiming to be the issuer: refused.
    let response = exchange(&app, &assertion(&key, &kid, ISSUER)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let jwk = serde_json::to_string(&key.public_key().to_jwk(None, None, None)).unwrap();
    let new = |id: &str, kid: &str, issuers: &[&str]| NewAggregator {
        aggregator_id: IssuerId::parse(id).unwrap(),
        kid: kid.into(),
        public_jwk: jwk.clone(),
        issuers: issuers
            .iter()
            .map(|i| IssuerId::parse(i).unwrap())
            .collect(),
        require_jti: false,
    };
    let store = &app.state.store;
    for (refused, why) in [
        (new(ISSUER, "fresh-1", &[OTHER_ISSUER]), "an issuer's id"),
        (new(AGGREGATOR, "fresh-2", &[ISSUER]), "an aggregator's id"),
        (new("AGGR000002", &kid, &[ISSUER]), "an aggregator's kid"),
        (
            new("AGGR000003", &app.issuer.kid, &[ISSUER]),
            "an issuer's kid",
        ),
    ] {
        assert!(
            matches!(
                store.add_aggregator(refused).await,
                Err(StoreError::Conflict(_))
            ),
            "{why}"
        );
    }
    assert!(matches!(
        store
            .add_aggregator(new("AGGR000004", "fresh-4", &["BANK000099"]))
            .await,
        Err(StoreError::NotFound)
    ));
    let issuer_with_aggregator_id = d1_store::NewIssuer {
        issuer_id: IssuerId::parse(AGGREGATOR).unwrap(),
        pi_storage: d1_store::PiStorage::Allowed,
        click_to_pay: false,
        lookalike_policy: d1_domain::LookalikePolicy::Warn,
        kid: "fresh-5".into(),
        public_jwk: jwk.clone(),
        require_jti: false,
        client_certs: d1_store::CertBindings::default(),
    };
    assert!(matches!(
        store.add_issuer(issuer_with_aggregator_id).await,
        Err(StoreError::Conflict(_))
    ));
    let issuer_key_with_aggregator_kid = d1_store::IssuerChange {
        add_key: Some((kid.clone(), jwk.clone())),
        ..Default::default()
    };
    assert!(matches!(
        store
            .change_issuer(
                IssuerId::parse(ISSUER).unwrap(),
                issuer_key_with_aggregator_kid
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    let listed = store.aggregators().await.unwrap();
    assert_eq!(listed.len(), 1, "refused adds leave nothing: {listed:?}");
    assert_eq!(listed[0].kids, vec![kid]);
    assert_eq!(listed[0].issuers, vec![IssuerId::parse(ISSUER).unwrap()]);
}

#[test]
fn the_cli_adds_and_lists_aggregators_and_refuses_what_the_store_refuses() {
    let place = crate::harness::fresh_place_blocking();
    let key = SigningKey::generate().unwrap();
    let public = place.dir.path().join("pub.pem");
    std::fs::write(&public, key.public_pem()).unwrap();
    let public = public.to_str().unwrap();
    let issuer = |id: &str, kid: &str| {
        let args = [
            "issuer",
            "add",
            "--issuer-id",
            id,
            "--assertion-key",
            public,
            "--kid",
            kid,
        ];
        bin(&place, &args)
    };
    assert!(issuer("BANK000001", "i1").status.success());
    assert!(issuer("BANK000002", "i2").status.success());
    let aggregator = |id: &str, kid: &str, issuers: &str| {
        bin(
            &place,
            &[
                "aggregator",
                "add",
                "--aggregator-id",
                id,
                "--assertion-key",
                public,
                "--kid",
                kid,
                "--issuers",
                issuers,
            ],
        )
    };
    let added = aggregator("AGGR000001", "a1", "BANK000001,BANK000002");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    for (refused, why) in [
        (
            aggregator("BANK000001", "a2", "BANK000002"),
            "an issuer's id",
        ),
        (
            aggregator("AGGR000002", "i1", "BANK000002"),
            "an issuer's kid",
        ),
        (
            aggregator("AGGR000003", "a3", "BANK000077"),
            "an unknown issuer",
        ),
        (aggregator("short", "a4", "BANK000001"), "a malformed id"),
    ] {
        assert_eq!(refused.status.code(), Some(1), "{why}");
        assert_eq!(
            String::from_utf8_lossy(&refused.stderr).lines().count(),
            1,
            "{why}"
        );
    }
    assert_eq!(issuer("AGGR000001", "i9").status.code(), Some(1));
    let listed = String::from_utf8(bin(&place, &["aggregator", "list"]).stdout).unwrap();
    assert_eq!(
        listed.trim(),
        "AGGR000001 require_jti=off kids=a1 issuers=BANK000001,BANK000002"
    );
    let issuers = String::from_utf8(bin(&place, &["issuer", "list"]).stdout).unwrap();
    assert!(issuers.contains("require_jti=off"), "{issuers}");
    assert!(issuers.contains("aggregator list"), "{issuers}");
}
