//! `spawn_app()` and typed helpers.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use d1_crypto::ec::SigningKey;
use d1_domain::{IssuerId, LookalikePolicy};
use d1_registry::config::{Config, LogFormat, Overrides};
use d1_registry::state::AppState;
use d1_registry::{app, bootstrap, telemetry};
use d1_store::{NewIssuer, PiStorage};
use serde_json::{json, Value};

pub const ISSUER: &str = "BANK000001";
pub const OTHER_ISSUER: &str = "BANK000002";

/// Everything the app logged in this test binary.
pub fn logs() -> String {
    let buffer = log_buffer().lock().unwrap();
    String::from_utf8_lossy(&buffer).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let buffer = Arc::clone(log_buffer());
        telemetry::init_with_writer(
            LogFormat::Json,
            "debug",
            move || Capture(Arc::clone(&buffer)),
            false,
        );
    });
}

/// An issuer as the tests drive it: its id, assertion key and kid.
pub struct TestIssuer {
    pub id: &'static str,
    pub key: SigningKey,
    pub kid: String,
}

/// A running app.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub issuer: TestIssuer,
    pub other: TestIssuer,
    pub place: Arc<Place>,
    server: tokio::task::JoinHandle<()>,
    /// Stops the Click to Pay worker and outbox.
    stop_jobs: tokio::sync::watch::Sender<bool>,
}

/// Settings for an issuer onboarded by [`spawn_with`].
#[derive(Clone, Copy)]
pub struct IssuerSettings {
    pub pi_storage: PiStorage,
    pub click_to_pay: bool,
    pub lookalike_policy: LookalikePolicy,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        Self {
            pi_storage: PiStorage::Allowed,
            click_to_pay: false,
            lookalike_policy: LookalikePolicy::Warn,
        }
    }
}

/// Whether this binary runs the suite on PostgreSQL: the `api` and `browser` targets use
/// SQLite, and `api_postgres` and `browser_postgres` (the same files) a fresh schema per test
/// in `D1_TEST_DATABASE_URL`.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("_postgres")
}

/// Where one test's data lives: a data directory (KEK, and the SQLite database) and the
/// database URL.
pub struct Place {
    pub dir: tempfile::TempDir,
    pub database_url: String,
}

/// A fresh place: the SQLite file in a new directory, or a new PostgreSQL schema.
pub async fn fresh_place() -> Arc<Place> {
    let dir = tempfile::tempdir().unwrap();
    let database_url = if on_postgres() {
        let base = std::env::var("D1_TEST_DATABASE_URL").expect("D1_TEST_DATABASE_URL");
        d1_scratch::fresh(&base, "d1t_api_").await.unwrap()
    } else {
        format!("sqlite://{}", dir.path().join("registry.db").display())
    };
    Arc::new(Place { dir, database_url })
}

/// [`fresh_place`] for tests without a runtime of their own.
pub fn fresh_place_blocking() -> Arc<Place> {
    std::thread::spawn(|| {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(fresh_place())
    })
    .join()
    .unwrap()
}

