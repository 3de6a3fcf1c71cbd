//! The `hostile` scenario: registrations' p99 from the load's connections while thousands of
//! idle keep-alive connections and a few dozen slowloris connections are held open, against
//! the same load without them, in alternating runs (docs/benchmarks.md).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

/// Idle keep-alive connections held open during a hostile run.
pub const IDLE: usize = 5_000;
/// Slowloris connections (one header byte a second) held open during a hostile run.
pub const SLOW: usize = 64;
/// The cap the service runs with in this scenario, above what the run holds open.
pub const MAX_CONNECTIONS: &str = "8192";

/// The connections of one hostile run; dropping it closes them.
pub struct Hostile {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Connections the server closed and that were opened again (slowloris ones at the
    /// header timeout).
    pub reopened: Arc<AtomicUsize>,
}

impl Hostile {
    /// Opens `idle` keep-alive connections (each answered once, then silent) and `slow`
    /// slowloris ones, and returns once every idle one has had its answer.
    pub async fn open(addr: &str, idle: usize, slow: usize) -> anyhow::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let answered = Arc::new(AtomicUsize::new(0));
        let reopened = Arc::new(AtomicUsize::new(0));
        let opening = Arc::new(Semaphore::new(64));
        let mut tasks = Vec::with_capacity(idle + slow);
        for i in 0..idle + slow {
            let (addr, stopped) = (addr.to_owned(), stopped.clone());
            let (answered, reopened, opening) = (
                Arc::clone(&answered),
                Arc::clone(&reopened),
                Arc::clone(&opening),
            );
            tasks.push(tokio::spawn(async move {
                let mut first = true;
                while !*stopped.borrow() {
                    let held = if i < idle {
                        idle_once(&addr, &answered, &opening, first, stopped.clone()).await
                    } else {
                        slowloris_once(&addr, stopped.clone()).await
                    };
                    first = false;
                    if held.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    reopened.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let started = std::time::Instant::now();
        while answered.load(Ordering::Relaxed) < idle {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "only {} of {idle} idle connections were answered in 60 s",
                answered.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reopened.store(0, Ordering::Relaxed);
        Ok(Self {
            stop,
            tasks,
            reopened,
        })
    }

    /// Closes every connection.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// One idle connection: a request, its answer, then silence until the server closes it.
async fn idle_once(
    addr: &str,
    answered: &AtomicUsize,
    opening: &Semaphore,
    first: bool,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut stream = {
        let _turn = opening.acquire().await?;
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: bench\r\n\r\n")
            .await?;
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed before the answer");
        stream
    };
    if first {
        answered.fetch_add(1, Ordering::Relaxed);
    }
    let mut buf = [0u8; 512];
    tokio::select! {
        _ = stream.read(&mut buf) => {}
        _ = stopped.wait_for(|s| *s) => {}
    }
    Ok(())
}

/// One slowloris connection: a request head sent one byte a second, never finished.
async fn slowloris_once(addr: &str, mut stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = b"GET /healthz HTTP/1.1\r\nhost: bench\r\nx-slow: ";
    let mut i = 0usize;
    loop {
        let byte = head.get(i).copied().unwrap_or(b'a');
        i += 1;
        let one = [byte];
        tokio::select! {
            written = stream.write_all(&one) => written?,
            _ = stopped.wait_for(|s| *s) => return Ok(()),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.wait_for(|s| *s) => return Ok(()),
        }
    }
}

/// The scenario: a warm-up, then clean and hostile runs of registrations in turn.
pub fn run(settings: &crate::settings::Settings) -> anyhow::Result<()> {
    use crate::{load, report};
    // Inherited by `serve`: room for the held connections under the cap.
    std::env::set_var("D1__SERVER__MAX_CONNECTIONS", MAX_CONNECTIONS);
    let service = crate::service::Service::start(&settings.binary, None)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let token = runtime.block_on(service.token())?;
    println!(
        "\nservice: {} load connections, {}s warm-up, {} runs of {}s each side; hostile runs hold {IDLE} idle keep-alive and {SLOW} slowloris connections (one header byte a second) open, default header and idle timeouts",
        settings.connections,
        settings.warmup.as_secs(),
        settings.runs,
        settings.duration.as_secs()
    );
    let targets = [service.addr.clone()];
    let work = load::Work::Registrations;
    let load = |duration| {
        runtime.block_on(load::run(
            &targets,
            &token,
            settings.connections,
            duration,
            &work,
        ))
    };
    load(settings.warmup)?;
    let (mut clean, mut hostile) = (Vec::new(), Vec::new());
    for i in 0..settings.runs {
        let stats = load(settings.duration)?;
        report::run_line("clean", i + 1, &stats);
        clean.push(stats);
        let held = runtime.block_on(Hostile::open(&service.addr, IDLE, SLOW))?;
        let stats = load(settings.duration)?;
        report::run_line("hostile", i + 1, &stats);
        println!(
            "    ({} connections reopened during the run after the service closed them)",
            held.reopened.load(Ordering::Relaxed)
        );
        runtime.block_on(held.close());
        hostile.push(stats);
    }
    let (c, h) = (report::summarise(&clean), report::summarise(&hostile));
    let (cp, hp) = (c.p99_ms.unwrap_or(0.0), h.p99_ms.unwrap_or(0.0));
    println!(
        "\nregistrations p99: {cp:.2} ms clean, {hp:.2} ms with {IDLE} idle and {SLOW} slowloris connections open: ratio {:.2}x (target <= 1.5x)",
        hp / cp
    );
    println!(
        "registrations/s: median {:.0} clean, {:.0} hostile; non-2xx {} clean, {} hostile",
        c.median, h.median, c.non_2xx, h.non_2xx
    );
    Ok(())
}
