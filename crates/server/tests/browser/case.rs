//! A customer-care case in the browser: the screenshot of the consumer page the README shows,
//! and the canary run proving that a PAN and PI typed, searched and revealed in the portal
//! reach neither the log nor the database files.

use d1_domain::card::Scheme;
use d1_store::OperatorRole;
use serde_json::{json, Value};

use crate::driver::{add_operator, available, Browser};
use crate::harness::{logs, on_postgres, spawn_app, test_pan, ISSUER};
use crate::portal::{card_state, register_card};

/// A Luhn-valid PAN: `prefix`, then `n`, padded with zeros to 15 digits, then a check digit.
fn pan_with(prefix: &str, n: u64) -> String {
    let body = format!("{prefix}{n:0width$}", width = 15 - prefix.len());
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|p| d1_domain::guard::luhn_valid(p))
        .unwrap()
}

#[tokio::test]
async fn a_screenshot_of_a_consumer_page_with_cards_in_three_states_for_the_readme() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    app.add_product("visa-debit", Scheme::Visa, "453201").await;
    app.add_product("mc-world", Scheme::Mastercard, "545454")
        .await;
    let token = app.token().await;
    let consumer = "cu-20417-8836";
    app.register(
        &token,
        consumer,
        json!({
            "language": "en-GB",
            "title": "Mr",
            "firstName": "Daniel",
            "lastName": "Okafor",
            "dateOfBirth": "1987-06-14",
            "email": "daniel.okafor@example.com",
            "mobilePhoneNumber": {"countryCode": "+44", "phoneNumber": "7700900461"},
            "residencyAddress": {"line1": "14 Hazel Grove", "city": "Leeds", "zipCode": "LS6 2AB", "countryCode": "GB"}
        }),
    )
    .await;
    let cards = [
        ("crd-visa-3391", "visa-debit", pan_with("453201", 3391)),
        ("crd-mc-7702", "mc-world", pan_with("545454", 7702)),
        ("crd-visa-1180", "visa-debit", pan_with("453201", 1180)),
    ];
    for (card, product, pan) in &cards {
        register_card(&app, &token, consumer, card, product, pan).await;
    }
    // The old card was closed by the bank; the customer calls about the Mastercard.
    let response = app
        .post_json(
            &app.url(&format!(
                "/banking/v2/issuers/{ISSUER}/cards/crd-visa-1180/operations:delete"
            )),
            &token,
            &json!({"reasonCode": "CLOSED_CARD"}),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    add_operator(&app, "sarahk", OperatorRole::Cci, ISSUER, false).await;
    let b = Browser::signed_in(&app, "sarahk").await;
    b.search(&cards[1].2).await;
    let page = format!("/portal/issuers/{ISSUER}/consumers/{consumer}");
    assert_eq!(b.path().await, page);
    b.card_action("crd-mc-7702", "suspend", "CARD_LOST").await;
    assert_eq!(
        card_state(&app, &token, "crd-mc-7702").await,
        ("SUSPENDED".to_owned(), Some("CARD_LOST".to_owned()))
    );
    for (card, state) in [
        ("crd-visa-3391", "ACTIVE"),
        ("crd-mc-7702", "SUSPENDED"),
        ("crd-visa-1180", "DELETED"),
    ] {
        let shown = b
            .text_of(&format!("tr[data-card-id=\"{card}\"] td.state"))
            .await;
        assert!(shown.contains(state), "{card}: {shown}");
    }
    assert!(b.text_of("#pi").await.contains("d***@example.com"));

    let height = b
        .client
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    let height = u32::try_from(height).unwrap().clamp(800, 2000);
    b.client.set_window_size(1280, height + 140).await.unwrap();
    let png = b.client.screenshot().await.unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{}",
        png.len()
    );
    if !on_postgres() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/portal.png");
        std::fs::write(path, &png).unwrap();
    }
    b.close().await;
}

const CANARY_PI: [&str; 5] = [
    "Qzbrowserfirst",
    "Qzbrowserlast",
    "qzbrowser.canary@example.com",
    "7700900735",
    "Qzbrowser canary lane",
];

#[tokio::test]
async fn a_canary_pan_and_pi_used_in_the_browser_reach_neither_the_log_nor_the_database_files() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    let pi: Value = json!({
        "firstName": CANARY_PI[0],
        "lastName": CANARY_PI[1],
        "email": CANARY_PI[2],
        "mobilePhoneNumber": {"countryCode": "+44", "phoneNumber": CANARY_PI[3]},
        "residencyAddress": {"line1": CANARY_PI[4], "countryCode": "GB"},
        "language": "en-GB"
    });
    app.register(&token, "cons-canary", pi).await;
    let pan = test_pan(808_080_808);
    register_card(
        &app,
        &token,
        "cons-canary",
        "card-canary",
        "visa-classic",
        &pan,
    )
    .await;
    add_operator(&app, "canarymgr", OperatorRole::Manager, ISSUER, false).await;

    let b = Browser::signed_in(&app, "canarymgr").await;
    b.search(&pan).await;
    assert_eq!(
        b.path().await,
        "/portal/issuers/BANK000001/consumers/cons-canary"
    );
    b.click_and_wait("#reveal button").await;
    let shown = b.text_of("#pi").await;
    for canary in CANARY_PI {
        assert!(shown.contains(canary), "the run must really show {canary}");
    }
    b.open("/portal/issuers/BANK000001/consumers/cons-canary")
        .await;
    b.card_action("card-canary", "suspend", "CARD_LOST").await;
    b.open("/portal/").await;
    b.search(&pan).await;
    b.click_and_wait("#sign-out button").await;
    b.close().await;

    let log = logs();
    assert!(
        log.contains("/portal/search"),
        "the portal's requests were logged"
    );
    for canary in CANARY_PI.iter().copied().chain([pan.as_str()]) {
        assert!(!log.contains(canary), "{canary} found in the logs");
        let found = app.place.holding(canary.as_bytes()).await;
        assert!(found.is_empty(), "{canary} found at rest in {found:?}");
    }
}
