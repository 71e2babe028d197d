//! The peer side: an HTTP service on the private link that serves this node's image to a
//! recovering peer, hands it its node configuration, and takes its reports. The routes are
//! listed in [`crate::peer`]. The image comes from any [`ImageSource`]; the pair runtime
//! gives it the node's own disk ([`crate::own_image::OwnImage`]), which checks every chunk
//! against the signed manifest before it is served.
//!
//! The service takes a listener its caller made (the runtime binds it to the private-link
//! interface with SO_BINDTODEVICE), so nothing here chooses where it answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pairos_image::manifest::CHUNK;

use crate::peer::{Denied, EnrolAnswer, EnrolRequest, NewcomerConfig, Report};
use crate::source::ImageSource;

/// What the service asks of the pair runtime, which decides who is believed. `token` is the
/// bearer token the request carried, if any.
pub trait PeerHooks: Send + Sync + 'static {
    /// A newcomer asks to join the pair.
    fn enrol(&self, from: SocketAddr, mac: &str) -> Result<EnrolAnswer, Denied>;
    /// The enrolled newcomer asks for its identity and the pair key.
    fn node_config(&self, from: SocketAddr, token: Option<&str>, mac: &str)
        -> Result<NewcomerConfig, Denied>;
    /// A recovering node's report.
    fn report(&self, from: SocketAddr, token: Option<&str>, report: Report) -> Result<(), Denied>;
    /// The pair's configuration document as this node holds it, and its tag under the pair
    /// key (hex), for the peer to compare with its own.
    fn pair_config(&self) -> Result<(Vec<u8>, String), Denied> {
        Err(Denied::new(404, "this node serves no pair configuration"))
    }
    /// How this node's workloads run, and its tag under the pair key (hex).
    fn pair_workloads(&self) -> Result<(Vec<u8>, String), Denied> {
        Err(Denied::new(404, "this node runs no workloads"))
    }
}

/// The largest enrolment request or report taken: a report's message is a line for a log.
const MAX_BODY: usize = 4096;
/// Chunks read and hashed at once for requests: a flood of small ranges queues here instead of
/// taking every core.
const CONCURRENT_READS: usize = 4;

#[derive(Clone)]
struct Shared {
    image: Arc<dyn ImageSource>,
    size: u64,
    hooks: Arc<dyn PeerHooks>,
    reads: Arc<tokio::sync::Semaphore>,
}

/// The routes, for [`serve`] or a test.
pub fn router(image: Arc<dyn ImageSource>, size: u64, hooks: Arc<dyn PeerHooks>) -> Router {
    let reads = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS));
    Router::new()
        .route("/image/manifest.json", get(small_file))
        .route("/image/manifest.sig", get(small_file))
        .route("/image/disk.raw", get(disk))
        .route("/enrol", post(enrol))
        .route("/node/config", get(node_config))
        .route("/node/report", post(report))
        .route("/pair/config", get(pair_config))
        .route("/pair/workloads", get(pair_workloads))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Shared { image, size, hooks, reads })
}

/// Serves `router` on `listener` until `stop` is set.
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let stopped = async move {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stopped)
        .await
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], text.into()).into_response()
}

async fn small_file(State(s): State<Shared>, uri: axum::http::Uri) -> Response {
    let name = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    match tokio::task::spawn_blocking(move || s.image.file(&name)).await {
        Ok(Ok(bytes)) => bytes.into_response(),
        Ok(Err(e)) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The byte range a `Range` header asks for, within `size`: `Ok(None)` means the whole file
/// (no header, or one this service does not take, such as several ranges, which HTTP allows
/// a server to ignore); `Err` means the range cannot be satisfied.
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(first), Ok(last)) if first <= last => (first, last.min(size.saturating_sub(1))),
        (Ok(first), Err(_)) if b.is_empty() => (first, size.saturating_sub(1)),
        (Err(_), Ok(suffix)) if a.is_empty() && suffix > 0 => (size.saturating_sub(suffix), size - 1),
        _ => return Ok(None),
    };
    if range.0 >= size {
        return Err(());
    }
    Ok(Some(range))
}

async fn disk(State(s): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    let size = s.size;
    let (status, first, last) = match requested_range(&headers, size) {
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ok(None) => (StatusCode::OK, 0, size - 1),
        Err(()) => {
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{size}"))])
                .into_response()
        }
    };
    let length = last + 1 - first;
    let mut builder = Response::builder()
        .status(status)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, length);
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{size}"));
    }
    if method == Method::HEAD {
        return builder.body(Body::empty()).expect("a valid response");
    }
    // The body is read in pieces of at most one chunk, each checked by the source.
    let pieces = futures_util::stream::unfold((first, last + 1), move |(at, end)| {
        let (image, reads) = (s.image.clone(), s.reads.clone());
        async move {
            if at >= end {
                return None;
            }
            let len = (end - at).min(CHUNK);
            let permit = reads.acquire_owned().await;
            let read = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                image.disk_range(at, len)
            })
            .await;
            let piece = match read {
                Ok(Ok(bytes)) => Ok(Bytes::from(bytes)),
                Ok(Err(e)) => Err(std::io::Error::other(e.to_string())),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            // After a failed piece the stream ends: the client sees a short body.
            let next = if piece.is_ok() { at + len } else { end };
            Some((piece, (next, end)))
        }
    });
    builder.body(Body::from_stream(pieces)).expect("a valid response")
}

#[derive(serde::Deserialize)]
struct MacQuery {
    mac: String,
}

fn denied(d: Denied) -> Response {
    plain(StatusCode::from_u16(d.status).unwrap_or(StatusCode::FORBIDDEN), d.message)
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

async fn enrol(State(s): State<Shared>, ConnectInfo(from): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    match serde_json::from_slice::<EnrolRequest>(&body) {
        Ok(r) => match s.hooks.enrol(from, &r.mac) {
            Ok(answer) => axum::Json(answer).into_response(),
            Err(d) => denied(d),
        },
        Err(e) => plain(StatusCode::BAD_REQUEST, format!("expected {{\"mac\": \"..\"}} in JSON: {e}")),
    }
}

async fn node_config(
    State(s): State<Shared>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<MacQuery>,
) -> Response {
    match s.hooks.node_config(from, bearer(&headers), &q.mac) {
        Ok(config) => axum::Json(config).into_response(),
        Err(d) => denied(d),
    }
}

async fn pair_config(State(s): State<Shared>) -> Response {
    tagged(s.hooks.pair_config())
}

async fn pair_workloads(State(s): State<Shared>) -> Response {
    tagged(s.hooks.pair_workloads())
}

/// A JSON document with its tag in [`crate::peer::TAG_HEADER`].
fn tagged(document: Result<(Vec<u8>, String), Denied>) -> Response {
    match document {
        Ok((body, tag)) => {
            ([(header::CONTENT_TYPE, "application/json")], [(crate::peer::TAG_HEADER, tag)], body)
                .into_response()
        }
        Err(d) => denied(d),
    }
}

async fn report(
    State(s): State<Shared>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<Report>(&body) {
        Ok(r) => match s.hooks.report(from, bearer(&headers), r) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(d) => denied(d),
        },
        Err(e) => plain(StatusCode::BAD_REQUEST, format!("expected a recovery report in JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(h: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, h.parse().expect("header"));
        requested_range(&headers, size)
    }

    #[test]
    fn ranges_are_read_as_http_says() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
        assert_eq!(range("bytes=9-0", 100), Ok(None));
        assert_eq!(requested_range(&HeaderMap::new(), 100), Ok(None));
    }
}
