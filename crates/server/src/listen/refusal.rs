//! What a request head refused below the router is answered with: the refusals the connection
//! wrapper ([`super::guard`]) makes itself (a request line or head too long) and the one it
//! takes over from hyper (a head hyper cannot parse), each in the D1 body of the route group
//! its path is under, as far as the first bytes tell.

/// The longest request line, method and version included: longer is 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// The longest head: longer is 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header lines: more is 431. hyper is set to allow a few more, so this fires first.
pub const MAX_HEADERS: usize = 100;

/// A head refused before hyper parses it, or that hyper could not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    UriTooLong,
    HeadersTooLarge,
    Unparsable,
}

/// How hyper's automatic answer to a head it cannot parse begins: a 400 with no body, which
/// no route sends (each of their 400s carries a D1 body).
const HYPER_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";
const NO_BODY: &[u8] = b"\r\ncontent-length: 0\r\n";

/// Whether `bytes` are hyper's own answer to a head it could not parse.
pub(super) fn is_hypers_400(bytes: &[u8]) -> bool {
    bytes.starts_with(HYPER_400)
        && bytes
            .windows(NO_BODY.len())
            .take_while(|w| !w.starts_with(b"\r\n\r\n"))
            .any(|w| w == NO_BODY)
}

/// The whole answer to a refused head, in the body of the route group its path is under as
/// far as the first bytes tell (contract section 3): the token endpoint's RFC 6749 shape, the
/// v1 body under `/banking/v1` but for Click to Pay, else the v2 body.
pub(super) fn render(refusal: Refusal, prefix: &[u8]) -> Vec<u8> {
    let (status, code, text) = match refusal {
        Refusal::UriTooLong => (
            "414 URI Too Long",
            "URI_TOO_LONG",
            format!("the request line is longer than {MAX_REQUEST_LINE} bytes"),
        ),
        Refusal::HeadersTooLarge => (
            "431 Request Header Fields Too Large",
            "HEADERS_TOO_LARGE",
            format!("the request head is over {MAX_HEAD} bytes or {MAX_HEADERS} header fields"),
        ),
        Refusal::Unparsable => (
            "400 Bad Request",
            "FIELD_INVALID_FORMAT",
            "the request head is not valid HTTP/1.1 (its request line, a header line, \
             Content-Length or Transfer-Encoding)"
                .to_owned(),
        ),
    };
    let line = String::from_utf8_lossy(prefix);
    let path = line.split(' ').nth(1).unwrap_or("");
    let body = if path.starts_with(crate::routes::token::TOKEN_PATH) {
        serde_json::json!({"error": "invalid_request", "error_description": text})
    } else if path.starts_with("/banking/v1/")
        && !path.contains(":clickToPayEnrolment")
        && !path.contains("/operations/")
    {
        serde_json::json!({"error": format!("{code}: {text}")})
    } else {
        serde_json::json!({"errorCode": code, "error": text})
    };
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_speaks_the_body_of_the_path() {
        let text = |prefix: &str| {
            let bytes = render(Refusal::UriTooLong, prefix.as_bytes());
            String::from_utf8(bytes).unwrap()
        };
        assert!(text("GET /banking/v2/issuers/x").contains(r#""errorCode":"URI_TOO_LONG""#));
        assert!(
            text("PUT /banking/v1/issuers/x/consumers/y").contains(r#"{"error":"URI_TOO_LONG: "#)
        );
        assert!(text("POST /authz/v1/oauth2/token?a").contains(r#""error":"invalid_request""#));
    }

    #[test]
    fn only_hypers_bodiless_400_is_taken_for_its_answer_to_an_unparsable_head() {
        let hypers = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert!(is_hypers_400(hypers));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n";
        assert!(!is_hypers_400(ours));
        // A body that happens to hold the words is not the head.
        let in_body =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 30\r\n\r\n\r\ncontent-length: 0\r\n";
        assert!(!is_hypers_400(in_body));
        assert!(!is_hypers_400(
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
        ));
        let answer = String::from_utf8(render(
            Refusal::Unparsable,
            b"PUT /banking/v1/issuers/x/consumers/y HTTP/1.1",
        ))
        .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains(r#"{"error":"FIELD_INVALID_FORMAT: "#),
            "{answer}"
        );
    }
}
