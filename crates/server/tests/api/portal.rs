//! The operator portal (contract section 11) over plain HTTP, as a browser without
//! JavaScript drives it: cookies kept by hand, forms posted with their CSRF token. Sign-in,
//! lockout, CSRF, search, isolation, masking and reveal, card actions, headers, expiry.

use d1_domain::card::Scheme;
use d1_store::{AuditEntry, AuditQuery, NewOperator, OperatorIssuers, OperatorRole};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::harness::{
    encrypt_for, full_pi, future_exp, logs, spawn_app, spawn_tweaked, test_pan, TestApp, ISSUER,
    OTHER_ISSUER,
};

const PASSWORD: &str = "correct horse battery";

/// A browser's side of the portal: its cookies and the last page's CSRF token.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
    csrf: String,
}

fn cookies_set(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_owned())
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for (name, value) in cookies_set(headers) {
            self.cookies.retain(|(n, _)| *n != name);
            if !value.is_empty() {
                self.cookies.push((name, value));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn has_session(&self) -> bool {
        self.cookies.iter().any(|(n, _)| n == "d1_portal")
    }

    /// GETs a portal path; answers the status, headers and body.
    async fn get(&mut self, path: &str) -> (u16, HeaderMap, String) {
        let response = self
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// POSTs a form to a portal path, with the page's CSRF token unless `fields` has one.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, HeaderMap, String) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        let token = self.csrf.clone();
        if !fields.iter().any(|(n, _)| *n == "csrf") {
            form.push(("csrf", &token));
        }
        self.post_raw(path, &form).await
    }

    async fn post_raw(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, HeaderMap, String) {
        let response = self
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    async fn read(&mut self, response: reqwest::Response) -> (u16, HeaderMap, String) {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.keep(&headers);
        let body = response.text().await.unwrap();
        if let Some(token) = csrf_of(&body) {
            self.csrf = token;
        }
        (status, headers, body)
    }

    /// Signs in; answers the sign-in POST's status and `Location`.
    async fn sign_in(&mut self, username: &str, password: &str) -> (u16, String, String) {
        self.get("/portal/sign-in").await;
        let (status, headers, body) = self
            .post(
                "/portal/sign-in",
                &[("username", username), ("password", password)],
            )
            .await;
        let to = location(&headers);
        (status, to, body)
    }

    /// Signs in and expects to land on the start page.
    async fn signed_in(app: &'a TestApp, username: &str) -> Browser<'a> {
        let mut b = Browser::new(app);
        let (status, to, body) = b.sign_in(username, PASSWORD).await;
        assert_eq!(status, 303, "{body}");
        assert_eq!(to, "/portal/");
        let (status, _, _) = b.get("/portal/").await;
        assert_eq!(status, 200);
        b
    }
}

fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn add_operator(app: &TestApp, name: &str, role: OperatorRole, issuers: &str, must: bool) {
    let password_hash = d1_registry::operators::hash_password(PASSWORD).unwrap();
    app.state
        .store
        .add_operator(NewOperator {
            username: name.into(),
            role,
            issuers: issuers.parse::<OperatorIssuers>().unwrap(),
            password_hash,
            must_change_password: must,
        })
        .await
        .unwrap();
}

async fn audit(app: &TestApp, operator: &str) -> Vec<AuditEntry> {
    app.state
        .store
        .audit(AuditQuery {
            operator: Some(operator.into()),
            since: None,
            limit: 100,
        })
        .await
        .unwrap()
}

/// An app with a card `card-1` (PAN `test_pan(71)`) for consumer `cons-1`, who has full PI.
async fn with_card() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_product("visa-classic", Scheme::Visa, "411111")
        .await;
    let token = app.token().await;
    app.register(&token, "cons-1", full_pi()).await;
    let jwe = encrypt_for(
        &app,
        &json!({"pan": test_pan(71), "exp": future_exp()}),
        "A256GCM",
    )
    .await;
    let body =
        json!({"consumerId": "cons-1", "cardProductId": "visa-classic", "encryptedData": jwe});
    let response = app.put_json(&app.card_url("card-1"), &token, &body).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    (app, token)
}

const CONSUMER_PAGE: &str = "/portal/issuers/BANK000001/consumers/cons-1";

#[tokio::test]
async fn sign_in_gives_a_strict_http_only_cookie_and_refuses_wrong_passwords_alike() {
    let app = spawn_app().await;
    add_operator(&app, "ann", OperatorRole::Cci, "all", false).await;
    let mut b = Browser::new(&app);
    let (status, _, wrong) = b.sign_in("ann", "not the password").await;
    assert_eq!(status, 401);
    assert!(wrong.contains("Wrong username or password."), "{wrong}");
    let (status, _, unknown) = b.sign_in("nobody", "not the password").await;
    assert_eq!(status, 401);
    assert!(unknown.contains("Wrong username or password."));
    assert!(!b.has_session());

    b.get("/portal/sign-in").await;
    let (status, headers, _) = b
        .post(
            "/portal/sign-in",
            &[("username", "ann"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location(&headers), "/portal/");
    let cookie = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("d1_portal="))
        .unwrap();
    assert!(
        cookie.contains("; Path=/portal; HttpOnly; SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let (status, _, home) = b.get("/portal/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains("id=\"operator\"") && home.contains("ann"),
        "{home}"
    );
    let outcomes: Vec<String> = audit(&app, "ann")
        .await
        .into_iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes, ["ok", "wrong_password"]);
    assert!(
        audit(&app, "nobody").await.is_empty(),
        "unknown names stay out of the trail"
    );
}

#[tokio::test]
async fn five_failed_sign_ins_lock_the_account_even_for_the_right_password() {
    let app = spawn_app().await;
    add_operator(&app, "bob", OperatorRole::Cci, "all", false).await;
    let mut b = Browser::new(&app);
    for _ in 0..5 {
        let (status, _, _) = b.sign_in("bob", "wrong wrong wrong").await;
        assert_eq!(status, 401);
    }
    let (status, _, body) = b.sign_in("bob", PASSWORD).await;
    assert_eq!(status, 403);
    assert!(body.contains("locked"), "{body}");
    assert!(!b.has_session());
    let record = app.state.store.operator("bob").await.unwrap().unwrap();
    assert!(record.is_locked(d1_store::now_ms()));
}

#[tokio::test]
async fn a_post_without_its_csrf_token_is_refused_audited_and_does_nothing() {
    let (app, _) = with_card().await;
    add_operator(&app, "cat", OperatorRole::Cci, "all", false).await;
    let mut b = Browser::signed_in(&app, "cat").await;
    let suspend = "/portal/issuers/BANK000001/consumers/cons-1/cards/card-1/suspend";
    let (status, _, body) = b.post_raw(suspend, &[("reasonCode", "CARD_LOST")]).await;
    assert_eq!(status, 403);
    assert!(body.contains("Nothing was done"), "{body}");
    let (status, _, _) = b
        .post(suspend, &[("reasonCode", "CARD_LOST"), ("csrf", "forged")])
        .await;
    assert_eq!(status, 403);
    let card = app
        .state
        .store
        .card(&ISSUER.parse_issuer(), &"card-1".parse_card())
        .await;
    assert_eq!(card.unwrap().unwrap().state.as_str(), "ACTIVE");
    let refused = audit(&app, "cat").await;
    assert_eq!(
        refused
            .iter()
            .filter(|e| e.outcome == "csrf_refused")
            .count(),
        2
    );

    // The sign-in form carries one too: without its cookie, a sign-in is refused.
    let mut stranger = Browser::new(&app);
    let (status, _, _) = stranger
        .post_raw(
            "/portal/sign-in",
            &[("username", "cat"), ("password", PASSWORD), ("csrf", "x")],
        )
        .await;
    assert_eq!(status, 403);
    assert!(!stranger.has_session());
}

trait Parse {
    fn parse_issuer(&self) -> d1_domain::IssuerId;
    fn parse_card(&self) -> d1_domain::card::CardId;
}

impl Parse for str {
    fn parse_issuer(&self) -> d1_domain::IssuerId {
        d1_domain::IssuerId::parse(self).unwrap()
    }
    fn parse_card(&self) -> d1_domain::card::CardId {
        d1_domain::card::CardId::parse(self).unwrap()
    }
}

#[tokio::test]
async fn search_finds_by_pan_card_id_and_consumer_id_and_never_keeps_the_pan() {
    let (app, _) = with_card().await;
    add_operator(&app, "dan", OperatorRole::Cci, "all", false).await;
    let mut b = Browser::signed_in(&app, "dan").await;
    let pan = test_pan(71);
    for q in [pan.as_str(), "card-1", "cons-1"] {
        let (status, headers, _) = b.post("/portal/search", &[("q", q)]).await;
        assert_eq!(status, 303, "{q}");
        assert_eq!(location(&headers), CONSUMER_PAGE);
    }
    for q in [test_pan(72).as_str(), "card-9", "cons-9"] {
        let (status, _, body) = b.post("/portal/search", &[("q", q)]).await;
        assert_eq!(status, 404, "{q}");
        assert!(body.contains("id=\"not-found\""));
    }
    let entries = audit(&app, "dan").await;
    let mut actions: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.action.starts_with("search"))
        .map(|e| (e.action.clone(), e.outcome.clone()))
        .collect();
    actions.reverse();
    let expected = [
        ("search.pan", "found"),
        ("search.cardId", "found"),
        ("search.consumerId", "found"),
        ("search.pan", "not_found"),
        ("search.id", "not_found"),
        ("search.id", "not_found"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, o)| ((*a).to_owned(), (*o).to_owned()))
        .collect();
    assert_eq!(actions, expected);
    let by_pan = entries
        .iter()
        .rev()
        .find(|e| e.action == "search.pan")
        .unwrap();
    assert_eq!(by_pan.card_id.as_deref(), Some("card-1"));
    assert_eq!(by_pan.consumer_id.as_deref(), Some("cons-1"));
    let text = format!("{entries:?}");
    assert!(!text.contains(&pan) && !text.contains(&test_pan(72)));
    assert!(
        !text.contains("cons-9"),
        "a query that found nothing is not kept"
    );
    assert!(!logs().contains(&pan), "the PAN reached the log");
}

#[tokio::test]
async fn another_issuers_consumer_is_the_same_not_found_as_an_absent_one() {
    let (app, _) = with_card().await;
    add_operator(&app, "eve", OperatorRole::Admin, OTHER_ISSUER, false).await;
    let mut b = Browser::signed_in(&app, "eve").await;
    let (status, _, searched) = b.post("/portal/search", &[("q", "cons-1")]).await;
    assert_eq!(status, 404);
    let (status, _, by_pan) = b.post("/portal/search", &[("q", &test_pan(71))]).await;
    assert_eq!(status, 404);
    let (status, _, other) = b.get(CONSUMER_PAGE).await;
    assert_eq!(status, 404);
    let (status, _, absent) = b
        .get(&format!("/portal/issuers/{OTHER_ISSUER}/consumers/cons-1"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(other, absent);
    assert_eq!(searched, by_pan);
    let suspend = format!("{CONSUMER_PAGE}/cards/card-1/suspend");
    let (status, _, _) = b.post(&suspend, &[("reasonCode", "CARD_LOST")]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_consumer_page_masks_pi_and_only_a_manager_may_reveal_it() {
    let (app, _) = with_card().await;
    add_operator(&app, "cci1", OperatorRole::Cci, ISSUER, false).await;
    add_operator(&app, "mgr1", OperatorRole::Manager, ISSUER, false).await;
    let mut cci = Browser::signed_in(&app, "cci1").await;
    let (status, headers, page) = cci.get(CONSUMER_PAGE).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    let pan = test_pan(71);
    for shown in [
        "J. M. O.",
        "j***@example.com",
        "+33 *******78",
        &pan[pan.len() - 4..],
    ] {
        assert!(page.contains(shown), "{shown} missing from {page}");
    }
    assert!(page.contains("<tr data-card-id=\"card-1\">"));
    for canary in [
        "Jean-Luc",
        "jean-luc@example.com",
        "612345678",
        "rue de la Paix",
        "75002",
        "1980-02-29",
    ] {
        assert!(!page.contains(canary), "{canary} shown masked");
    }
    assert!(!page.contains(&pan));
    assert!(page.contains("id=\"reveal\""));
    let (status, _, _) = cci.post(&format!("{CONSUMER_PAGE}/reveal"), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(audit(&app, "cci1").await[0].outcome, "forbidden");

    let mut mgr = Browser::signed_in(&app, "mgr1").await;
    mgr.get(CONSUMER_PAGE).await;
    let (status, _, clear) = mgr.post(&format!("{CONSUMER_PAGE}/reveal"), &[]).await;
    assert_eq!(status, 200);
    assert!(
        clear.contains("jean-luc@example.com") && clear.contains("612345678"),
        "{clear}"
    );
    // Canary PI of this test only, revealed: neither the page views nor the reveal log it.
    let mut canary = full_pi();
    canary["email"] = json!("canary.portal@example.com");
    canary["mobilePhoneNumber"]["phoneNumber"] = json!("698765431");
    let token = app.token().await;
    app.register(&token, "cons-canary", canary).await;
    let canary_page = "/portal/issuers/BANK000001/consumers/cons-canary";
    let (_, _, masked) = mgr.get(canary_page).await;
    assert!(!masked.contains("canary.portal") && !masked.contains("698765431"));
    let (_, _, clear) = mgr.post(&format!("{canary_page}/reveal"), &[]).await;
    assert!(clear.contains("canary.portal@example.com") && clear.contains("698765431"));
    let log = logs();
    assert!(
        !log.contains("canary.portal") && !log.contains("698765431"),
        "PI reached the log"
    );
    let revealed = &audit(&app, "mgr1").await[1];
    assert_eq!(
        (revealed.action.as_str(), revealed.outcome.as_str()),
        ("reveal", "ok")
    );
    assert_eq!(revealed.consumer_id.as_deref(), Some("cons-1"));
}

#[tokio::test]
async fn a_consumer_whose_pi_the_issuer_keeps_is_said_so() {
    let app = spawn_app().await;
    let token = app.token().await;
    app.register(&token, "cons-2", Value::Null).await;
    add_operator(&app, "fay", OperatorRole::Manager, "all", false).await;
    let mut b = Browser::signed_in(&app, "fay").await;
    let (status, _, page) = b.get("/portal/issuers/BANK000001/consumers/cons-2").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"pi-at-issuer\""), "{page}");
    assert!(page.contains("ISSUER"));
}

#[tokio::test]
async fn a_cci_suspends_with_card_lost_and_resumes_with_card_found_through_the_api_rules() {
    let (app, token) = with_card().await;
    add_operator(&app, "gus", OperatorRole::Cci, ISSUER, false).await;
    let mut b = Browser::signed_in(&app, "gus").await;
    b.get(CONSUMER_PAGE).await;
    let card = |op: &str| format!("{CONSUMER_PAGE}/cards/card-1/{op}");
    let (status, headers, _) = b
        .post(&card("suspend"), &[("reasonCode", "CARD_LOST")])
        .await;
    assert_eq!(status, 303);
    assert_eq!(location(&headers), format!("{CONSUMER_PAGE}?done=suspend"));
    let read: Value = app
        .get(&app.card_url("card-1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (read["state"].as_str(), read["stateReason"].as_str()),
        (Some("SUSPENDED"), Some("CARD_LOST"))
    );

    let (status, _, page) = b.get(&format!("{CONSUMER_PAGE}?done=suspend")).await;
    assert_eq!(status, 200);
    assert!(page.contains("The card is suspended."));
    let (status, _, refused) = b
        .post(&card("resume"), &[("reasonCode", "USER_DECISION")])
        .await;
    assert_eq!(status, 403);
    assert!(refused.contains("which does not allow resume"), "{refused}");
    let (status, _, _) = b
        .post(&card("delete"), &[("reasonCode", "CARD_LOST")])
        .await;
    assert_eq!(status, 403, "a cci does not delete");
    let (status, _, _) = b
        .post(&card("resume"), &[("reasonCode", "CARD_FOUND")])
        .await;
    assert_eq!(status, 303);
    let read: Value = app
        .get(&app.card_url("card-1"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (read["state"].as_str(), read["stateReason"].as_str()),
        (Some("ACTIVE"), Some("CARD_FOUND"))
    );

    // The same trail as an API call, with the operator as its user.
    let trail: Value = app
        .get(
            &app.url("/banking/v2/issuers/BANK000001/consumers/cons-1/operations"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    let first = &trail["operations"][0];
    assert_eq!(first["operation"], "CARD_RESUME");
    assert_eq!(first["userId"], "gus");
    assert_eq!(trail["operations"][1]["operation"], "CARD_SUSPEND");
    let outcomes: Vec<(String, String)> = audit(&app, "gus")
        .await
        .into_iter()
        .filter(|e| e.action.starts_with("card."))
        .map(|e| (e.action, e.outcome))
        .collect();
    assert_eq!(outcomes[0], ("card.resume".to_owned(), "ok".to_owned()));
    assert!(outcomes.contains(&("card.resume".to_owned(), "INVALID_STATE".to_owned())));
    assert!(outcomes.contains(&("card.delete".to_owned(), "forbidden".to_owned())));
}

#[tokio::test]
async fn every_portal_response_carries_the_security_headers() {
    let (app, _) = with_card().await;
    add_operator(&app, "hal", OperatorRole::Admin, "all", false).await;
    let mut b = Browser::signed_in(&app, "hal").await;
    for path in [
        "/portal/sign-in",
        "/portal/static/portal.css",
        "/portal/nowhere",
        "/portal/",
        CONSUMER_PAGE,
        "/portal/operators",
        "/portal/audit",
    ] {
        let (status, headers, _) = b.get(path).await;
        assert!(status < 500, "{path}");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
    }
    let (_, headers, css) = b.get("/portal/static/portal.css").await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.contains(".badge"));
    let (_, _, page) = b.get(CONSUMER_PAGE).await;
    assert!(
        !page.contains("<script") && !page.contains("style=\""),
        "no script, no inline style"
    );
}

#[tokio::test]
async fn a_one_time_password_is_changed_before_anything_else() {
    let app = spawn_app().await;
    add_operator(&app, "ivy", OperatorRole::Cci, "all", true).await;
    let mut b = Browser::new(&app);
    let (status, to, _) = b.sign_in("ivy", PASSWORD).await;
    assert_eq!((status, to.as_str()), (303, "/portal/password"));
    let (status, headers, _) = b.get("/portal/").await;
    assert_eq!(
        (status, location(&headers).as_str()),
        (303, "/portal/password")
    );
    b.get("/portal/password").await;
    let (status, _, _) = b
        .post(
            "/portal/password",
            &[("password", "short"), ("password_again", "short")],
        )
        .await;
    assert_eq!(status, 400);
    let new = "a much longer password";
    let (status, _, _) = b
        .post(
            "/portal/password",
            &[("password", new), ("password_again", "different one here")],
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = b
        .post(
            "/portal/password",
            &[("password", new), ("password_again", new)],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = b.get("/portal/").await;
    assert_eq!(status, 200);
    let mut again = Browser::new(&app);
    let (status, to, _) = again.sign_in("ivy", new).await;
    assert_eq!((status, to.as_str()), (303, "/portal/"));
}

#[tokio::test]
async fn sign_out_and_idle_time_end_a_session() {
    let app = spawn_tweaked(|c| c.portal.idle_timeout_secs = 1).await;
    add_operator(&app, "jon", OperatorRole::Cci, "all", false).await;
    let mut b = Browser::signed_in(&app, "jon").await;
    let kept = b.cookie_header();
    let (status, headers, _) = b.post("/portal/sign-out", &[]).await;
    assert_eq!(
        (status, location(&headers).as_str()),
        (303, "/portal/sign-in")
    );
    let mut replay = Browser::new(&app);
    replay.cookies = kept
        .split("; ")
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let (status, headers, _) = replay.get("/portal/").await;
    assert_eq!(
        (status, location(&headers).as_str()),
        (303, "/portal/sign-in")
    );

    let mut idle = Browser::signed_in(&app, "jon").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, headers, _) = idle.get("/portal/").await;
    assert_eq!(
        (status, location(&headers).as_str()),
        (303, "/portal/sign-in")
    );
}

#[tokio::test]
async fn an_admin_adds_an_operator_with_a_one_time_password_and_reads_the_audit_trail() {
    let app = spawn_app().await;
    add_operator(&app, "kim", OperatorRole::Admin, "all", false).await;
    add_operator(&app, "lee", OperatorRole::Manager, "all", false).await;
    let mut admin = Browser::signed_in(&app, "kim").await;
    admin.get("/portal/operators").await;
    let (status, _, page) = admin
        .post(
            "/portal/operators",
            &[("username", "new-op"), ("role", "cci"), ("issuers", ISSUER)],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let shown = page.split("shown this once: ").nth(1).unwrap();
    let password: String = shown
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    assert_eq!(password.len(), 24);
    let record = app.state.store.operator("new-op").await.unwrap().unwrap();
    assert!(record.must_change_password);
    let mut newcomer = Browser::new(&app);
    let (status, to, _) = newcomer.sign_in("new-op", &password).await;
    assert_eq!((status, to.as_str()), (303, "/portal/password"));

    let (status, _, _) = admin.post("/portal/operators/new-op/disable", &[]).await;
    assert_eq!(status, 303);
    let (status, headers, _) = newcomer.get("/portal/password").await;
    assert_eq!(
        (status, location(&headers).as_str()),
        (303, "/portal/sign-in")
    );
    let (status, _, trail) = admin.get("/portal/audit").await;
    assert_eq!(status, 200);
    assert!(
        trail.contains("operator.add:new-op") && trail.contains("operator.disable:new-op"),
        "{trail}"
    );

    let mut manager = Browser::signed_in(&app, "lee").await;
    let (status, _, _) = manager.get("/portal/audit").await;
    assert_eq!(status, 403);
    let (status, _, _) = manager.get("/portal/operators").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn with_the_portal_off_every_portal_path_is_404_and_the_api_document_is_unchanged() {
    let on = spawn_app().await;
    let off = spawn_tweaked(|c| c.portal.enabled = false).await;
    for path in [
        "/portal",
        "/portal/",
        "/portal/sign-in",
        "/portal/static/portal.css",
    ] {
        let response = off.client.get(off.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().get("content-security-policy").is_none());
    }
    let response = on
        .client
        .get(on.url("/portal/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc = |app: &TestApp| {
        let url = app.url("/openapi.json");
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let (with, without) = (doc(&on).await, doc(&off).await);
    assert_eq!(with, without);
    assert!(!with.contains("/portal"));
}

#[tokio::test]
async fn a_manager_replaces_a_created_card_deletes_the_consumer_and_a_registered_replace_is_refused_as_by_the_api(
) {
    let (app, token) = with_card().await;
    app.register(&token, "cons-3", Value::Null).await;
    let body = json!({"consumerId": "cons-3", "cardProductId": "visa-classic"});
    let created = app
        .post_json(
            &app.url("/banking/v2/issuers/BANK000001/cards"),
            &token,
            &body,
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let card = created["cardId"].as_str().unwrap().to_owned();
    add_operator(&app, "mia", OperatorRole::Manager, ISSUER, false).await;
    add_operator(&app, "ned", OperatorRole::Cci, ISSUER, false).await;
    let mut b = Browser::signed_in(&app, "mia").await;
    let page3 = "/portal/issuers/BANK000001/consumers/cons-3";
    b.get(page3).await;
    let (status, _, _) = b
        .post(
            &format!("{page3}/cards/{card}/replace"),
            &[("reasonCode", "CARD_STOLEN"), ("newCardId", "")],
        )
        .await;
    assert_eq!(status, 303);
    let old: Value = app
        .get(&app.card_url(&card), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["state"], "REPLACED");
    let (_, _, page) = b.get(page3).await;
    let new_id = old["replacedBy"].as_str().unwrap();
    assert!(
        page.contains(&format!("<tr data-card-id=\"{new_id}\">")),
        "{page}"
    );

    let (status, _, refused) = b
        .post(
            &format!("{CONSUMER_PAGE}/cards/card-1/replace"),
            &[("reasonCode", "CARD_LOST"), ("newCardId", "card-2")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        refused.contains("is required to replace a registered card"),
        "{refused}"
    );

    let mut cci = Browser::signed_in(&app, "ned").await;
    cci.get(CONSUMER_PAGE).await;
    let (status, _, _) = cci
        .post(
            &format!("{CONSUMER_PAGE}/delete"),
            &[("reasonCode", "USER_DECISION")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, headers, _) = b
        .post(
            &format!("{CONSUMER_PAGE}/delete"),
            &[("reasonCode", "USER_DECISION")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location(&headers),
        format!("{CONSUMER_PAGE}?done=delete-consumer")
    );
    let gone: Value = app
        .get(
            &app.url("/banking/v2/issuers/BANK000001/consumers/cons-1"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gone["state"], "DELETED");
    let (_, _, page) = b.get(CONSUMER_PAGE).await;
    assert!(page.contains("DELETED") && !page.contains("id=\"delete-consumer\""));
}