impl Place {
    /// Where the data of this place could rest, each with what it holds: the files of the
    /// data directory, and on PostgreSQL every row of the schema as JSON (byte strings in
    /// hex).
    pub async fn resting_data(&self) -> Vec<(String, Vec<u8>)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                found.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        if on_postgres() {
            let client = d1_scratch::connect(&self.database_url).await.unwrap();
            let tables = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = current_schema()",
                    &[],
                )
                .await
                .unwrap();
            for table in tables {
                let name: String = table.try_get(0).unwrap();
                let rows = client
                    .query(&format!("SELECT row_to_json(t)::text FROM {name} t"), &[])
                    .await
                    .unwrap();
                for row in rows {
                    found.push((
                        format!("table {name}"),
                        row.try_get::<_, String>(0).unwrap().into_bytes(),
                    ));
                }
            }
        }
        found
    }

    /// [`Self::holding`], from a test without a runtime.
    pub fn holding_blocking(&self, needle: &[u8]) -> Vec<String> {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(self.holding(needle))
    }

    /// Which of [`Self::resting_data`] hold `needle` (as bytes, or as the hex PostgreSQL
    /// shows byte strings in).
    pub async fn holding(&self, needle: &[u8]) -> Vec<String> {
        let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
        self.resting_data()
            .await
            .into_iter()
            .filter(|(_, bytes)| {
                contains(bytes, needle) || (on_postgres() && contains(bytes, hex.as_bytes()))
            })
            .map(|(place, _)| place)
            .collect()
    }

    /// Runs a statement on the database directly, behind the service's back.
    pub async fn execute(&self, sql: &str) {
        if on_postgres() {
            let client = d1_scratch::connect(&self.database_url).await.unwrap();
            client.batch_execute(sql).await.unwrap();
        } else {
            let conn = rusqlite::Connection::open(self.dir.path().join("registry.db")).unwrap();
            conn.execute_batch(sql).unwrap();
        }
    }

    /// The first column of the first row of a query returning a byte string.
    pub async fn bytes(&self, sql: &str) -> Vec<u8> {
        if on_postgres() {
            let client = d1_scratch::connect(&self.database_url).await.unwrap();
            client
                .query_one(sql, &[])
                .await
                .unwrap()
                .try_get(0)
                .unwrap()
        } else {
            let conn = rusqlite::Connection::open(self.dir.path().join("registry.db")).unwrap();
            conn.query_row(sql, [], |r| r.get(0)).unwrap()
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn config_for(place: &Place) -> Config {
    let overrides = Overrides {
        data_dir: place.dir.path().to_path_buf(),
        database_url: Some(place.database_url.clone()),
        ..Overrides::default()
    };
    Config::load(&overrides).unwrap()
}

/// Boots the app on a fresh data directory with two issuers onboarded.
pub async fn spawn_app() -> TestApp {
    spawn_with(IssuerSettings::default()).await
}

/// Boots the app with two issuers onboarded and the test configuration changed by `tweak`.
pub async fn spawn_tweaked(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let place = fresh_place().await;
    let (issuer, other) = test_issuers();
    boot_tweaked(
        place,
        issuer,
        other,
        true,
        IssuerSettings::default(),
        true,
        tweak,
    )
    .await
}

fn test_issuers() -> (TestIssuer, TestIssuer) {
    let issuer = TestIssuer {
        id: ISSUER,
        key: SigningKey::generate().unwrap(),
        kid: format!("kid-{}", uuid::Uuid::new_v4()),
    };
    let other = TestIssuer {
        id: OTHER_ISSUER,
        key: SigningKey::generate().unwrap(),
        kid: format!("kid-{}", uuid::Uuid::new_v4()),
    };
    (issuer, other)
}

/// Boots the app with the first issuer's settings given.
pub async fn spawn_with(settings: IssuerSettings) -> TestApp {
    let place = fresh_place().await;
    let issuer = TestIssuer {
        id: ISSUER,
        key: SigningKey::generate().unwrap(),
        kid: format!("kid-{}", uuid::Uuid::new_v4()),
    };
    let other = TestIssuer {
        id: OTHER_ISSUER,
        key: SigningKey::generate().unwrap(),
        kid: format!("kid-{}", uuid::Uuid::new_v4()),
    };
    boot(place, issuer, other, true, settings).await
}

/// Boots the app on `place`; `onboard` adds the two issuers first.
pub async fn boot(
    place: Arc<Place>,
    issuer: TestIssuer,
    other: TestIssuer,
    onboard: bool,
    settings: IssuerSettings,
) -> TestApp {
    boot_with(place, issuer, other, onboard, settings, true).await
}

/// The configuration tests run with: short timeouts and polls, so that faults show quickly.
pub fn test_config(place: &Place) -> Config {
    let mut config = config_for(place);
    config.issuer_backend.timeout_ms = 700;
    config.issuer_backend.connect_timeout_ms = 500;
    config.issuer_backend.retries = 1;
    config.issuer_backend.backoff_ms = 20;
    config.issuer_backend.breaker_failures = 3;
    config.issuer_backend.breaker_open_secs = 2;
    config.jobs.poll_interval_ms = 50;
    config
}

/// [`boot`], with the Click to Pay worker and outbox started or not (`jobs`).
pub async fn boot_with(
    place: Arc<Place>,
    issuer: TestIssuer,
    other: TestIssuer,
    onboard: bool,
    settings: IssuerSettings,
    jobs: bool,
) -> TestApp {
    boot_tweaked(place, issuer, other, onboard, settings, jobs, |_| {}).await
}

/// [`boot_with`], with the test configuration changed by `tweak` first.
pub async fn boot_tweaked(
    place: Arc<Place>,
    issuer: TestIssuer,
    other: TestIssuer,
    onboard: bool,
    settings: IssuerSettings,
    jobs: bool,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    capture_logs();
    let mut config = test_config(&place);
    tweak(&mut config);
    let opened = bootstrap::open(&config).await.unwrap();
    if onboard {
        for (i, s) in [(&issuer, settings), (&other, IssuerSettings::default())] {
            let jwk = serde_json::to_string(&i.key.public_key().to_jwk(None, None, None)).unwrap();
            opened
                .store
                .add_issuer(NewIssuer {
                    issuer_id: IssuerId::parse(i.id).unwrap(),
                    pi_storage: s.pi_storage,
                    click_to_pay: s.click_to_pay,
                    lookalike_policy: s.lookalike_policy,
                    kid: i.kid.clone(),
                    public_jwk: jwk,
                    client_certs: d1_store::CertBindings::default(),
                    require_jti: false,
                })
                .await
                .unwrap();
        }
    }
    let state = AppState::new(opened.store, opened.keyring, config).unwrap();
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    if jobs {
        state.click_to_pay.start(jobs_stopped).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app::router(state.clone());
    let listen = d1_registry::listen::Listen {
        limits: d1_registry::listen::ConnLimits::from_config(&state.config.server),
        tls: None,
        proxy: d1_registry::listen::proxy::ProxyHeader::from_config(&state.config.server).unwrap(),
        grace: std::time::Duration::from_secs(1),
    };
    let server = tokio::spawn(async move {
        // Held here: the loop stops when its sender goes away.
        let (_never, running) = tokio::sync::watch::channel(false);
        d1_registry::listen::serve(listener, router, listen, running).await;
    });
    TestApp {
        addr,
        client: reqwest::Client::new(),
        state,
        issuer,
        other,
        place,
        server,
        stop_jobs,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed JWT with the given header and claims.
pub fn jwt(key: &SigningKey, header: &Value, claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        key.pkcs8(),
    )
    .unwrap();
    let sig = pair
        .sign(
            &aws_lc_rs::rand::SystemRandom::new(),
            signing_input.as_bytes(),
        )
        .unwrap();
    format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref())
    )
}

impl TestIssuer {
    /// A valid assertion with a fresh jti.
    pub fn assertion(&self) -> String {
        let claims = json!({"iss": self.id, "sub": self.id, "exp": now() + 300, "iat": now(), "jti": uuid::Uuid::new_v4().to_string()});
        jwt(
            &self.key,
            &json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}),
            &claims,
        )
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn consumer_url(&self, consumer: &str) -> String {
        self.url(&format!(
            "/banking/v2/issuers/{ISSUER}/consumers/{consumer}"
        ))
    }

    /// Delete consumer, without a body.
    pub async fn delete_consumer(&self, token: &str, consumer: &str) -> reqwest::Response {
        self.client
            .post(self.consumer_url(consumer) + "/operations/delete")
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// POSTs a form to the token endpoint.
    pub async fn token_form(&self, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/authz/v1/oauth2/token"))
            .form(pairs)
            .send()
            .await
            .unwrap()
    }

    /// An access token for `issuer`.
    pub async fn token_for(&self, issuer: &TestIssuer) -> String {
        let response = self
            .token_form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &issuer.assertion()),
            ])
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An access token for the main issuer.
    pub async fn token(&self) -> String {
        self.token_for(&self.issuer).await
    }

    pub async fn put_json(&self, url: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs with the token and no body.
    pub async fn post_empty(&self, url: &str, token: &str) -> reqwest::Response {
        self.client
            .post(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as JSON with the token.
    pub async fn post_json(&self, url: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Sends `body` as written, as JSON: for bodies a `Value` cannot hold (a key twice).
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: String,
    ) -> reqwest::Response {
        self.client
            .request(method, url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, url: &str, token: &str) -> reqwest::Response {
        self.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Registers `consumer` with `pi` (or without PI for `Value::Null`) and expects 204.
    pub async fn register(&self, token: &str, consumer: &str, pi: Value) {
        let body = if pi.is_null() {
            json!({})
        } else {
            json!({"personalInformation": pi})
        };
        let response = self
            .put_json(&self.consumer_url(consumer), token, &body)
            .await;
        assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    }

    /// Stops serving and closes the store, as a process exit would.
    pub async fn stop(self) -> (Arc<Place>, TestIssuer, TestIssuer) {
        let _ = self.stop_jobs.send(true);
        self.server.abort();
        let _ = self.server.await;
        drop(self.state);
        (self.place, self.issuer, self.other)
    }
}

/// PI that passes every rule, Click to Pay fields included.
pub fn full_pi() -> Value {
    json!({
        "language": "en-US",
        "title": "Dr",
        "firstName": "Jean-Luc",
        "middleName": "Marie",
        "lastName": "O'Neil",
        "dateOfBirth": "1980-02-29",
        "email": "jean-luc@example.com",
        "mobilePhoneNumber": {"countryCode": "+33", "phoneNumber": "612345678"},
        "residencyAddress": {"line1": "1 rue de la Paix", "city": "Paris", "zipCode": "75002", "countryCode": "FR"}
    })
}

/// The text D1 publishes for the refusal of a DELETED consumer (contract section 7).
pub const CONSUMER_DELETED: &str = "check the state of the end user (consumer) is ACTIVE";

/// Asserts the refusal of a DELETED consumer: 403 `INVALID_STATE` in D1's published text.
pub async fn assert_consumer_deleted(response: reqwest::Response) {
    assert_error(response, 403, "INVALID_STATE", CONSUMER_DELETED).await;
}

/// Asserts a v2 error body and status.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
    mentions: &str,
) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorCode"], code, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains(mentions),
        "{body} should mention {mentions}"
    );
    body
}

/// Asserts the bare 401 body.
pub async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errorCode").is_none(), "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("AUTHORIZER_UNAUTHORIZED"),
        "{body}"
    );
}

