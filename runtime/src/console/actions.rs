//! The page's actions beyond the pair daemon's (switchover and maintenance are in [`super::api`]):
//! add a volume, add a workload, approve an enrolment, and a workload's log. Each runs what the
//! `pairos` command runs for it, on the primary, and answers with what happened or why not.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::refuse;
use super::Shared;

/// Runs `work` off the async threads; its error is the refusal.
async fn blocking<T: serde::Serialize + Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVolume {
    name: String,
    /// `256M`, `2G`...
    size: String,
}

pub async fn add_volume(State(c): State<Shared>, Json(v): Json<NewVolume>) -> Response {
    let (state, run) = (c.sources.state_dir.clone(), c.sources.run_dir.clone());
    blocking(move || crate::volumes::create::create(&state, &run, &v.name, &v.size)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkload {
    /// The definition, TOML, as `pairos workload example` shows it.
    definition: String,
    #[serde(default)]
    replace: bool,
}

pub async fn add_workload(State(c): State<Shared>, Json(w): Json<NewWorkload>) -> Response {
    let (state, run) = (c.sources.state_dir.clone(), c.sources.run_dir.clone());
    blocking(move || {
        let (name, version) =
            crate::workloads::define::define(&state, &run, &w.definition, "the definition", w.replace)?;
        Ok(serde_json::json!({ "name": name, "version": version }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    mac: String,
}

pub async fn approve(State(c): State<Shared>, Json(a): Json<Approval>) -> Response {
    let file = c.sources.run_dir.join("approved.json");
    blocking(move || {
        let mac = crate::pair::services::approve(&file, &a.mac)?;
        Ok(serde_json::json!({ "approved": mac }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct Lines {
    lines: Option<usize>,
}

/// The last lines of a workload's log on this node (200 unless asked, at most 5000).
pub async fn workload_log(
    State(c): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<Lines>,
) -> Response {
    let policy = crate::workloads::logs::on_node(&c.sources.state_dir);
    let known = pairos_mirror::document::PairConfig::load(&c.sources.state_dir)
        .is_ok_and(|d| d.workloads.iter().any(|w| w.name == name));
    if !known {
        return refuse(StatusCode::NOT_FOUND, format!("no workload {name:?}"));
    }
    let lines = q.lines.unwrap_or(200).min(5000);
    blocking(move || {
        let lines = crate::workloads::logs::tail(&policy, &name, lines)?;
        Ok(serde_json::json!({ "workload": name, "lines": lines }))
    })
    .await
}
