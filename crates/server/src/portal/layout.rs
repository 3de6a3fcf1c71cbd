//! The look every page shares: the document, the header bar (operator, role, search box,
//! sign-out), notices and state badges, and the pages that say no (404, 403, 500).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// Who is signed in, as the header bar shows them.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The portal's base path, such as `/portal`.
    pub base: String,
    /// The signed-in operator's name, role and session CSRF token; `None` on sign-in pages.
    pub operator: Option<SignedIn>,
}

/// The header bar's view of a signed-in operator.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub username: String,
    pub role: &'static str,
    pub csrf: String,
    /// Whether the operators and audit links are shown.
    pub admin: bool,
}

/// An HTML page with its status.
pub struct Page {
    pub status: StatusCode,
    pub markup: Markup,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.markup.into_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}

impl Chrome {
    /// A link under the portal's base path.
    #[must_use]
    pub fn href(&self, rest: &str) -> String {
        format!("{}{rest}", self.base)
    }

    /// The hidden CSRF field of a form, with the session's token.
    #[must_use]
    pub fn csrf_field(&self) -> Markup {
        let token = self.operator.as_ref().map_or("", |o| o.csrf.as_str());
        html! { input type="hidden" name="csrf" value=(token); }
    }

    /// A whole page: `title`, the header bar and `body`.
    #[must_use]
    pub fn page(&self, status: StatusCode, title: &str, body: &Markup) -> Page {
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · D1 registry portal" }
                    link rel="stylesheet" href=(self.href("/static/portal.css"));
                }
                body {
                    (self.bar())
                    main { (body) }
                }
            }
        };
        Page { status, markup }
    }

    fn bar(&self) -> Markup {
        html! {
            header.bar {
                a.brand href=(self.href("/")) { "D1 registry · portal" }
                @if let Some(op) = &self.operator {
                    form #search method="post" action=(self.href("/search")) role="search" {
                        (self.csrf_field())
                        input type="search" name="q" required
                            placeholder="PAN, cardId or consumerId" aria-label="Search"
                            autocomplete="off";
                        " "
                        button.quiet type="submit" { "Search" }
                    }
                    @if op.admin {
                        nav {
                            a href=(self.href("/operators")) { "Operators" }
                            a href=(self.href("/audit")) { "Audit trail" }
                        }
                    }
                    div.who {
                        span #operator { (op.username) " · " span #role { (op.role) } }
                        form #sign-out method="post" action=(self.href("/sign-out")) {
                            (self.csrf_field())
                            button.quiet type="submit" { "Sign out" }
                        }
                    }
                }
            }
        }
    }

    /// The one "not found" page: unknown, and outside the operator's issuers, alike.
    #[must_use]
    pub fn not_found(&self) -> Page {
        self.page(
            StatusCode::NOT_FOUND,
            "Not found",
            &html! {
                section.panel #not-found {
                    h1 { "Not found" }
                    p { "Nothing matches, or it is not in your organization's issuers." }
                    p { a href=(self.href("/")) { "Back to the search" } }
                }
            },
        )
    }

    /// A refusal: the operator's role does not allow it, or the form's CSRF token is wrong.
    #[must_use]
    pub fn forbidden(&self, why: &str) -> Page {
        self.page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &html! {
                section.panel #forbidden {
                    h1 { "Not allowed" }
                    p { (why) }
                    p { a href=(self.href("/")) { "Back to the search" } }
                }
            },
        )
    }
}

/// A notice box: `kind` is `ok`, `error` or `info`.
#[must_use]
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { div class={ "notice " (kind) } role="status" { (text) } }
}

/// A state badge (`ACTIVE`, `SUSPENDED`, …), coloured by state.
#[must_use]
pub fn badge(state: &str) -> Markup {
    let class = match state {
        "ACTIVE" | "SUCCESSFUL" => "active",
        "SUSPENDED" => "suspended",
        "INACTIVE" => "inactive",
        "PENDING" => "pending",
        "DELETED" => "deleted",
        "REPLACED" => "replaced",
        "FAILED" | "DEAD" => "failed",
        _ => "other",
    };
    html! { span class={ "badge " (class) } { (state) } }
}

/// A time in milliseconds since the epoch, as RFC 3339 UTC to the second.
#[must_use]
pub fn time(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.format(&format).unwrap_or_default()
}

fn bare(base: &str) -> Chrome {
    Chrome {
        base: base.to_owned(),
        operator: None,
    }
}

/// The page of a failure the operator cannot fix; its cause is logged, never shown.
#[must_use]
pub fn internal_error(base: &str) -> Page {
    bare(base).page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        &html! {
            section.panel #error {
                h1 { "Something went wrong" }
                p { "The portal could not do this. Try again in a moment." }
            }
        },
    )
}

/// The page of a request that ran over the server's request timeout.
#[must_use]
pub fn unavailable(base: &str) -> Page {
    bare(base).page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        &html! {
            section.panel #error {
                h1 { "Try again" }
                p { "The portal took too long to answer." }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc_to_the_second() {
        assert_eq!(time(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = bare("/portal").forbidden("<script>x</script>");
        let text = page.markup.into_string();
        assert!(!text.contains("<script>"), "{text}");
        assert!(text.contains("&lt;script&gt;"));
    }
}
