//! `pairos pxe`'s DHCP against real clients (busybox udhcpc, ISC dhclient) in network
//! namespaces on a lab link; nothing answered on another interface; leases kept across a
//! restart; a corrupt lease file set aside.

use std::path::Path;
use std::time::{Duration, Instant};

use pairos_host::Child;
use pairos_lab::pxe::{sample_pxe_root, start_pxe, udhcpc};
use pairos_lab::{Endpoint, Lab, LabError};

fn start(lab: &Lab, server: &Endpoint, root: &Path, leases: &Path, log: &str) -> Result<Child, LabError> {
    let args = ["--http-port", "8080", "--lease-file", leases.to_str().expect("utf8")];
    start_pxe(server, root, &args, &lab.dir().join(log))
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.split_whitespace().find_map(|w| w.strip_prefix(key)).unwrap_or("")
}

#[test]
fn real_clients_get_leases_and_the_boot_chain_on_one_interface_only() -> Result<(), LabError> {
    let mut lab = Lab::new("pxe-dhcp")?;
    let server = lab.endpoint("private", "srv", "10.77.0.1/24")?;
    lab.attach(&server.ns, "public", "eth1", Some("10.78.0.1/24"))?;
    let client = lab.client_endpoint("private", "cli")?;
    let outsider = lab.client_endpoint("public", "pub")?;
    let root = lab.dir().join("pxe");
    sample_pxe_root(&root, 0).expect("pxe root");
    let leases = lab.dir().join("leases.json");
    let mut pxe = start(&lab, &server, &root, &leases, "pxe.log")?;

    // A plain DHCP client: an address from the pool, no boot file.
    let (ok, out) = udhcpc(lab.dir(), &client, &[]);
    assert!(ok, "{out}");
    let ip = field(&out, "ip=").to_owned();
    assert!(ip.starts_with("10.77.0.1") && ip.len() == 11, "{out}");
    assert_eq!(field(&out, "boot_file="), "", "{out}");

    // A UEFI PXE client (option 60 and 93): the iPXE binary for UEFI, over TFTP from us.
    let (ok, out) =
        udhcpc(lab.dir(), &client, &["-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007"]);
    assert!(ok, "{out}");
    assert_eq!(field(&out, "boot_file="), "ipxe/snponly.efi", "{out}");
    assert_eq!(field(&out, "siaddr="), "10.77.0.1", "{out}");
    assert_eq!(field(&out, "ip="), ip, "the same client keeps its address");
    // The same firmware once it runs iPXE (option 175): the script, over HTTP.
    let (ok, out) = udhcpc(
        lab.dir(),
        &client,
        &["-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007", "-x", "0xaf:010101"],
    );
    assert!(ok, "{out}");
    assert_eq!(field(&out, "boot_file="), "http://10.77.0.1:8080/recover-uefi.ipxe", "{out}");

    // ISC dhclient binds too (and, as the same MAC, to the same address).
    let lease_file = lab.dir().join("dhclient.leases");
    client
        .ns
        .cmd("dhclient")
        .args(["-1", "-v", "-sf", "/bin/true", "-lf"])
        .arg(&lease_file)
        .arg("-pf")
        .arg(lab.dir().join("dhclient.pid"))
        .arg("eth0")
        .run()?;
    let dl = std::fs::read_to_string(&lease_file).expect("dhclient lease");
    assert!(dl.contains(&format!("fixed-address {ip};")), "{dl}");
    assert!(dl.contains("option dhcp-server-identifier 10.77.0.1;"), "{dl}");

    // Nothing is answered on the server's other interface.
    let (ok, out) = udhcpc(lab.dir(), &outsider, &[]);
    assert!(!ok, "a client on another interface got an answer: {out}");

    // The lease survives a restart.
    pxe.kill();
    let mut pxe = start(&lab, &server, &root, &leases, "pxe-2.log")?;
    let (ok, out) = udhcpc(lab.dir(), &client, &[]);
    assert!(ok && field(&out, "ip=") == ip, "{out}");

    // A corrupt lease file is set aside and reported, not trusted.
    pxe.kill();
    std::fs::write(&leases, "{ garbage").expect("corrupt");
    let _pxe = start(&lab, &server, &root, &leases, "pxe-3.log")?;
    assert_eq!(std::fs::read_to_string(lab.dir().join("leases.corrupt")).expect("set aside"), "{ garbage");
    let log = std::fs::read_to_string(lab.dir().join("pxe-3.log")).expect("log");
    assert!(log.contains("lease file is corrupt: set aside"), "{log}");
    let (ok, out) = udhcpc(lab.dir(), &client, &[]);
    assert!(ok, "service goes on after a corrupt lease file: {out}");
    Ok(())
}

