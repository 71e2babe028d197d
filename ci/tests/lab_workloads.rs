//! Lab: a workload on a mirrored volume, behind the pair's address, that survives its own
//! crash and its node's death. One boot of a pair with BMCs:
//! 1. a volume `www` is made on the primary and synced; a web server (busybox httpd) is
//!    defined on it with a TCP health check;
//! 2. a takes it step by step (promote, check and mount, the address, start, healthy) and the
//!    client reads a page written on the volume through the pair's address;
//! 3. the server is killed on a: restarted there (1 of 2), and serving again; an operator
//!    restarts it (`pairos workload restart`), which spends none of its restarts;
//! 4. a's VM is killed: b fences it, takes the role step by step, and the client reads the
//!    same page from b (the volume's data came over DRBD).

use std::time::{Duration, Instant};

use pairos_lab::image;
use pairos_lab::pair_lab::{PairLab, PairLabOptions, PAIR_ADDRESS};
use pairos_lab::LabError;
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);
const PAGE: &str = "pairos-lab-web-page";

fn run_ok(pair: &mut PairLab, letter: char, command: &str) -> Result<String, LabError> {
    let (code, out) = pair.exec_tagged(letter, command, 5 * MINUTE)?;
    assert_eq!(code, 0, "node {letter}: {command}: {out}");
    Ok(out)
}

/// The page through the pair's address, from the client, if it answers.
fn page(pair: &PairLab) -> Option<String> {
    let url = format!("http://{PAIR_ADDRESS}:8080/index.html");
    pair.client().ns.cmd("curl").args(["-s", "--max-time", "3", &url]).run_text().ok()
}

fn wait_page(pair: &PairLab, within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        if page(pair).is_some_and(|p| p.contains(PAGE)) {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "the page did not come back within {within:?} ({what})");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_workload_moves_with_the_pair_and_its_data_with_it() -> Result<(), LabError> {
    let out = image::default_image()?;
    let opts = PairLabOptions { name: "workloads".into(), image: out, bmcs: true, witness: false };
    let mut pair = PairLab::up(&opts, &mut |msg| eprintln!("lab: {msg}"))?;
    for n in ['a', 'b'] {
        run_ok(&mut pair, n, "dmesg -n 1")?;
    }
    run_ok(&mut pair, 'a', "pairos volume create www 64M")?;
    let start = Instant::now();
    loop {
        let v = pair.json('a', "pairos volume list --json", MINUTE)?;
        if v["volumes"][0]["disk"] == "UpToDate" && v["volumes"][0]["peer_disk"] == "UpToDate" {
            break;
        }
        assert!(start.elapsed() < 5 * MINUTE, "www not in sync: {v}");
        std::thread::sleep(Duration::from_secs(3));
    }

    // A definition with a mistake is refused whole; the good one is taken.
    let (code, said) = pair.exec_tagged('a', "printf 'name = \"web\"\\ncommand = [\"/bin/nothing\"]\\nhealth = { tcp = 8080 }\\n' > /run/bad.toml && pairos workload add /run/bad.toml", MINUTE)?;
    assert!(code == 2 && said.contains("\"/bin/nothing\": no such program"), "{said}");
    let from = pair.console_len('a')?;
    run_ok(
        &mut pair,
        'a',
        "printf '%s\\n' 'name = \"web\"' 'command = [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv/www\"]' \
         'address = true' 'stop_timeout_s = 5' 'volumes = [{ volume = \"www\", mount = \"/srv/www\" }]' \
         'health = { tcp = 8080, interval_s = 1, failures = 2 }' 'restart = { times = 2, within_minutes = 10 }' \
         > /run/web.toml && pairos workload add /run/web.toml",
    )?;
    let line = pair.wait_console('a', from, "workloads: primary, step by step:", 2 * MINUTE)?;
    eprintln!("lab_workloads: a: {line}");
    for step in [
        "promote www",
        "check and mount www on /srv/www",
        "take the pair's address",
        "start web",
        "wait until web is healthy",
    ] {
        assert!(line.contains(step), "{step:?} in {line}");
    }
    assert!(pair.node('a')?.vm.console().text()[from..].contains("volume www was blank: made ext4 on it"));
    run_ok(&mut pair, 'a', &format!("echo {PAGE} > /srv/www/index.html && sync"))?;
    wait_page(&pair, MINUTE, "served by a");

    // The server dies on a: restarted there.
    let list = pair.json('a', "pairos workload list --json", MINUTE)?;
    let pid = list["running"]["workloads"][0]["pid"].as_u64().unwrap_or_else(|| panic!("a pid: {list}"));
    let from = pair.console_len('a')?;
    run_ok(&mut pair, 'a', &format!("kill -9 {pid}"))?;
    pair.wait_console('a', from, "workloads: web failed (it exited", MINUTE)?;
    let line = pair.wait_console('a', from, "restarting it here (1 of 2)", MINUTE)?;
    eprintln!("lab_workloads: a: {line}");
    wait_page(&pair, MINUTE, "restarted on a");
    let list = pair.json('a', "pairos workload list --json", MINUTE)?;
    assert_eq!(list["running"]["workloads"][0]["restarts_left"], 1, "{list}");

    // An operator restarts it: a new process, healthy, and the budget is not spent. On the
    // secondary the command is refused.
    let (code, out) = pair.exec_tagged('b', "pairos workload restart web", MINUTE)?;
    assert!(code != 0 && out.contains("not the primary"), "{out}");
    let old = list["running"]["workloads"][0]["pid"].as_u64();
    let said = pair.json('a', "pairos workload restart web --json", 2 * MINUTE)?;
    assert_eq!(said["state"], "healthy", "{said}");
    assert!(said["pid"].as_u64().is_some() && said["pid"].as_u64() != old, "a new process: {said}");
    wait_page(&pair, MINUTE, "restarted by an operator on a");
    let list = pair.json('a', "pairos workload list --json", MINUTE)?;
    assert_eq!(list["running"]["workloads"][0]["restarts_left"], 1, "{list}");

    // a dies: b fences it and takes the role, and the page comes from b.
    let from = pair.console_len('b')?;
    pair.kill('a')?;
    let gap = wait_page(&pair, 4 * MINUTE, "served by b");
    let line = pair.wait_console('b', from, "workloads: primary, step by step:", MINUTE)?;
    eprintln!("lab_workloads: b: {line}");
    eprintln!("lab_workloads: the page came back {gap:?} after a was killed");
    assert!(!line.contains("was blank"), "b's side of www held a's file system");
    let list: Value = pair.json('b', "pairos workload list --json", MINUTE)?;
    assert_eq!(list["running"]["workloads"][0]["state"], "healthy", "{list}");
    assert!(list["running"]["last_change"].as_array().is_some_and(|s| s.len() >= 5), "{list}");
    Ok(())
}