/// Encrypts `{"pan", "exp"}` (or any payload) to the service's newest JWE key, as an issuer
/// does, with an independent JOSE library.
pub async fn encrypt_for(app: &TestApp, payload: &Value, enc: &str) -> String {
    encrypt_to(&jwe_key(app).await, payload, enc)
}

/// Encrypts to a given public JWK.
pub fn encrypt_to(jwk: &Value, payload: &Value, enc: &str) -> String {
    encrypt_bytes_to(jwk, payload.to_string().as_bytes(), enc)
}

/// Encrypts a plaintext as given, byte for byte (a JSON `Value` cannot hold a key twice).
pub fn encrypt_bytes_to(jwk: &Value, plaintext: &[u8], enc: &str) -> String {
    let jwk = josekit::jwk::Jwk::from_bytes(jwk.to_string().as_bytes()).unwrap();
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption(enc);
    header.set_key_id(jwk.key_id().unwrap());
    let encrypter = josekit::jwe::ECDH_ES.encrypter_from_jwk(&jwk).unwrap();
    josekit::jwe::serialize_compact(plaintext, &header, &encrypter).unwrap()
}

/// The service's newest public JWE key, as issuers fetch it.
pub async fn jwe_key(app: &TestApp) -> Value {
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"][0].clone()
}

impl TestApp {
    /// Adds a card product for the main issuer.
    pub async fn add_product(&self, id: &str, scheme: d1_domain::card::Scheme, bin: &str) {
        self.state
            .store
            .add_product(d1_store::ProductRecord {
                issuer_id: IssuerId::parse(ISSUER).unwrap(),
                card_product_id: d1_domain::card::CardProductId::parse(id).unwrap(),
                scheme,
                bin: bin.into(),
                validity_months: 36,
            })
            .await
            .unwrap();
    }

    pub fn card_url(&self, card: &str) -> String {
        self.url(&format!("/banking/v2/issuers/{ISSUER}/cards/{card}"))
    }
}

/// A Luhn-valid Visa test PAN (BIN 411111), distinct for each `n`.
pub fn test_pan(n: u64) -> String {
    let body = format!("411111{n:09}");
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|p| d1_domain::guard::luhn_valid(p))
        .unwrap()
}

/// An expiry (`MMYY`) three years from now.
pub fn future_exp() -> String {
    let today = time::OffsetDateTime::now_utc();
    format!(
        "{:02}{:02}",
        u8::from(today.month()),
        (today.year() + 3) % 100
    )
}
