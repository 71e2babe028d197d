//! The pair daemon on this host: two nodes as network namespaces with a public and a private
//! port, a client on the public network probing the pair's address by ARP and ping every
//! 50 ms. One pair runs a campaign of faults (forming, a cut private link, a cut public port in
//! and out of maintenance, a switchover, forged packets, a killed primary, a full partition);
//! then the same with BMCs (`ipmi_sim`, fenced by `ipmitool`); then a pair without any fence;
//! then a pair whose only authority is a witness (`pairos witness run`).
//! In every one, the client never sees two MACs answer for the address within one 50 ms
//! window.

use std::time::{Duration, Instant};

use pairos_lab::address_probe::AddressProbe;
use pairos_lab::pair_host::{role, Fencing, HostPair, PAIR_ADDRESS};
use pairos_lab::LabError;

/// The daemons' timing: the defaults' dead time (3 s, which rides out a slow fsync on a busy
/// CI machine), a shorter fence delay, hold and cooldown so that the campaign runs in seconds.
const TIMING: &str = "heartbeat_ms = 100\ndead_time_ms = 3000\nfence_delay_ms = 1000\nhold_ms = 1500\ncooldown_ms = 5000\nstartup_wait_ms = 0";
const SOON: Duration = Duration::from_secs(30);

fn primary_is(p: &HostPair, i: usize) -> Result<(), LabError> {
    let who = p.nodes[i].name;
    p.wait_until(&format!("node {who} primary, the other secondary"), SOON, |a, b| {
        let (me, other) = if i == 0 { (a, b) } else { (b, a) };
        role(me) == "primary" && matches!(role(other), "secondary" | "off") && me["address"]["held"] == true
    })
}

