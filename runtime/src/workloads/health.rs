//! A workload's health check, run once: a TCP connection accepted on a port, an HTTP GET that
//! answers 2xx, or a command that exits 0, each within a timeout. The supervisor counts
//! failures in a row against the workload's threshold.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pairos_workload::spec::Health;

/// How long one check may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Runs the check against `host` (the pair's address, or loopback when the workload has none);
/// Err says what failed.
pub fn check(health: &Health, host: IpAddr) -> Result<(), String> {
    if let Some(port) = health.tcp {
        let at = SocketAddr::new(host, port);
        return TcpStream::connect_timeout(&at, TIMEOUT).map(drop).map_err(|e| format!("tcp {at}: {e}"));
    }
    if let Some(url) = &health.http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        return match agent.get(url).call() {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("http {url}: {}", r.status())),
            Err(e) => Err(format!("http {url}: {e}")),
        };
    }
    if let Some(argv) = &health.command {
        return command(argv);
    }
    Err("no health check defined".into())
}

/// Runs a command check, killing it when it runs past the timeout.
fn command(argv: &[String]) -> Result<(), String> {
    let shown = argv.join(" ");
    let (program, args) = argv.split_first().ok_or("an empty health command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{shown}: {status}")),
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown}: no answer within {} s", TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener};

    fn health(tcp: Option<u16>, http: Option<String>, command: Option<Vec<String>>) -> Health {
        Health { tcp, http, command, interval_s: 1, failures: 1 }
    }

    #[test]
    fn each_kind_of_check_passes_on_a_live_service_and_fails_naming_why() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // A tiny HTTP server: 200 on /ok, 503 elsewhere.
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /ok ");
                let status = if ok { "200 OK" } else { "503 Service Unavailable" };
                let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        assert_eq!(check(&health(Some(port), None, None), lo), Ok(()));
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let e = check(&health(Some(closed), None, None), lo).expect_err("nothing listens");
        assert!(e.contains(&format!("tcp 127.0.0.1:{closed}")), "{e}");
        assert_eq!(check(&health(None, Some(format!("http://127.0.0.1:{port}/ok")), None), lo), Ok(()));
        let e =
            check(&health(None, Some(format!("http://127.0.0.1:{port}/sick")), None), lo).expect_err("503");
        assert!(e.contains("503"), "{e}");
        assert_eq!(check(&health(None, None, Some(vec!["/bin/true".into()])), lo), Ok(()));
        let e = check(&health(None, None, Some(vec!["/bin/sh".into(), "-c".into(), "exit 3".into()])), lo)
            .expect_err("exit 3");
        assert!(e.contains("exit status: 3"), "{e}");
        let e =
            check(&health(None, None, Some(vec!["/bin/sleep".into(), "30".into()])), lo).expect_err("slow");
        assert!(e.contains("no answer within 3 s"), "{e}");
    }
}
