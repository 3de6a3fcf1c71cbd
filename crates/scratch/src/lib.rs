//! Scratch schemas: a database of its own for each test or benchmark run, inside one
//! PostgreSQL database, chosen through the connection's `search_path`. Only tests and the
//! benchmark depend on this crate; the service never does.

use tokio_postgres::NoTls;

/// `url` with `search_path` set to `schema`, so that everything the registry creates and
/// reads is in that schema.
#[must_use]
pub fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Creates `schema` in the database at `url`; returns the URL that uses it.
///
/// # Errors
/// If the database cannot be reached or the schema exists.
pub async fn create(url: &str, schema: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "a scratch schema name is lowercase letters, digits and _"
    );
    let client = connect(url).await?;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await?;
    Ok(with_search_path(url, schema))
}

/// Creates a schema named `prefix` and a random suffix; returns the URL that uses it. The
/// first call for a prefix in a process drops what earlier runs left under that prefix.
///
/// # Errors
/// If the database cannot be reached.
pub async fn fresh(url: &str, prefix: &str) -> anyhow::Result<String> {
    static CLEANED: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());
    {
        let mut cleaned = CLEANED.lock().await;
        if !cleaned.iter().any(|p| p == prefix) {
            drop_all(url, prefix).await?;
            cleaned.push(prefix.to_owned());
        }
    }
    create(url, &format!("{prefix}{}", uuid::Uuid::new_v4().simple())).await
}

/// Drops every schema whose name starts with `prefix`: what earlier runs left behind.
///
/// # Errors
/// If the database cannot be reached.
pub async fn drop_all(url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = connect(url).await?;
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
            &[&pattern],
        )
        .await?;
    for row in rows {
        let name: &str = row.try_get(0)?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .await?;
    }
    Ok(())
}

/// A plain connection, its driver task spawned.
///
/// # Errors
/// If the database cannot be reached.
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // The connection ends with the client; its error, if any, shows in the next query.
        let _ = connection.await;
    });
    Ok(client)
}