fn conditions(s: &serde_json::Value) -> Vec<String> {
    s["conditions"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Node a, the secondary, loses both cables while b is primary: b powers it off, a never
/// fences b, and b stays primary. Then a's cables are plugged back, it is powered on, and it
/// rejoins as the secondary.
fn isolate_secondary_a(p: &mut HostPair) -> Result<(), LabError> {
    p.cable(0, "private", false)?;
    p.cable(0, "public", false)?;
    p.wait_until("a powered off by the primary", SOON, |_, _| !p.is_on(0))?;
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(role(&p.status(1)?), "primary");
    assert!(!p.is_on(0), "a stays off");
    p.cable(0, "private", true)?;
    p.cable(0, "public", true)?;
    p.power_on(0)?;
    p.wait_until("a back as the secondary", SOON, |a, b| role(a) == "secondary" && role(b) == "primary")
}

fn no_double_holders(probe: &AddressProbe) {
    let doubles = probe.double_windows();
    assert!(doubles.is_empty(), "two MACs answered for the address in one 50 ms window: {doubles:?}");
}

#[test]
fn the_pair_keeps_one_primary_through_a_campaign_of_faults() -> Result<(), LabError> {
    let mut p = HostPair::up("pairhost", Fencing::Command, TIMING)?;
    let probe = AddressProbe::start(&p.client, "eth0", PAIR_ADDRESS)?;
    let (mac_a, mac_b) = (p.nodes[0].public_mac.clone(), p.nodes[1].public_mac.clone());

    // 1. The pair forms: node-1 (a) is preferred; both links heard; the address answers from a,
    //    and b confirms it sees a's MAC.
    primary_is(&p, 0)?;
    probe.wait_for(&mac_a, SOON)?;
    p.wait_until("both links heard and the takeover confirmed by the peer", SOON, |a, b| {
        a["links"]["private"]["peer_heard"] == true
            && a["links"]["public"]["peer_heard"] == true
            && b["links"]["private"]["peer_heard"] == true
            && a["address"]["confirmed"] == true
    })?;
    let text = p.pair_cmd(0, &["status"])?;
    assert!(text.contains("node-1: primary (epoch"), "{text}");
    assert!(text.contains("confirmed by the peer"), "{text}");

    // 2. The private link is cut: no role change, an alarm on both; healed, it clears.
    p.cable(0, "private", false)?;
    p.wait_until("the private-link alarm on both nodes", SOON, |a, b| {
        [a, b].iter().all(|s| conditions(s).iter().any(|c| c.contains("silent on the private link")))
    })?;
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(role(&p.status(0)?), "primary", "one link down is not a failover");
    assert_eq!(role(&p.status(1)?), "secondary");
    p.cable(0, "private", true)?;
    p.wait_until("the alarms cleared", SOON, |a, b| conditions(a).is_empty() && conditions(b).is_empty())?;

    // 3. In maintenance, the primary keeps the role though its public cable is pulled (an
    //    alarm says the public network is lost); out of maintenance, it hands over to b, which
    //    takes the address.
    let said = p.pair_cmd(0, &["maintenance", "on"])?;
    assert!(said.contains("maintenance on"), "{said}");
    p.cable(0, "public", false)?;
    p.wait_until("a's alarm for the public network", SOON, |a, _| {
        conditions(a).iter().any(|c| c.contains("the public network is lost"))
    })?;
    std::thread::sleep(Duration::from_secs(3));
    let a = p.status(0)?;
    assert_eq!(role(&a), "primary", "maintenance: no automatic moves: {a}");
    assert!(conditions(&a).iter().any(|c| c.contains("maintenance")), "{a}");
    p.pair_cmd(0, &["maintenance", "off"])?;
    primary_is(&p, 1)?;
    probe.wait_for(&mac_b, SOON)?;
    let events = p.status(1)?["events"].to_string();
    assert!(events.contains("the peer handed over"), "{events}");
    p.cable(0, "public", true)?;
    p.wait_until("a healthy again", SOON, |a, _| a["health"] == 1000)?;

    // 4. A planned switchover back to a (after b's cooldown since the move).
    std::thread::sleep(Duration::from_secs(5));
    let said = p.pair_cmd(1, &["switchover"])?;
    assert!(said.contains("handed over to node-1"), "{said}");
    primary_is(&p, 0)?;
    probe.wait_for(&mac_a, SOON)?;
    let refused = p.pair_cmd(1, &["switchover"]);
    assert!(refused.is_err(), "a secondary cannot hand over: {refused:?}");

    // 5. Forged, replayed and malformed packets from the public network change nothing and
    //    are counted.
    let before = p.status(0)?;
    pairos_host::Cmd::new("ip").args(["netns", "exec", p.client.name(), "python3", "-c"]).arg(FUZZ).run()?;
    p.wait_until("the refused packets counted", SOON, |a, _| {
        let r = &a["refused"];
        r["forged"].as_u64().unwrap_or(0) + r["malformed"].as_u64().unwrap_or(0) >= 300
    })?;
    let after = p.status(0)?;
    assert_eq!(after["epoch"], before["epoch"], "the fuzz changed nothing");
    assert_eq!(role(&p.status(1)?), "secondary");

    // 6. The primary dies: b fences it (its power script stops) and takes over.
    let killed = Instant::now();
    p.kill(0)?;
    primary_is(&p, 1)?;
    let answered = probe.wait_for(&mac_b, SOON)?;
    eprintln!(
        "pair_host: the survivor answered {:?} after the primary died",
        answered.saturating_duration_since(killed)
    );
    let events = p.status(1)?["events"].to_string();
    assert!(events.contains("fence confirmed it off"), "{events}");
    // It comes back as the secondary.
    p.power_on(0)?;
    p.wait_until("a back as the secondary", SOON, |a, b| role(a) == "secondary" && role(b) == "primary")?;

    // 7. Every link between the two is cut, both alive: the primary (b) fences a at once, a
    //    does not get to fence b; one primary remains.
    isolate_secondary_a(&mut p)?;
    probe.wait_for(&mac_b, SOON)?;

    no_double_holders(&probe);
    assert!(probe.pings().len() > 100, "the address answered pings");
    Ok(())
}

/// Random datagrams, and datagrams that look like ours, at node a's membership port, a
/// millisecond apart (sent back to back, a loaded machine drops some before the daemon reads
/// them, which proves nothing).
const FUZZ: &str = r#"
import os, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(400):
    time.sleep(0.001)
    if i % 2:
        body = b"PPM2" + bytes([1]) + struct.pack("<H", 8) + b"hostpair" + struct.pack("<H", 6) + b"node-2" + os.urandom(90)
    else:
        body = os.urandom(i % 120)
    s.sendto(body, ("192.168.50.11", 7469))
"#;

/// With BMCs: a hung primary (its daemon stopped, the address still on its port) is powered
/// off through its BMC and replaced; a node cut off from everything cannot reach its peer's
/// BMC and never promotes, while the primary powers it off through its own.
#[test]
fn a_hung_primary_is_fenced_through_its_bmc() -> Result<(), LabError> {
    let mut p = HostPair::up("pairbmc", Fencing::Ipmi, TIMING)?;
    let probe = AddressProbe::start(&p.client, "eth0", PAIR_ADDRESS)?;
    let (mac_a, mac_b) = (p.nodes[0].public_mac.clone(), p.nodes[1].public_mac.clone());
    primary_is(&p, 0)?;
    probe.wait_for(&mac_a, SOON)?;
    assert!(p.ipmi(0, &["chassis", "power", "status"])?.contains("on"));

    p.hang(0, true)?;
    primary_is(&p, 1)?;
    probe.wait_for(&mac_b, SOON)?;
    assert!(p.ipmi(0, &["chassis", "power", "status"])?.contains("off"), "a was powered off by its BMC");
    let events = p.status(1)?["events"].to_string();
    assert!(events.contains("IPMI admin@192.168.50.21"), "{events}");
    p.power_on(0)?;
    p.wait_until("a back as the secondary", SOON, |a, b| role(a) == "secondary" && role(b) == "primary")?;

    // b is primary; a loses both cables. b powers it off; a cannot reach b's BMC.
    isolate_secondary_a(&mut p)?;
    no_double_holders(&probe);
    Ok(())
}

/// Without a fence (and without a witness), a secondary whose primary went silent does not
/// promote, and says why.
#[test]
fn without_a_fence_a_silent_primary_is_not_replaced() -> Result<(), LabError> {
    let mut p = HostPair::up("pairnofence", Fencing::None, TIMING)?;
    let probe = AddressProbe::start(&p.client, "eth0", PAIR_ADDRESS)?;
    primary_is(&p, 0)?;
    probe.wait_for(&p.nodes[0].public_mac.clone(), SOON)?;
    p.kill(0)?;
    p.wait_until("b's alarm", SOON, |_, b| {
        conditions(b).iter().any(|c| c.contains("no fence is configured: not promoting"))
    })?;
    std::thread::sleep(Duration::from_secs(3));
    let b = p.status(1)?;
    assert_eq!(role(&b), "secondary", "{b}");
    assert_eq!(probe.holder(Duration::from_secs(1)), None, "nobody answers for the address");
    let text = p.pair_cmd(1, &["status"])?;
    assert!(text.contains("ALARM: the peer is silent on both links and no fence is configured"), "{text}");
    Ok(())
}

/// A witness's timing: no watchdog here, but the rules are kept as if one reset a hung node
/// in 2 s; a 6 s lease renewed every half second; a claim said for 4 s.
const WITNESS_TIMING: &str = "heartbeat_ms = 100\ndead_time_ms = 3000\nfence_delay_ms = 1000\nhold_ms = 1500\ncooldown_ms = 5000\nstartup_wait_ms = 0\nwatchdog_ms = 2000\nlease_ms = 6000\nrenew_ms = 500\nclaim_wait_ms = 4000";

fn witness_held_by(s: &serde_json::Value) -> bool {
    s["witnesses"][0]["lease_held"] == true && s["witnesses"][0]["elected"] == true
}

fn events(p: &HostPair, i: usize) -> Result<String, LabError> {
    Ok(p.status(i)?["events"].to_string())
}

/// No fence, one witness: a dead primary is replaced once its lease has run out; a primary cut
/// off from everything stands down and its peer takes over; a secondary cut off from
/// everything cannot reach the witness and stays secondary; a witness restarted keeps its
/// grant.
#[test]
fn a_witness_replaces_a_silent_primary_and_keeps_one_through_partitions() -> Result<(), LabError> {
    let mut p = HostPair::up_witnessed("pairwit", Fencing::None, WITNESS_TIMING)?;
    let probe = AddressProbe::start(&p.client, "eth0", PAIR_ADDRESS)?;
    let (mac_a, mac_b) = (p.nodes[0].public_mac.clone(), p.nodes[1].public_mac.clone());
    primary_is(&p, 0)?;
    probe.wait_for(&mac_a, SOON)?;
    p.wait_until("a holds the witness's lease", SOON, |a, _| witness_held_by(a))?;
    let text = p.pair_cmd(0, &["status"])?;
    assert!(text.contains("witness 192.168.50.30:7470 (elected): lease held here"), "{text}");

    // 1. The primary dies: b claims, the witness refuses it until a's lease ran out, then
    //    grants it; b takes over.
    let killed = Instant::now();
    p.kill(0)?;
    p.wait_until("b claiming through the witness", SOON, |_, b| b["claim"].is_u64())?;
    primary_is(&p, 1)?;
    let answered = probe.wait_for(&mac_b, SOON)?;
    eprintln!(
        "pair_host: through the witness, the survivor answered {:?} after the primary died",
        answered - killed
    );
    assert!(events(&p, 1)?.contains("a witness granted its lease"), "{}", events(&p, 1)?);
    let kept = p.witness.as_ref().expect("a witness").0.kept()?;
    assert_eq!(kept["pairs"]["hostpair"]["holder"], "node-2", "{kept}");
    p.power_on(0)?;
    p.wait_until("a back as the secondary", SOON, |a, b| role(a) == "secondary" && role(b) == "primary")?;

    // 2. The primary (b) loses both cables: it stands down (it cannot renew its lease; or,
    //    while a is still within the dead time, it hands over for the public network it
    //    lost, a grant that never arrives), and a takes over through the witness.
    p.cable(1, "private", false)?;
    p.cable(1, "public", false)?;
    primary_is(&p, 0)?;
    probe.wait_for(&mac_a, SOON)?;
    p.wait_until("b stood down", SOON, |_, b| role(b) == "secondary")?;
    let stood_down = events(&p, 1)?;
    assert!(stood_down.contains("lease ran out") || stood_down.contains("preventive move"), "{stood_down}");
    assert!(events(&p, 0)?.contains("a witness granted its lease"), "{}", events(&p, 0)?);
    p.cable(1, "private", true)?;
    p.cable(1, "public", true)?;
    p.wait_until("b back as the secondary", SOON, |a, b| {
        role(a) == "primary" && role(b) == "secondary" && b["peer"]["live"] == true
    })?;

    // 3. The witness restarts: it kept a's grant, and a holds the lease again.
    let w = &mut p.witness.as_mut().expect("a witness").0;
    w.stop();
    let kept = w.kept()?;
    assert_eq!(kept["pairs"]["hostpair"]["holder"], "node-1", "{kept}");
    w.resume()?;
    std::thread::sleep(Duration::from_secs(2));
    p.wait_until("a holds the lease again", SOON, |a, _| witness_held_by(a))?;

    // 4. The secondary (b) loses both cables: it claims, but cannot reach the witness, and
    //    says so; a keeps the role.
    p.cable(1, "private", false)?;
    p.cable(1, "public", false)?;
    p.wait_until("b asking the witness", SOON, |_, b| {
        conditions(b).iter().any(|c| c.contains("asking the witness"))
    })?;
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(role(&p.status(1)?), "secondary");
    assert_eq!(role(&p.status(0)?), "primary");
    p.cable(1, "private", true)?;
    p.cable(1, "public", true)?;
    p.wait_until("b heard again", SOON, |a, b| {
        role(a) == "primary" && role(b) == "secondary" && b["claim"].is_null()
    })?;
    no_double_holders(&probe);
    Ok(())
}
