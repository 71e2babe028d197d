//! The API's alarm destinations: `/api/v1/alarm-destinations` (read, replace) and its `test`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pairos_mirror::document::AlarmDestinations;

use super::auth::refuse;
use super::{unix_secs, Shared};

/// The destinations with their secrets left out (the mail password is never shown again).
fn redacted(mut d: AlarmDestinations) -> AlarmDestinations {
    if let Some(m) = d.mail.as_mut() {
        m.password = m.password.as_ref().map(|_| "(set)".into());
    }
    d
}

pub async fn get(State(c): State<Shared>) -> Response {
    Json(redacted(c.settings().alarms)).into_response()
}

/// Replaces the destinations (on the primary); a mail password left out or `(set)` keeps the
/// one there is.
pub async fn put(State(c): State<Shared>, Json(mut d): Json<AlarmDestinations>) -> Response {
    let old = c.settings().alarms;
    if let (Some(m), Some(o)) = (d.mail.as_mut(), old.mail.as_ref()) {
        if m.password.is_none() || m.password.as_deref() == Some("(set)") {
            m.password.clone_from(&o.password);
        }
    }
    if let Some(why) = super::alarms::refuse(&d) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    let (state_dir, run_dir) = (c.sources.state_dir.clone(), c.sources.run_dir.clone());
    let saved = d.clone();
    let done = tokio::task::spawn_blocking(move || {
        super::change_settings(&state_dir, &run_dir, "where alarms go is changed", |console| {
            console.alarms = saved;
            Ok(())
        })
    })
    .await;
    match done {
        Ok(Ok(())) => Json(redacted(d)).into_response(),
        Ok(Err(e)) => refuse(StatusCode::CONFLICT, format!("{e:#}")),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Sends a test alarm to every destination now and says how each went.
pub async fn test(State(c): State<Shared>) -> Response {
    let destinations = super::alarms::Destination::all(&c.settings().alarms);
    if destinations.is_empty() {
        return refuse(StatusCode::CONFLICT, "no alarm destinations are set");
    }
    let notice = super::alarms::Notice {
        id: "test".into(),
        severity: "test".into(),
        pair: c.pair_id.clone(),
        node: c.snapshot().served_by,
        text: "a test alarm from the pairos console".into(),
        time: unix_secs(),
    };
    let results = tokio::task::spawn_blocking(move || {
        destinations
            .iter()
            .map(|d| {
                let r = d.send(&notice);
                serde_json::json!({ "destination": d.name(), "sent": r.is_ok(), "error": r.err() })
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    Json(serde_json::json!({ "results": results })).into_response()
}
