//! Who may call the API: a request carries a session (the cookie the page got at login, or the
//! same token as `Authorization: Bearer` from a script or the CLI). A change made with the
//! cookie must also carry the session's CSRF token in `X-Pairos-CSRF` and, when the browser
//! says where the request comes from (`Origin`), come from the console itself: a page of
//! another site can make a browser send the cookie, never the token.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::session::{self, COOKIE, CSRF_HEADER};
use super::{unix_secs, Shared};

/// The remote address of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// An error as the API returns it: `{"error": "..."}` with a status.
pub fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": why.into() }))).into_response()
}

/// How a request proved its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    Cookie(String),
    Bearer(String),
}

impl Proof {
    pub fn token(&self) -> &str {
        match self {
            Proof::Cookie(t) | Proof::Bearer(t) => t,
        }
    }
}

/// The session token a request carries, if any.
pub fn proof(headers: &HeaderMap) -> Option<Proof> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(Proof::Bearer(bearer.trim().to_owned()));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| session::cookie(v, COOKIE))
        .map(|t| Proof::Cookie(t.to_owned()))
}

/// Whether the browser's `Origin` (when it sent one) is the console's own.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    origin.to_str().is_ok_and(|o| o == format!("https://{host}"))
}

/// Lets a request through only with a live session, and a change made with the cookie only
/// with its CSRF token and from the console's origin.
pub async fn require_session(State(c): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let Some(proof) = proof(headers) else {
        return refuse(StatusCode::UNAUTHORIZED, "log in first: no session");
    };
    if c.sessions.check(proof.token(), unix_secs()).is_none() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the session has expired or is not this pair's: log in again",
        );
    }
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if let (Proof::Cookie(token), false) = (&proof, safe) {
        if !same_origin(headers) {
            return refuse(StatusCode::FORBIDDEN, "a cross-site request: refused");
        }
        let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !c.sessions.csrf_matches(token, csrf) {
            return refuse(StatusCode::FORBIDDEN, format!("no valid {CSRF_HEADER} header: refused"));
        }
    }
    next.run(request).await
}

/// Headers every answer carries: nothing from elsewhere runs in the page, it is never framed,
/// and nothing is sniffed.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = [
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ];
    for (k, v) in set {
        h.insert(k, header::HeaderValue::from_static(v));
    }
    response
}
