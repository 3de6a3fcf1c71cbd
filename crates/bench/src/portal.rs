//! The portal scenario (issue "The operator portal", benchmark): an operator's search by PAN
//! and the consumer page it leads to, timed as one step, with 1,000 cards stored and again
//! with 100,000 (`--sizes`), in one run. Each card has its own consumer with PI; the PAN
//! searched is drawn at random from the stored ones. The search is a POST answered 303, and
//! the page a GET of where it points, on keep-alive connections, as a browser does it.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::cards::{self, PRODUCT};
use crate::load::{Prepared, RunStats, Work};
use crate::report::{percentile, run_line};
use crate::seal::Recipient;
use crate::service::Service;
use crate::settings::Settings;

const OPERATOR: &str = "bench-operator";
const PASSWORD: &str = "bench operator password";
/// Concurrent operators: customer care is a few people at a time, not a load of thousands.
const CONNECTIONS: usize = 4;

/// Runs the scenario and prints its figures and the ratio.
///
/// # Errors
/// If the service fails or a search does not lead to its consumer's page.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let sizes = match settings.sizes.as_slice() {
        [small, large] if small < large => (*small, *large),
        _ => bail!("--sizes takes two card counts for the portal scenario, e.g. 1000,100000"),
    };
    crate::report::machine();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(portal(settings, sizes))
}

