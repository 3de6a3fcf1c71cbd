//! A real headless Chromium for one test: `chromedriver` started on a free port in a process
//! group of its own (Chromium is its child), driven with fantoccini, and the whole group
//! killed on drop so that a failed test leaves no browser behind.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use d1_store::{AuditEntry, AuditQuery, NewOperator, OperatorIssuers, OperatorRole};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::harness::TestApp;

/// The password of every operator these tests make.
pub const PASSWORD: &str = "correct horse battery";

/// The line a test prints when it cannot run.
pub const SKIPPED: &str = "browser suite skipped: chromium/chromedriver not found";

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn tools() -> Option<(PathBuf, PathBuf)> {
    Some((
        on_path(&["chromium", "chromium-browser"])?,
        on_path(&["chromedriver"])?,
    ))
}

/// Whether the browser can run here; if not, says so once for this test.
pub fn available() -> bool {
    let found = tools().is_some();
    if !found {
        eprintln!("{SKIPPED}");
    }
    found
}

/// A signed-out browser on one app.
pub struct Browser {
    pub client: Client,
    base: String,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.driver);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium pointed at `app`.
    pub async fn start(app: &TestApp) -> Browser {
        let (chromium, chromedriver) = tools().expect("checked with available()");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let Value::Object(capabilities) = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1280,1000", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions"],
            }
        }) else {
            unreachable!()
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let attempt = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await;
            match attempt {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("no browser session: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            base: format!("http://{}", app.addr),
            driver,
        }
    }

    /// Opens a path of the app.
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The current path, with its query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The first element matching `css`.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} not on the page: {e}"))
    }

    /// Whether the page has an element matching `css`.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    /// The text of the first element matching `css`, as the page shows it.
    pub async fn text_of(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The page's HTML, as the browser holds it.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Types into the field matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    /// Clicks what matches `css` and waits until the page it led to has loaded.
    pub async fn click_and_wait(&self, css: &str) {
        let element = self.find(css).await;
        self.client
            .execute("window.__d1Before = true;", vec![])
            .await
            .unwrap();
        element.click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__d1Before !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if matches!(loaded, Ok(Value::Bool(true))) {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} led nowhere");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fills the sign-in form and sends it.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.open("/portal/sign-in").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click_and_wait("#sign-in button[type=submit]").await;
    }

    /// Signs in and expects the start page.
    pub async fn signed_in(app: &TestApp, username: &str) -> Browser {
        let b = Browser::start(app).await;
        b.sign_in(username, PASSWORD).await;
        assert_eq!(b.path().await, "/portal/");
        assert!(b.text_of("#operator").await.contains(username));
        b
    }

    /// Types `q` into the header bar's search box and sends it.
    pub async fn search(&self, q: &str) {
        self.type_into("#search input[name=q]", q).await;
        self.click_and_wait("#search button[type=submit]").await;
    }

    /// Picks `reason` in the card's form for `operation` and sends it.
    pub async fn card_action(&self, card: &str, operation: &str, reason: &str) {
        let form = format!("tr[data-card-id=\"{card}\"] form[data-operation={operation}]");
        self.find(&format!("{form} select[name=reasonCode]"))
            .await
            .select_by_value(reason)
            .await
            .unwrap();
        self.click_and_wait(&format!("{form} button[type=submit]"))
            .await;
    }

    /// The value of a cookie the browser keeps for the current page.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_all_cookies()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// Ends the browser session (Chromium exits), then the driver on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Makes an operator with [`PASSWORD`]; `must` asks for a new password at the first sign-in.
pub async fn add_operator(
    app: &TestApp,
    name: &str,
    role: OperatorRole,
    issuers: &str,
    must: bool,
) {
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

/// An operator's audit entries, newest first.
pub async fn audit(app: &TestApp, operator: &str) -> Vec<AuditEntry> {
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
