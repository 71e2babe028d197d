//! The lab's PostgreSQL pair. A pair booted from the image of `ci/specs/postgres.toml` gets the
//! volume `db` and the workload of `ci/specs/postgres-workload.toml`, made on the primary as an
//! operator would (`pairos volume create`, `pairos workload add`). PostgreSQL then answers at
//! the pair's address on [`PORT`] for user, password and database `checker`, with the table
//! `rows` the write checker fills.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::pair_lab::PairLab;
use crate::LabError;

/// The package that makes an image the PostgreSQL image.
pub const PACKAGE: &str = "postgresql-15";
/// The workload's definition.
pub const WORKLOAD: &str = include_str!("../specs/postgres-workload.toml");
/// The volume its data directory lives on, and its size.
pub const VOLUME: (&str, &str) = ("db", "256M");
pub const PORT: u16 = 5432;
/// How long PostgreSQL may take to be healthy the first time (initdb under TCG included).
const FIRST_START: Duration = Duration::from_secs(6 * 60);

/// Whether the image spec at `spec` carries PostgreSQL.
pub fn carries_postgres(spec: &Path) -> Result<bool, LabError> {
    let spec = pairos_image::spec::Spec::load(spec).map_err(|e| LabError::Setup(e.to_string()))?;
    Ok(spec.packages.iter().any(|p| p == PACKAGE))
}

/// Makes the volume and defines the workload on node a (the primary), then waits until
/// PostgreSQL is healthy there. `show` hears each step.
pub fn setup(pair: &mut PairLab, show: &mut dyn FnMut(&str)) -> Result<(), LabError> {
    let (volume, size) = VOLUME;
    show(&format!("PostgreSQL: making the volume {volume} ({size}) on node a"));
    run(pair, &format!("pairos volume create {volume} {size}"))?;
    show("PostgreSQL: defining its workload on node a");
    pair.write_file('a', "/tmp/postgres-workload.toml", WORKLOAD.as_bytes())?;
    run(pair, "pairos workload add /tmp/postgres-workload.toml")?;
    show("PostgreSQL: waiting for it to be healthy on node a (its first start makes the cluster)");
    let start = Instant::now();
    loop {
        let list = pair.json('a', "pairos workload list --json", Duration::from_secs(60))?;
        let state = list["running"]["workloads"]
            .as_array()
            .and_then(|w| w.iter().find(|w| w["name"] == "postgres"))
            .and_then(|w| w["state"].as_str())
            .unwrap_or("not running")
            .to_owned();
        if state == "healthy" {
            show(&format!("PostgreSQL: healthy after {:.0} s", start.elapsed().as_secs_f64()));
            return Ok(());
        }
        if start.elapsed() > FIRST_START || state == "failed" {
            let (_, logs) =
                pair.exec_tagged('a', "pairos workload logs postgres -n 30", Duration::from_secs(60))?;
            return Err(LabError::Setup(format!(
                "PostgreSQL is {state} after {:.0} s; its last lines:\n{logs}",
                start.elapsed().as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

fn run(pair: &mut PairLab, command: &str) -> Result<String, LabError> {
    pair.run('a', command, Duration::from_secs(120))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_a_good_definition_of_the_fixed_interface() {
        let w = pairos_workload::spec::Workload::from_toml(WORKLOAD, "postgres-workload.toml")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((w.name.as_str(), w.user.as_str()), ("postgres", "postgres"));
        let health = w.health.command.as_ref().map(|c| c.join(" ")).unwrap_or_default();
        assert!(health.contains("pg_isready") && health.contains(&format!("-p {PORT}")), "{health}");
        assert_eq!(w.volumes[0].volume, VOLUME.0);
        assert!(w.address, "it answers at the pair's address");
        let script = w.command.join(" ");
        for fixed in
            ["-U checker", "CREATE DATABASE checker", "rows (id bigint primary key, val text not null)"]
        {
            assert!(script.contains(fixed), "{fixed}: {script}");
        }
    }
}