async fn portal(settings: &Settings, (small, large): (u64, u64)) -> anyhow::Result<()> {
    let url = match &settings.database_url {
        Some(url) => {
            d1_scratch::drop_all(url, "d1b_").await?;
            Some(d1_scratch::create(url, &crate::postgres::schema("portal")).await?)
        }
        None => None,
    };
    let service = Service::start(&settings.binary, url.as_deref())?;
    service.add_product(PRODUCT, "VISA", "400000")?;
    let password = tempfile::NamedTempFile::new()?;
    std::fs::write(password.path(), PASSWORD)?;
    service.cli(&[
        "operator",
        "add",
        "--username",
        OPERATOR,
        "--role",
        "manager",
        "--issuers",
        "all",
        "--password-file",
        password
            .path()
            .to_str()
            .context("a temporary path that is not UTF-8")?,
    ])?;
    let token = service.token().await?;
    let recipient = recipient(&service).await?;
    let session = Session::sign_in(&service.addr).await?;
    println!(
        "\nportal: {CONNECTIONS} operators at once, each a search by PAN (POST, 303) and the consumer page it leads to (GET), {} runs of {}s after a {}s warm-up, on {}",
        settings.runs,
        settings.duration.as_secs(),
        settings.warmup.as_secs(),
        if url.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    let mut stored = 0;
    let mut medians = Vec::new();
    for size in [small, large] {
        store_cards(&service, &token, &recipient, stored, size).await?;
        stored = size;
        session.steps(stored, settings.warmup).await?;
        let mut runs = Vec::new();
        for i in 0..settings.runs {
            let stats = session.steps(stored, settings.duration).await?;
            run_line(&format!("search and page at {size} cards"), i + 1, &stats);
            if stats.non_2xx > 0 {
                bail!(
                    "{} searches did not reach their consumer's page",
                    stats.non_2xx
                );
            }
            runs.push(stats);
        }
        let mut all: Vec<u32> = runs.iter().flat_map(|r| r.latencies_us.clone()).collect();
        all.sort_unstable();
        let (p50, p99) = (
            percentile(&all, 0.5).unwrap_or(0.0),
            percentile(&all, 0.99).unwrap_or(0.0),
        );
        println!("  at {size} cards: p50 {p50:.2} ms, p99 {p99:.2} ms");
        medians.push(p50);
    }
    let ratio = medians[1] / medians[0];
    println!(
        "\nratio p50 at {large} cards / at {small}: {ratio:.2}x (target <= 1.5x: {})",
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );
    drop(service);
    if let Some(url) = &settings.database_url {
        d1_scratch::drop_all(url, "d1b_").await?;
    }
    Ok(())
}

/// The service's JWE recipient, from its published keys.
async fn recipient(service: &Service) -> anyhow::Result<Recipient> {
    let jwks: serde_json::Value =
        reqwest::get(format!("http://{}/.well-known/jwks.json", service.addr))
            .await?
            .json()
            .await?;
    Recipient::from_jwks(&jwks)
}

/// Registers the cards `from..to`, each with its consumer registered first, with PI.
async fn store_cards(
    service: &Service,
    token: &str,
    recipient: &Recipient,
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let exp = cards::expiry();
    let (mut consumers, mut cards) = (Vec::new(), Vec::new());
    for n in from..to {
        let request = cards::request(recipient, usize::try_from(n)? * 2, &exp)?;
        consumers.extend(request.consumer);
        cards.push(request.card);
    }
    for (what, requests) in [("consumers", consumers), ("cards", cards)] {
        let work = Work::Prepared(std::sync::Arc::new(Prepared::new(requests)));
        let stats = crate::load::run(
            std::slice::from_ref(&service.addr),
            token,
            32,
            Duration::from_secs(24 * 3600),
            &work,
        )
        .await?;
        if stats.non_2xx > 0 {
            bail!("{} of the {what} were not registered", stats.non_2xx);
        }
    }
    println!(
        "stored cards {from}..{to} with their consumers in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A signed-in operator's session: its cookie and CSRF token.
struct Session {
    base: String,
    cookie: String,
    csrf: String,
}

fn csrf_of(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker)? + marker.len();
    Some(html[at..at + html[at..].find('"')?].to_owned())
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

impl Session {
    async fn sign_in(addr: &str) -> anyhow::Result<Self> {
        let base = format!("http://{addr}/portal");
        let http = client()?;
        let page = http.get(format!("{base}/sign-in")).send().await?;
        let pre = cookies(&page);
        let csrf = csrf_of(&page.text().await?).context("no CSRF field on the sign-in page")?;
        let answer = http
            .post(format!("{base}/sign-in"))
            .header(COOKIE, &pre)
            .form(&[
                ("username", OPERATOR),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ])
            .send()
            .await?;
        let cookie = cookies(&answer);
        if !cookie.contains("d1_portal=") {
            bail!("sign-in answered {} without a session", answer.status());
        }
        let home = http
            .get(format!("{base}/"))
            .header(COOKIE, &cookie)
            .send()
            .await?
            .text()
            .await?;
        let csrf = csrf_of(&home).context("no CSRF field on the home page")?;
        Ok(Self { base, cookie, csrf })
    }

    /// Searches and opens pages for `duration` on [`CONNECTIONS`] connections, each step a
    /// PAN drawn from the `stored` cards; a step that does not end on a 200 page counts as
    /// non-2xx.
    async fn steps(&self, stored: u64, duration: Duration) -> anyhow::Result<RunStats> {
        let started = Instant::now();
        let deadline = started + duration;
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (base, cookie, csrf) =
                    (self.base.clone(), self.cookie.clone(), self.csrf.clone());
                tokio::spawn(async move {
                    let http = client()?;
                    let mut stats = RunStats::default();
                    while Instant::now() < deadline {
                        let n = rand::Rng::gen_range(&mut rand::thread_rng(), 0..stored);
                        let pan = cards::pan(usize::try_from(n)? * 2);
                        let step = Instant::now();
                        let found = http
                            .post(format!("{base}/search"))
                            .header(COOKIE, &cookie)
                            .form(&[("q", pan.digits()), ("csrf", csrf.as_str())])
                            .send()
                            .await?;
                        let ok = match found.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
                            Some(page) if found.status() == 303 => {
                                let page = http
                                    .get(format!("{}{page}", base.trim_end_matches("/portal")))
                                    .header(COOKIE, &cookie)
                                    .send()
                                    .await?;
                                let status = page.status();
                                page.bytes().await?;
                                status == 200
                            }
                            _ => false,
                        };
                        stats
                            .latencies_us
                            .push(u32::try_from(step.elapsed().as_micros()).unwrap_or(u32::MAX));
                        stats.completed += 1;
                        stats.non_2xx += u64::from(!ok);
                    }
                    anyhow::Ok(stats)
                })
            })
            .collect();
        let mut total = RunStats::default();
        for task in tasks {
            total.absorb(task.await??);
        }
        total.elapsed = started.elapsed();
        Ok(total)
    }
}

/// The `name=value` pairs an answer sets, as one Cookie header.
fn cookies(answer: &reqwest::Response) -> String {
    answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}
