//! Failover in the lab under TCG, with IPMI fencing: the lab pair (`ci/lab up`: two OVMF nodes,
//! each with an `ipmi_sim` BMC that is its power) and a client probing the pair's address by
//! ARP every 50 ms. Each run:
//! - the holder's VM is killed: time until the survivor answers for the address (its dead time,
//!   the fence through the dead node's BMC over IPMI, the address taken);
//! - the killed node is powered on through its BMC and rejoins; then a planned switchover:
//!   time from the command until the other node answers, and the longest gap in the answers.
//!
//! Windows of 50 ms in which two MACs answered are counted. Prints Markdown.
//! Usage: `cargo bench -p pairos-lab --bench lab_failover -- [RUNS]` (default 3), as root,
//! after `cargo build --release -p pairos-runtime`.

use std::time::{Duration, Instant};

use pairos_lab::address_probe::{longest_silence, AddressProbe};
use pairos_lab::pair_lab::{PairLab, PairLabOptions, BOOT, PAIR_ADDRESS};
use pairos_lab::stats::median;
use pairos_lab::{image, LabError};

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn median_of(v: &[Duration]) -> Duration {
    Duration::from_secs_f64(median(v.iter().map(Duration::as_secs_f64).collect()))
}

fn main() -> Result<(), LabError> {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let out = image::default_image()?;
    let opts = PairLabOptions { name: "bench-failover".into(), image: out, bmcs: true, witness: false };
    let mut pair = PairLab::up(&opts, &mut |msg| eprintln!("lab: {msg}"))?;
    let macs = [pair.node('a')?.macs[1].clone(), pair.node('b')?.macs[1].clone()];
    let probe = AddressProbe::start(&pair.client().ns, "eth0", PAIR_ADDRESS)?;
    probe.wait_for(&macs[0], Duration::from_secs(60))?;
    // A node does not fence its peer in its first minute (`startup_wait_ms`, the time a slower
    // node needs to boot when both power on together): the first kill waits that out. Later
    // kills hit the node that was powered on again, and its peer has long been up.
    eprintln!("waiting out the nodes' first minute");
    std::thread::sleep(Duration::from_secs(65));
    let letters = ['a', 'b'];
    let (mut kills, mut moves, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    let mut holder = 0;
    for run in 0..runs {
        // The holder dies; the survivor fences it through its BMC and takes over.
        let (dead, survivor) = (holder, 1 - holder);
        let start = Instant::now();
        pair.kill(letters[dead])?;
        let answered = probe.wait_for(&macs[survivor], Duration::from_secs(60))?;
        kills.push(answered.duration_since(start));
        eprintln!(
            "run {run}: node {} killed, node {} answers after {}",
            letters[dead],
            letters[survivor],
            secs(kills[run])
        );
        // The dead node is powered on and rejoins; then a planned switchover back to it.
        pair.power(letters[dead], true)?;
        pair.node(letters[dead])?.vm.wait_for("pair: watchdog /dev/watchdog armed", BOOT)?;
        // The survivor hears the revived node, ready and healthy, and holds the address.
        let revived = ["node-1", "node-2"][dead];
        let settled = format!(
            "for i in $(seq 90); do s=$(pairos pair status); echo \"$s\" | grep -q 'confirmed by the peer' && \
             echo \"$s\" | grep -q '{revived}: secondary, health 1000$' && break; sleep 1; done; pairos pair status"
        );
        let (_, status) = pair.exec(letters[survivor], &settled, Duration::from_secs(200))?;
        eprintln!("{status}");
        std::thread::sleep(Duration::from_secs(2));
        let start = Instant::now();
        let (code, said) = pair.exec(letters[survivor], "pairos pair switchover", Duration::from_secs(60))?;
        if code != 0 {
            return Err(LabError::Setup(format!("switchover refused: {said}")));
        }
        let answered = probe.wait_for(&macs[dead], Duration::from_secs(60))?;
        moves.push(answered.duration_since(start));
        let pings: Vec<Instant> = probe.answers().into_iter().map(|a| a.at).collect();
        gaps.push(longest_silence(&pings, start, answered + Duration::from_millis(500)));
        eprintln!("run {run}: switchover, node {} answers after {}", letters[dead], secs(moves[run]));
        holder = dead;
        std::thread::sleep(Duration::from_secs(3));
    }
    let doubles = probe.double_windows().len();
    println!("| in the lab, TCG, IPMI fencing ({runs} runs) | median | runs |");
    println!("|---|---|---|");
    let all =
        |v: &[Duration]| v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ");
    println!(
        "| the holder's VM killed: survivor answers after | {} | {} |",
        secs(median_of(&kills)),
        all(&kills)
    );
    println!(
        "| planned switchover: the other node answers after | {} | {} |",
        secs(median_of(&moves)),
        all(&moves)
    );
    println!(
        "| planned switchover: longest gap in the answers | {} | {} |",
        secs(median_of(&gaps)),
        all(&gaps)
    );
    println!("\nWindows of 50 ms with two MACs answering, over the whole run: {doubles}");
    Ok(())
}
