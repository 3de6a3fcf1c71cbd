//! The operator portal (contract section 11) in a real headless Chromium: what an operator
//! types and clicks, what the page then shows, and what the store and the v2 API then hold.

use d1_domain::card::Scheme;
use d1_store::OperatorRole;
use serde_json::{json, Value};

use crate::driver::{add_operator, audit, available, Browser, PASSWORD};
use crate::harness::{
    encrypt_for, full_pi, future_exp, spawn_app, spawn_tweaked, test_pan, TestApp, ISSUER,
    OTHER_ISSUER,
};

const CONSUMER_PAGE: &str = "/portal/issuers/BANK000001/consumers/cons-1";

/// An app with a card `card-1` (PAN `test_pan(71)`) for consumer `cons-1`, who has full PI.
async fn with_card() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    app.register(&token, "cons-1", full_pi()).await;
    register_card(
        &app,
        &token,
        "cons-1",
        "card-1",
        "visa-classic",
        &test_pan(71),
    )
    .await;
    (app, token)
}

/// Registers a card with its PAN, as an issuer does.
pub async fn register_card(
    app: &TestApp,
    token: &str,
    consumer: &str,
    card: &str,
    product: &str,
    pan: &str,
) {
    let jwe = encrypt_for(app, &json!({"pan": pan, "exp": future_exp()}), "A256GCM").await;
    let body = json!({"consumerId": consumer, "cardProductId": product, "encryptedData": jwe});
    let response = app.put_json(&app.card_url(card), token, &body).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
}

