//! `write-checker`: writes rows through the pair's address and proves none that was
//! acknowledged is lost (see [`pairos_lab::write_checker`]). Its arguments only; the library
//! does the work.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pairos_lab::write_checker::{history, load, read_back, verdict, TABLE};

#[derive(Parser, Debug)]
#[command(
    name = "write-checker",
    about = "Write rows through the pair's address, then prove no acknowledged write was lost",
    long_about = "Write rows through the pair's address, one transaction each at a steady rate, \
                  recording every attempt and answer in a history (JSON lines); then read the table \
                  back and judge: acknowledged rows lost, duplicated, unknown or changed must all be 0. \
                  Exit codes: 0 the verdict holds, 1 it failed, 2 the checker could not do its work."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make the checker's table if it is not there.
    Setup {
        /// Connection settings, libpq style: "host=… port=… user=… password=… dbname=…".
        #[arg(long)]
        target: String,
    },
    /// Write rows until --seconds pass or the checker is stopped; every event goes to the history.
    Run {
        /// Connection settings, libpq style: "host=… port=… user=… password=… dbname=…".
        #[arg(long)]
        target: String,
        /// The history file (appended to).
        #[arg(long, value_name = "FILE")]
        history: PathBuf,
        /// Inserts per second.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        rate: u32,
        /// Stop after this many seconds (default: run until stopped).
        #[arg(long)]
        seconds: Option<u64>,
        /// The first row id (a second run on the same table starts above the first's).
        #[arg(long, default_value_t = 1)]
        first_id: u64,
    },
    /// Read the table back into the history, then judge the history.
    Check {
        /// Connection settings, libpq style: "host=… port=… user=… password=… dbname=…".
        #[arg(long)]
        target: String,
        /// The history file the run wrote.
        #[arg(long, value_name = "FILE")]
        history: PathBuf,
        /// How long to keep trying to connect (the pair may still be settling), in seconds.
        #[arg(long, default_value_t = 120)]
        wait: u64,
        /// List pauses in acknowledgements longer than this, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        gap_ms: u64,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Judge a history again, from the file alone (it must hold a read-back).
    Verify {
        /// The history file.
        #[arg(long, value_name = "FILE")]
        history: PathBuf,
        /// List pauses in acknowledgements longer than this, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        gap_ms: u64,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("write-checker: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    use anyhow::Context;
    match cli.command {
        Command::Setup { target } => {
            let mut client = load::config(&target)?.connect(postgres::NoTls).context("connecting")?;
            client.batch_execute(TABLE).context("making the table")?;
            eprintln!("write-checker: table rows is ready");
            Ok(true)
        }
        Command::Run { target, history: path, rate, seconds, first_id } => {
            let mut history = history::HistoryWriter::open(&path)
                .with_context(|| format!("opening the history {}", path.display()))?;
            let plan = load::LoadPlan { target, rate, duration: seconds.map(Duration::from_secs), first_id };
            let mut shown = 0;
            let acked = load::run(&plan, &mut history, |sent, acked| {
                if sent >= shown + 5 * u64::from(rate) {
                    eprintln!("write-checker: sent {sent}, acknowledged {acked}");
                    shown = sent;
                }
            })?;
            eprintln!("write-checker: done: {acked} rows acknowledged; history {}", path.display());
            Ok(true)
        }
        Command::Check { target, history: path, wait, gap_ms, json } => {
            let event = read_back::read_back(&target, Duration::from_secs(wait))?;
            history::HistoryWriter::open(&path)
                .and_then(|mut h| h.record(&event))
                .with_context(|| format!("adding the read-back to {}", path.display()))?;
            report(&path, gap_ms, json)
        }
        Command::Verify { history: path, gap_ms, json } => report(&path, gap_ms, json),
    }
}

fn report(path: &std::path::Path, gap_ms: u64, json: bool) -> anyhow::Result<bool> {
    let verdict = verdict::judge(&history::read(path)?, gap_ms);
    if json {
        let mut value = serde_json::to_value(&verdict)?;
        value["ok"] = verdict.ok().into();
        println!("{value}");
    } else {
        println!("{}", verdict.summary());
    }
    Ok(verdict.ok())
}
