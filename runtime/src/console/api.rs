//! The console's JSON API under `/api/v1/`, described by `/api/openapi.json`; the page uses
//! nothing else.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::auth::{proof, refuse, same_origin, Peer};
use super::session::{COOKIE, LIFETIME_SECS};
use super::{password, unix_secs, Shared};
use crate::pair::daemon::control::{self, Request};

/// How often the event stream looks for a change.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// The longest the event stream stays quiet.
pub const TICK: Duration = Duration::from_secs(2);

pub const OPENAPI: &str = include_str!("openapi.json");

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The console's certificate (what the TLS handshake shows, as a file for `--pair-cert`).
pub async fn certificate(State(c): State<Shared>) -> Response {
    let pem: String = c.tls.now().cert.iter().map(|d| super::certificate::pem(d.as_ref())).collect();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
}

/// The operator's own certificate (chain and key, PEM), checked, in the pair's document (on the
/// primary); both nodes present it within seconds.
pub async fn upload_certificate(
    State(c): State<Shared>,
    Json(t): Json<pairos_mirror::document::UploadedTls>,
) -> Response {
    if let Err(e) = super::tls::check(&t) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}"));
    }
    set_certificate(&c, Some(t)).await
}

/// Back to the pair's own (derived) certificate.
pub async fn own_certificate(State(c): State<Shared>) -> Response {
    set_certificate(&c, None).await
}

