//! Data and access tokens survive a restart on the same data directory and database.

use serde_json::Value;

use crate::harness::{boot, full_pi, spawn_app, IssuerSettings};

#[tokio::test]
async fn data_and_access_tokens_survive_a_restart() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "c1", full_pi()).await;
    let jwks_before: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (place, issuer, other) = app.stop().await;

    let again = boot(place, issuer, other, false, IssuerSettings::default()).await;
    let response = again.get(&again.consumer_url("c1"), &token).await;
    assert_eq!(
        response.status(),
        200,
        "a token issued before the restart still works"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["personalInformation"], full_pi());
    let jwks_after: Value = again
        .client
        .get(again.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks_before, jwks_after,
        "the service keys are reused, not recreated"
    );
}
