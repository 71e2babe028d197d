//! The checker's load: rows with unique, increasing ids inserted through the pair's address at
//! a steady, bounded rate, one transaction each, every attempt and answer recorded. A broken
//! connection is reconnected at once (bounded by the connect timeout), and the next id goes on
//! the new one; an id whose answer never came is in doubt and never sent again.

use std::str::FromStr;
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};

use super::history::{now_ms, value_of, Event, HistoryWriter};

/// How long connecting, and an unanswered send, may take before the checker gives up on that
/// connection. Keepalives find a peer that died without a word (a VM killed) within the same.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const KEEPALIVE: Duration = Duration::from_secs(1);
const KEEPALIVE_RETRIES: u32 = 3;

/// What the load does.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// libpq-style connection settings, e.g. `host=192.168.50.10 user=checker password=checker dbname=checker`.
    pub target: String,
    /// Inserts per second.
    pub rate: u32,
    /// How long to write (None: until the process is stopped).
    pub duration: Option<Duration>,
    /// The first id (a later run on the same table starts above the last one).
    pub first_id: u64,
}

/// A connection setting that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("connection settings {target:?}: expected libpq key=value pairs (host=… user=… password=… dbname=…)")]
pub struct BadTarget {
    target: String,
    source: postgres::Error,
}

/// The connection settings with the checker's timeouts and keepalives.
pub fn config(target: &str) -> Result<Config, BadTarget> {
    let mut config =
        Config::from_str(target).map_err(|source| BadTarget { target: target.to_owned(), source })?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_user_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE)
        .keepalives_interval(KEEPALIVE)
        .keepalives_retries(KEEPALIVE_RETRIES);
    Ok(config)
}

/// Runs the load, recording into `history`; returns how many rows were acknowledged.
/// `progress` is called about once a second with (sent, acknowledged).
pub fn run(
    plan: &LoadPlan,
    history: &mut HistoryWriter,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, anyhow::Error> {
    use anyhow::Context;
    let config = config(&plan.target)?;
    let record = |history: &mut HistoryWriter, e: &Event| {
        history.record(e).with_context(|| format!("writing the history {}", history.path().display()))
    };
    record(history, &Event::Started { at_ms: now_ms(), target: redact(&plan.target), rate: plan.rate })?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(plan.rate.max(1)));
    let start = Instant::now();
    let mut next_at = start;
    let mut last_progress = start;
    let (mut id, mut sent, mut acked) = (plan.first_id, 0u64, 0u64);
    let mut client: Option<Client> = None;
    while plan.duration.is_none_or(|d| start.elapsed() < d) {
        // A steady rate: never a burst to catch up after a pause.
        let now = Instant::now();
        if next_at > now {
            std::thread::sleep(next_at - now);
        }
        next_at = next_at.max(Instant::now() - interval) + interval;
        if last_progress.elapsed() >= Duration::from_secs(1) {
            progress(sent, acked);
            last_progress = Instant::now();
        }
        let c = match client.as_mut() {
            Some(c) => c,
            None => match config.connect(NoTls) {
                Ok(c) => client.insert(c),
                Err(e) => {
                    record(history, &Event::Unreachable { at_ms: now_ms(), error: e.to_string() })?;
                    continue;
                }
            },
        };
        record(history, &Event::Sent { at_ms: now_ms(), id })?;
        sent += 1;
        let answer = c.execute("INSERT INTO rows (id, val) VALUES ($1, $2)", &[&(id as i64), &value_of(id)]);
        let event = match answer {
            Ok(_) => {
                acked += 1;
                Event::Acked { at_ms: now_ms(), id }
            }
            // The server answered with an ERROR: the transaction did not commit. (A FATAL, such
            // as a shutdown's, can come after the commit: in doubt.)
            Err(e) if e.as_db_error().is_some_and(|d| d.severity() == "ERROR") => {
                Event::Refused { at_ms: now_ms(), id, error: e.to_string() }
            }
            Err(e) => {
                client = None;
                Event::Unanswered { at_ms: now_ms(), id, error: e.to_string() }
            }
        };
        record(history, &event)?;
        id += 1;
    }
    progress(sent, acked);
    Ok(acked)
}

/// The connection settings without the password, for the history.
pub fn redact(target: &str) -> String {
    target
        .split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=…" } else { kv })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_stays_out_of_the_history_and_bad_settings_are_named() {
        assert_eq!(redact("host=h password=secret dbname=d"), "host=h password=… dbname=d");
        let err =
            format!("{:#}", anyhow::Error::from(config("host=h bogus_key=1").expect_err("an unknown key")));
        assert!(err.contains("connection settings") && err.contains("bogus_key"), "{err}");
    }
}