#[test]
fn a_flood_of_garbage_does_not_stop_service_and_is_logged_sparingly() -> Result<(), LabError> {
    let mut lab = Lab::new("pxe-flood")?;
    let server = lab.endpoint("private", "srv", "10.77.0.1/24")?;
    let client = lab.client_endpoint("private", "cli")?;
    let flooder = lab.endpoint("private", "bad", "10.77.0.250/24")?;
    let root = lab.dir().join("pxe");
    sample_pxe_root(&root, 0).expect("pxe root");
    let _pxe = start(&lab, &server, &root, &lab.dir().join("leases.json"), "pxe.log")?;

    // Four bounded seconds of garbage at the server, unicast so that the bridge delivers it to
    // the server's port only (broadcast garbage drowns every port, the client's own receive
    // path included, below any server). Paced at about 20,000 packets a second. Every other
    // packet is DHCP-shaped (BOOTREQUEST, magic cookie) with a bad hardware address length, so it
    // passes the kernel filter and fails in our decoder, which logs it; the rest is noise the
    // filter drops.
    let flood = "import os,socket,time\n\
                 s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)\n\
                 s.setsockopt(socket.SOL_SOCKET,socket.SO_BINDTODEVICE,b'eth0')\n\
                 head=bytes([1,1,200,0])+bytes(232)+bytes([99,130,83,99])\n\
                 end=time.time()+4\n\
                 n=0\n\
                 while time.time()<end:\n\
                 \x20   for i in range(100):\n\
                 \x20       body=head+bytes([53,200])+os.urandom(n%60) if n%2 else os.urandom(1+n%600)\n\
                 \x20       s.sendto(body,('10.77.0.1',67)); n+=1\n\
                 \x20   time.sleep(0.005)\n\
                 print(n)\n";
    let mut sender =
        flooder.ns.cmd("python3").args(["-c", flood]).spawn(Some(&lab.dir().join("flood.log")))?;
    // The client asks once the flood is reaching the server (its garbage shows in the log).
    let start = Instant::now();
    while !std::fs::read_to_string(lab.dir().join("pxe.log"))
        .unwrap_or_default()
        .contains("not a DHCP message")
    {
        assert!(start.elapsed() < Duration::from_secs(10), "the flood never reached the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, out) = udhcpc(lab.dir(), &client, &[]);
    assert!(ok, "a real client is served during the flood: {out}");
    assert!(field(&out, "ip=").starts_with("10.77.0.1"), "{out}");
    let start = Instant::now();
    while sender.check_running().is_ok() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent: u64 = std::fs::read_to_string(lab.dir().join("flood.log"))
        .expect("flood log")
        .trim()
        .parse()
        .expect("count");
    let log = std::fs::read_to_string(lab.dir().join("pxe.log")).expect("log");
    let logged = log.lines().filter(|l| l.contains("not a DHCP message")).count() as u64;
    assert!(sent > 10_000, "the flood was a flood: {sent} packets");
    assert!(logged > 0, "the DHCP-shaped garbage reached the decoder and was reported");
    assert!(logged * 20 < sent, "{logged} log lines for {sent} garbage packets: not rate-limited");
    assert!(log.contains("suppressed="), "{log}");
    Ok(())
}

/// `pairos pxe --check` in `who`'s namespace: its exit code and JSON.
fn check(who: &Endpoint) -> (Option<i32>, serde_json::Value) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", who.ns.name()])
        .arg(pairos_lab::paths::pairos_bin().expect("pairos"))
        .args(["pxe", "--interface", "eth0", "--check", "--json"])
        .output()
        .expect("pairos runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json)
}

#[test]
fn the_probe_finds_dnsmasq_and_our_own_server_and_nothing_on_a_quiet_link() -> Result<(), LabError> {
    let mut lab = Lab::new("pxe-probe")?;
    let server = lab.endpoint("private", "srv", "10.77.0.1/24")?;
    let prober = lab.client_endpoint("private", "probe")?;

    // A quiet link: no server answers.
    let (code, json) = check(&prober);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["dhcp_servers"], serde_json::json!([]), "{json}");

    // dnsmasq answers, and is named.
    let dnsmasq = server
        .ns
        .cmd("dnsmasq")
        .args(["--no-daemon", "--port=0", "--interface=eth0", "--bind-interfaces", "--leasefile-ro"])
        .args(["--dhcp-range=10.77.0.50,10.77.0.60,1h"])
        .arg(format!("--pid-file={}", lab.dir().join("dnsmasq.pid").display()))
        .spawn(Some(&lab.dir().join("dnsmasq.log")))?;
    let (code, json) = wait_for_answer(&prober);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["dhcp_servers"][0]["server"], "10.77.0.1", "{json}");
    drop(dnsmasq);

    // Our own `pairos pxe`, which serves ordinary clients by default, is found the same way.
    let root = lab.dir().join("pxe");
    sample_pxe_root(&root, 0).expect("pxe root");
    let _pxe = start(&lab, &server, &root, &lab.dir().join("leases.json"), "pxe.log")?;
    let (code, json) = wait_for_answer(&prober);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["dhcp_servers"][0]["server"], "10.77.0.1", "{json}");
    Ok(())
}

/// Probes until a server answers (it may still be starting), for at most 20 s.
fn wait_for_answer(who: &Endpoint) -> (Option<i32>, serde_json::Value) {
    let start = Instant::now();
    loop {
        let (code, json) = check(who);
        if code != Some(0) || start.elapsed() > Duration::from_secs(20) {
            return (code, json);
        }
    }
}