/// The card's `(state, stateReason)` as the v2 API reads it.
pub async fn card_state(app: &TestApp, token: &str, card: &str) -> (String, Option<String>) {
    let read: Value = app
        .get(&app.card_url(card), token)
        .await
        .json()
        .await
        .unwrap();
    (
        read["state"].as_str().unwrap().to_owned(),
        read["stateReason"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn sign_in_takes_the_right_password_and_a_one_time_one_asks_for_a_new_one() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    add_operator(&app, "ann", OperatorRole::Cci, "all", false).await;
    add_operator(&app, "ivy", OperatorRole::Cci, "all", true).await;
    let b = Browser::start(&app).await;
    b.sign_in("ann", "not the password").await;
    assert_eq!(b.path().await, "/portal/sign-in");
    assert!(b
        .text_of("main")
        .await
        .contains("Wrong username or password."));
    assert_eq!(b.cookie("d1_portal").await, None);

    b.sign_in("ann", PASSWORD).await;
    assert_eq!(b.path().await, "/portal/");
    assert!(b.has("#home").await);
    assert_eq!(b.text_of("#operator").await, "ann · cci");
    assert!(b.cookie("d1_portal").await.is_some());
    b.click_and_wait("#sign-out button").await;
    assert_eq!(b.path().await, "/portal/sign-in");
    b.open("/portal/").await;
    assert_eq!(b.path().await, "/portal/sign-in", "signed out for good");

    b.sign_in("ivy", PASSWORD).await;
    assert_eq!(b.path().await, "/portal/password");
    b.open("/portal/").await;
    assert_eq!(
        b.path().await,
        "/portal/password",
        "nothing before a new password"
    );
    let new = "a much longer password";
    b.type_into("#new-password", new).await;
    b.type_into("#new-password-again", new).await;
    b.click_and_wait("#password-change button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/portal/");
    assert!(b.has("#home").await);
    b.click_and_wait("#sign-out button").await;
    b.sign_in("ivy", PASSWORD).await;
    assert_eq!(
        b.path().await,
        "/portal/sign-in",
        "the old password is gone"
    );
    b.sign_in("ivy", new).await;
    assert_eq!(b.path().await, "/portal/");
    b.close().await;
}

#[tokio::test]
async fn search_by_pan_card_id_and_consumer_id_reaches_the_consumer_page() {
    if !available() {
        return;
    }
    let (app, _) = with_card().await;
    add_operator(&app, "dan", OperatorRole::Cci, ISSUER, false).await;
    let b = Browser::signed_in(&app, "dan").await;
    let pan = test_pan(71);
    for q in [pan.as_str(), "card-1", "cons-1"] {
        b.open("/portal/").await;
        b.search(q).await;
        assert_eq!(b.path().await, CONSUMER_PAGE, "{q}");
        assert_eq!(b.text_of("#consumer-id").await, "cons-1");
        assert!(b.has("tr[data-card-id=\"card-1\"]").await);
    }
    assert!(!b.source().await.contains(&pan), "the page shows the PAN");
    b.search(&test_pan(72)).await;
    assert!(b.has("#not-found").await);
    assert_eq!(
        b.path().await,
        "/portal/search",
        "a PAN never lands in a URL"
    );
    b.search("cons-9").await;
    assert!(b.has("#not-found").await);
    let actions: Vec<(String, String)> = audit(&app, "dan")
        .await
        .into_iter()
        .rev()
        .filter(|e| e.action.starts_with("search"))
        .map(|e| (e.action, e.outcome))
        .collect();
    let expected: Vec<(String, String)> = [
        ("search.pan", "found"),
        ("search.cardId", "found"),
        ("search.consumerId", "found"),
        ("search.pan", "not_found"),
        ("search.id", "not_found"),
    ]
    .iter()
    .map(|(a, o)| ((*a).to_owned(), (*o).to_owned()))
    .collect();
    assert_eq!(actions, expected);
    b.close().await;
}

#[tokio::test]
async fn pi_is_masked_a_manager_reveals_it_and_a_cci_is_refused() {
    if !available() {
        return;
    }
    let (app, _) = with_card().await;
    add_operator(&app, "cci1", OperatorRole::Cci, ISSUER, false).await;
    add_operator(&app, "mgr1", OperatorRole::Manager, ISSUER, false).await;
    let pan = test_pan(71);
    let clear = [
        "Jean-Luc",
        "O'Neil",
        "jean-luc@example.com",
        "612345678",
        "rue de la Paix",
        "75002",
        "1980-02-29",
    ];

    let cci = Browser::signed_in(&app, "cci1").await;
    cci.open(CONSUMER_PAGE).await;
    let pi = cci.text_of("#pi").await;
    for shown in ["J. M. O.", "j***@example.com", "+33 *******78"] {
        assert!(pi.contains(shown), "{shown} missing from {pi}");
    }
    assert_eq!(
        cci.text_of("tr[data-card-id=\"card-1\"] td.last4").await,
        pan[pan.len() - 4..]
    );
    let page = cci.source().await;
    for value in clear.iter().chain([&pan.as_str()]) {
        assert!(!page.contains(value), "{value} shown to a cci");
    }
    assert!(cci
        .text_of("#reveal")
        .await
        .contains("manager and admin only"));
    cci.click_and_wait("#reveal button").await;
    assert!(cci.has("#forbidden").await);
    assert!(cci.text_of("#forbidden").await.contains("manager or admin"));
    assert!(!cci.source().await.contains("jean-luc@example.com"));
    // Forced past the page: the same POST with the session's cookie and CSRF token.
    cci.open(CONSUMER_PAGE).await;
    let csrf = cci
        .find("#reveal input[name=csrf]")
        .await
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let session = cci.cookie("d1_portal").await.unwrap();
    let forced = app
        .client
        .post(app.url(&format!("{CONSUMER_PAGE}/reveal")))
        .header("cookie", format!("d1_portal={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 403);
    assert!(!forced
        .text()
        .await
        .unwrap()
        .contains("jean-luc@example.com"));
    let refused = audit(&app, "cci1").await;
    assert_eq!(
        refused
            .iter()
            .filter(|e| e.action == "reveal" && e.outcome == "forbidden")
            .count(),
        2
    );
    cci.close().await;

    let mgr = Browser::signed_in(&app, "mgr1").await;
    mgr.open(CONSUMER_PAGE).await;
    assert!(mgr.has("#pi-facts[data-revealed=false]").await);
    mgr.click_and_wait("#reveal button").await;
    assert!(mgr.has("#pi-facts[data-revealed=true]").await);
    let pi = mgr.text_of("#pi").await;
    for value in clear {
        assert!(pi.contains(value), "{value} not revealed in {pi}");
    }
    assert!(!mgr.has("#reveal").await);
    let revealed = &audit(&app, "mgr1").await[0];
    assert_eq!(
        (revealed.action.as_str(), revealed.outcome.as_str()),
        ("reveal", "ok")
    );
    assert_eq!(revealed.consumer_id.as_deref(), Some("cons-1"));
    mgr.close().await;
}

#[tokio::test]
async fn suspend_with_card_lost_and_resume_with_card_found_through_the_page_and_its_trail() {
    if !available() {
        return;
    }
    let (app, token) = with_card().await;
    add_operator(&app, "gus", OperatorRole::Cci, ISSUER, false).await;
    let b = Browser::signed_in(&app, "gus").await;
    b.open(CONSUMER_PAGE).await;
    let row = "tr[data-card-id=\"card-1\"]";
    assert!(b
        .text_of(&format!("{row} td.state"))
        .await
        .contains("ACTIVE"));
    assert!(!b.has(&format!("{row} form[data-operation=resume]")).await);
    assert!(
        !b.has(&format!("{row} form[data-operation=delete]")).await,
        "a cci does not delete"
    );

    b.card_action("card-1", "suspend", "CARD_LOST").await;
    assert_eq!(b.path().await, format!("{CONSUMER_PAGE}?done=suspend"));
    assert!(b
        .text_of(".notice.ok")
        .await
        .contains("The card is suspended."));
    let state = b.text_of(&format!("{row} td.state")).await;
    assert!(
        state.contains("SUSPENDED") && state.contains("CARD_LOST"),
        "{state}"
    );
    assert_eq!(
        card_state(&app, &token, "card-1").await,
        ("SUSPENDED".to_owned(), Some("CARD_LOST".to_owned()))
    );
    assert!(!b.has(&format!("{row} form[data-operation=suspend]")).await);

    b.card_action("card-1", "resume", "CARD_FOUND").await;
    assert_eq!(b.path().await, format!("{CONSUMER_PAGE}?done=resume"));
    assert!(b.text_of(".notice.ok").await.contains("active again"));
    let state = b.text_of(&format!("{row} td.state")).await;
    assert!(
        state.contains("ACTIVE") && state.contains("CARD_FOUND"),
        "{state}"
    );
    assert_eq!(
        card_state(&app, &token, "card-1").await,
        ("ACTIVE".to_owned(), Some("CARD_FOUND".to_owned()))
    );

    // The trail on the page, newest first, with the operator as its user.
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#trail tbody tr"))
        .await
        .unwrap();
    let mut texts = Vec::new();
    for r in &rows {
        texts.push(r.text().await.unwrap());
    }
    assert!(texts.len() >= 3, "{texts:?}");
    for (text, (op, reason)) in texts
        .iter()
        .zip([("CARD_RESUME", "CARD_FOUND"), ("CARD_SUSPEND", "CARD_LOST")])
    {
        assert!(
            text.contains(op) && text.contains(reason) && text.contains("gus"),
            "{text}"
        );
        assert!(text.contains("card-1"));
    }
    b.close().await;
}

#[tokio::test]
async fn the_admin_audit_page_lists_sign_ins_searches_reveals_and_actions_without_the_pan() {
    if !available() {
        return;
    }
    let (app, _) = with_card().await;
    add_operator(&app, "kim", OperatorRole::Admin, "all", false).await;
    add_operator(&app, "lee", OperatorRole::Manager, "all", false).await;
    let pan = test_pan(71);
    let b = Browser::signed_in(&app, "kim").await;
    b.search(&pan).await;
    assert_eq!(b.path().await, CONSUMER_PAGE);
    b.click_and_wait("#reveal button").await;
    b.open(CONSUMER_PAGE).await;
    b.card_action("card-1", "suspend", "CARD_STOLEN").await;
    b.click_and_wait("header.bar nav a[href=\"/portal/audit\"]")
        .await;
    assert_eq!(b.path().await, "/portal/audit");
    for (action, outcome) in [
        ("sign-in", "ok"),
        ("search.pan", "found"),
        ("reveal", "ok"),
        ("card.suspend", "ok"),
    ] {
        let row = b
            .text_of(&format!("#audit tr[data-action=\"{action}\"]"))
            .await;
        assert!(row.contains("kim") && row.contains(outcome), "{row}");
        if action != "sign-in" {
            assert!(row.contains("cons-1") && row.contains(ISSUER), "{row}");
        }
    }
    let suspended = b.text_of("#audit tr[data-action=\"card.suspend\"]").await;
    assert!(suspended.contains("card-1"), "{suspended}");
    let page = b.source().await;
    assert!(!page.contains(&pan) && !page.contains("jean-luc"));
    b.close().await;

    let manager = Browser::signed_in(&app, "lee").await;
    assert!(!manager.has("header.bar nav").await);
    manager.open("/portal/audit").await;
    assert!(manager.has("#forbidden").await && !manager.has("#audit").await);
    manager.close().await;
}

#[tokio::test]
async fn an_operator_of_another_issuer_gets_the_not_found_page_for_its_consumer_card_and_pan() {
    if !available() {
        return;
    }
    let (app, _) = with_card().await;
    let other = app.token_for(&app.other).await;
    let response = app
        .put_json(
            &app.url(&format!(
                "/banking/v2/issuers/{OTHER_ISSUER}/consumers/cons-b"
            )),
            &other,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 204);
    add_operator(&app, "eve", OperatorRole::Admin, OTHER_ISSUER, false).await;
    let b = Browser::signed_in(&app, "eve").await;
    b.search("cons-b").await;
    assert_eq!(
        b.path().await,
        format!("/portal/issuers/{OTHER_ISSUER}/consumers/cons-b"),
        "her own issuer's consumer is found"
    );
    b.open("/portal/").await;
    b.search("cons-absent").await;
    let absent = b.text_of("main").await;
    assert!(b.has("#not-found").await);
    for q in ["cons-1", "card-1", test_pan(71).as_str()] {
        b.open("/portal/").await;
        b.search(q).await;
        assert!(b.has("#not-found").await, "{q}");
        assert_eq!(b.text_of("main").await, absent, "{q}");
    }
    b.open(CONSUMER_PAGE).await;
    assert!(b.has("#not-found").await);
    assert!(!b.source().await.contains("J. M. O."));
    b.close().await;
}

#[tokio::test]
async fn a_form_sent_without_its_csrf_token_is_refused_and_changes_nothing() {
    if !available() {
        return;
    }
    let (app, token) = with_card().await;
    add_operator(&app, "cat", OperatorRole::Cci, ISSUER, false).await;
    let b = Browser::signed_in(&app, "cat").await;
    b.open(CONSUMER_PAGE).await;
    let form = "tr[data-card-id=\"card-1\"] form[data-operation=suspend]";
    let removed = b
        .client
        .execute(
            &format!(
                "const i = document.querySelector('{form} input[name=csrf]'); i.remove(); \
                 return document.querySelectorAll('{form} input[name=csrf]').length;"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(removed, json!(0));
    b.card_action("card-1", "suspend", "CARD_LOST").await;
    assert!(b.has("#forbidden").await);
    assert!(b.text_of("#forbidden").await.contains("Nothing was done"));
    assert_eq!(
        card_state(&app, &token, "card-1").await,
        ("ACTIVE".to_owned(), None)
    );
    b.open(CONSUMER_PAGE).await;
    let state = b.text_of("tr[data-card-id=\"card-1\"] td.state").await;
    assert_eq!(state, "ACTIVE");
    let entries = audit(&app, "cat").await;
    assert_eq!(
        (entries[0].action.as_str(), entries[0].outcome.as_str()),
        ("card.suspend", "csrf_refused")
    );
    b.close().await;
}

#[tokio::test]
async fn five_failed_sign_ins_lock_the_account_even_for_the_right_password() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    add_operator(&app, "bob", OperatorRole::Cci, "all", false).await;
    let b = Browser::start(&app).await;
    for _ in 0..5 {
        b.sign_in("bob", "wrong wrong wrong").await;
        assert!(b
            .text_of("main")
            .await
            .contains("Wrong username or password."));
    }
    b.sign_in("bob", PASSWORD).await;
    assert_eq!(b.path().await, "/portal/sign-in");
    assert!(b.text_of(".notice.error").await.contains("locked"));
    assert_eq!(b.cookie("d1_portal").await, None);
    b.open("/portal/").await;
    assert_eq!(b.path().await, "/portal/sign-in");
    let record = app.state.store.operator("bob").await.unwrap().unwrap();
    assert!(record.is_locked(d1_store::now_ms()));
    b.close().await;
}

#[tokio::test]
async fn an_idle_session_ends_and_a_reload_shows_the_sign_in_page() {
    if !available() {
        return;
    }
    let app = spawn_tweaked(|c| c.portal.idle_timeout_secs = 3).await;
    add_operator(&app, "jon", OperatorRole::Cci, "all", false).await;
    let b = Browser::signed_in(&app, "jon").await;
    b.client.refresh().await.unwrap();
    assert_eq!(b.path().await, "/portal/", "a session in use lives on");
    tokio::time::sleep(std::time::Duration::from_millis(3600)).await;
    b.client.refresh().await.unwrap();
    assert_eq!(b.path().await, "/portal/sign-in");
    assert!(b.has("#sign-in").await && !b.has("#operator").await);
    b.close().await;
}

#[tokio::test]
async fn pages_the_browser_shows_carry_the_security_headers_and_their_stylesheet_applies() {
    if !available() {
        return;
    }
    let (app, _) = with_card().await;
    add_operator(&app, "hal", OperatorRole::Admin, "all", false).await;
    let b = Browser::signed_in(&app, "hal").await;
    b.open(CONSUMER_PAGE).await;
    // The stylesheet passes the CSP (style-src 'self'): the header bar has its colour.
    let colour = b
        .client
        .execute(
            "return getComputedStyle(document.querySelector('header.bar')).backgroundColor;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(colour, json!("rgb(31, 78, 140)"));
    // A browser cannot read headers: the same pages with the browser's own session cookie.
    let session = b.cookie("d1_portal").await.expect("a session cookie");
    for path in [
        CONSUMER_PAGE,
        "/portal/",
        "/portal/audit",
        "/portal/operators",
        "/portal/sign-in",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .header("cookie", format!("d1_portal={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{path}: the browser's session works"
        );
        let h = response.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert_eq!(
            csp,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let body = response.text().await.unwrap();
        if path == CONSUMER_PAGE {
            assert!(body.contains("data-card-id=\"card-1\""));
        }
    }
    b.close().await;
}
