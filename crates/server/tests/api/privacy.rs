//! Personal data never rests in clear and never reaches a log, proven with canary values.

use serde_json::{json, Value};

use crate::harness::{logs, spawn_app};

const CANARIES: [&str; 5] = [
    "Qzcanaryfirst",
    "Qzcanarylast",
    "qzcanary@example.com",
    "987123456",
    "Qzcanary street",
];

fn canary_pi() -> Value {
    json!({
        "firstName": CANARIES[0],
        "lastName": CANARIES[1],
        "email": CANARIES[2],
        "mobilePhoneNumber": {"countryCode": "+44", "phoneNumber": CANARIES[3]},
        "residencyAddress": {"line1": CANARIES[4], "countryCode": "GB"},
        "language": "en-GB"
    })
}

#[tokio::test]
async fn canary_pi_appears_neither_in_the_database_files_nor_in_the_logs() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "canary-1", canary_pi()).await;
    let response = app
        .post_json(
            &(app.consumer_url("canary-1") + "/operations/update"),
            &token,
            &json!({"personalInformation": canary_pi()}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let body: Value = app
        .get(&app.consumer_url("canary-1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["personalInformation"]["firstName"], CANARIES[0],
        "the canary must really have been stored"
    );
    // A refused value must not be logged either.
    let mut bad = canary_pi();
    bad["firstName"] = json!(format!("{}$", CANARIES[0]));
    let response = app
        .put_json(
            &app.consumer_url("canary-2"),
            &token,
            &json!({"personalInformation": bad}),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(
        !response.text().await.unwrap().contains(CANARIES[0]),
        "error texts never echo values"
    );

    let logs = logs();
    assert!(logs.contains("request"), "logs were captured");
    for canary in CANARIES {
        assert!(!logs.contains(canary), "{canary} found in the logs");
        let found = app.place.holding(canary.as_bytes()).await;
        assert!(found.is_empty(), "{canary} found at rest in {found:?}");
    }
    assert!(!logs.contains(&token), "an access token was logged");
}

#[tokio::test]
async fn delete_shreds_the_data_key_from_the_database_and_its_wal() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "shred-me", canary_pi()).await;
    let wrapped = app
        .place
        .bytes("SELECT wrapped_key FROM consumers WHERE consumer_id = 'shred-me'")
        .await;
    assert!(
        !app.place.holding(&wrapped).await.is_empty(),
        "the wrapped key is at rest before the delete"
    );
    let response = app.delete_consumer(&token, "shred-me").await;
    assert_eq!(response.status(), 204);
    // On SQLite the WAL checkpoint runs right after the delete's commit, or shortly after if a
    // reader held it back. On PostgreSQL no row holds it; old row versions wait for VACUUM.
    let mut left = app.place.holding(&wrapped).await;
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = app.place.holding(&wrapped).await;
    }
    assert!(
        left.is_empty(),
        "the destroyed data key lingers in {left:?}"
    );
}

#[tokio::test]
async fn a_sealed_row_copied_onto_another_consumer_does_not_open() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "alice", canary_pi()).await;
    app.register(&token, "bob", json!({"firstName": "Bob"}))
        .await;
    app.place
        .execute(
            "UPDATE consumers SET wrapped_key = (SELECT wrapped_key FROM consumers WHERE consumer_id = 'alice'),
                                  pi = (SELECT pi FROM consumers WHERE consumer_id = 'alice')
             WHERE consumer_id = 'bob'",
        )
        .await;
    let response = app.get(&app.consumer_url("bob"), &token).await;
    assert_eq!(response.status(), 500);
    let text = response.text().await.unwrap();
    assert!(!text.contains(CANARIES[0]));
    assert!(text.contains("INTERNAL_ERROR"));
}