async fn set_certificate(c: &Shared, t: Option<pairos_mirror::document::UploadedTls>) -> Response {
    let (state_dir, run_dir) = (c.sources.state_dir.clone(), c.sources.run_dir.clone());
    let uploaded = t.is_some();
    let done = tokio::task::spawn_blocking(move || {
        super::change_settings(&state_dir, &run_dir, "the console's certificate is changed", |console| {
            console.tls = t;
            Ok(())
        })
    })
    .await;
    match done {
        Ok(Ok(())) => Json(serde_json::json!({ "uploaded": uploaded })).into_response(),
        Ok(Err(e)) => refuse(StatusCode::CONFLICT, format!("{e:#}")),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn metrics(State(c): State<Shared>) -> Response {
    let text = super::metrics::render(&c.snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Whether the caller is logged in, and whether a password is set at all (none: the page asks
/// for one).
pub async fn session_get(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let token = proof(&headers).map(|p| p.token().to_owned());
    let live = token.as_deref().filter(|t| c.sessions.check(t, unix_secs()).is_some());
    Json(serde_json::json!({
        "logged_in": live.is_some(),
        "csrf": live.map(|t| c.sessions.csrf(t)),
        "password_set": c.password_hash().is_some(),
        "fingerprint": c.fingerprint(),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    password: String,
}

/// A new session: the cookie for the page, and the token in the body for a script.
fn logged_in(c: &Shared) -> Response {
    let token = match c.sessions.issue(unix_secs()) {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot make a session: {e}")),
    };
    let cookie =
        format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECS}");
    let body =
        serde_json::json!({ "token": token, "csrf": c.sessions.csrf(&token), "expires_in": LIFETIME_SECS });
    ([(header::SET_COOKIE, cookie)], Json(body)).into_response()
}

pub async fn login(
    State(c): State<Shared>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    Json(l): Json<Login>,
) -> Response {
    if !same_origin(&headers) {
        return refuse(StatusCode::FORBIDDEN, "a cross-site login: refused");
    }
    let ip = peer.ip();
    if let Some(wait) = c.throttle.lock().expect("not poisoned").wait(ip, Instant::now()) {
        let secs = wait.as_secs().max(1);
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins from {ip}: try again in {secs} s"),
        );
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        return r;
    }
    let Some(hash) = c.password_hash() else {
        return refuse(StatusCode::CONFLICT, "no password is set yet: set one first (POST /api/v1/password)");
    };
    let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &l.password)).await.unwrap_or(false);
    if !ok {
        c.throttle.lock().expect("not poisoned").failed(ip, Instant::now());
        return refuse(StatusCode::UNAUTHORIZED, "wrong password");
    }
    c.throttle.lock().expect("not poisoned").succeeded(ip);
    logged_in(&c)
}

pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Json(serde_json::json!({ "logged_out": true }))).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

/// The first password (the console's first login); only while none is set, and only on the
/// primary, whose document the peer follows. Later changes are `pairos console password` on a
/// node's shell.
pub async fn first_password(
    State(c): State<Shared>,
    headers: HeaderMap,
    Json(p): Json<NewPassword>,
) -> Response {
    if !same_origin(&headers) {
        return refuse(StatusCode::FORBIDDEN, "a cross-site request: refused");
    }
    if c.password_hash().is_some() {
        return refuse(StatusCode::CONFLICT, "a password is set already: log in");
    }
    if let Some(why) = password::refuse(&p.password) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    let (state_dir, run_dir) = (c.sources.state_dir.clone(), c.sources.run_dir.clone());
    let set =
        tokio::task::spawn_blocking(move || super::password::set(&state_dir, &run_dir, &p.password, false))
            .await;
    match set {
        Ok(Ok(())) => logged_in(&c),
        Ok(Err(e)) => refuse(StatusCode::CONFLICT, format!("{e:#}")),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// This node's own parts, for its peer's console.
pub async fn node(State(c): State<Shared>) -> Response {
    Json(c.sources.parts()).into_response()
}

pub async fn state(State(c): State<Shared>) -> Response {
    Json(c.snapshot()).into_response()
}

/// Server-sent events: the whole state as event `state` at once and on every change, and a
/// `tick` at least every [`TICK`]: a page that hears nothing for longer knows its connection
/// died with the node that served it (a TCP connection to a node that lost its power is not
/// closed: nothing tells the browser) and connects again, to whichever node holds the address.
pub async fn events(
    State(c): State<Shared>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let stream =
        futures_util::stream::unfold((c, String::new(), Instant::now()), |(c, last, sent)| async move {
            loop {
                let text = serde_json::to_string(&c.snapshot()).unwrap_or_default();
                if text != last {
                    let event = Event::default().event("state").data(text.clone());
                    return Some((Ok(event), (c, text, Instant::now())));
                }
                if sent.elapsed() >= TICK {
                    let event = Event::default().event("tick").data(unix_secs().to_string());
                    return Some((Ok(event), (c, last, Instant::now())));
                }
                tokio::time::sleep(LOOK_EVERY).await;
            }
        });
    Sse::new(stream)
}

pub async fn acknowledge(State(c): State<Shared>, Path(id): Path<String>) -> Response {
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(StatusCode::BAD_REQUEST, format!("{id:?} is not an alarm id (12 hexadecimal digits)"));
    }
    if !c.snapshot().alarms.iter().any(|a| a.id == id) {
        return refuse(StatusCode::NOT_FOUND, format!("no alarm {id} now"));
    }
    match c.acks.add(&id) {
        Ok(()) => Json(serde_json::json!({ "acknowledged": id })).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

/// One question to the daemon at a time: the client socket is named after this process.
static ASKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Asks the pair daemon, as `pairos pair ...` does.
async fn ask(c: &Shared, request: Request) -> Response {
    let run_dir = c.sources.run_dir.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let _one = ASKING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        control::ask(&run_dir, request)
    })
    .await;
    match answer {
        Ok(Ok(Ok(said))) => Json(serde_json::json!({ "done": said })).into_response(),
        Ok(Ok(Err(why))) => refuse(StatusCode::CONFLICT, why),
        Ok(Err(e)) => {
            refuse(StatusCode::SERVICE_UNAVAILABLE, format!("the pair daemon does not answer: {e:#}"))
        }
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn switchover(State(c): State<Shared>) -> Response {
    ask(&c, Request::Switchover).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    on: bool,
}

pub async fn maintenance(State(c): State<Shared>, Json(m): Json<Maintenance>) -> Response {
    ask(&c, Request::Maintenance(m.on)).await
}
