//! Reading the table back once the pair has settled: every row's id, and the ids whose value
//! is not the checker's. The server may still be starting (a failover, a recovery), so the
//! first connection is retried until a deadline.

use std::time::{Duration, Instant};

use postgres::NoTls;

use super::history::{now_ms, value_of, Event};
use super::load::config;

/// Reads the table through `target`, trying to connect for up to `wait`.
pub fn read_back(target: &str, wait: Duration) -> Result<Event, anyhow::Error> {
    use anyhow::Context;
    let config = config(target)?;
    let start = Instant::now();
    let mut client = loop {
        match config.connect(NoTls) {
            Ok(c) => break c,
            Err(e) if start.elapsed() < wait => {
                tracing::debug!("read-back: {e}; trying again");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading the table back: no connection within {} s", wait.as_secs())
                })
            }
        }
    };
    let began_ms = now_ms();
    let rows = client
        .query("SELECT id, val FROM rows ORDER BY id", &[])
        .context("reading the table back (SELECT id, val FROM rows)")?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut wrong_values = Vec::new();
    for row in rows {
        let (id, val): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        let id = u64::try_from(id).with_context(|| format!("row id {id} is negative: not the checker's"))?;
        if val != value_of(id) {
            wrong_values.push(id);
        }
        ids.push(id);
    }
    Ok(Event::ReadBack { at_ms: now_ms(), began_ms: Some(began_ms), ids, wrong_values })
}
