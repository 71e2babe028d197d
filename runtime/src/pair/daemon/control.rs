//! Requests to the running daemon (`pairos pair switchover`, `pairos pair maintenance on|off`,
//! and DRBD's fence-peer call through `pairos volume fence-peer`): one datagram each on a Unix
//! socket in the run folder, answered with one datagram. Only root can reach the socket (mode
//! 0600).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::status::CONTROL_SOCKET;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Switchover,
    Maintenance(bool),
    /// Is the peer's side of this volume outdated, or the peer off? (DRBD's fence-peer.)
    FencePeer(String),
    /// Reset the silent peer through its BMC (a known peer whose disk does not boot).
    ResetPeer,
    /// May this node's side of the volume become a resync's target? (DRBD's
    /// before-resync-target.)
    MaySyncTarget(String),
    /// Restart this workload on the primary (`pairos workload restart`).
    RestartWorkload(String),
}

impl Request {
    fn parse(text: &str) -> Option<Request> {
        match text.trim() {
            "switchover" => Some(Request::Switchover),
            "maintenance on" => Some(Request::Maintenance(true)),
            "maintenance off" => Some(Request::Maintenance(false)),
            "reset-peer" => Some(Request::ResetPeer),
            t => t
                .strip_prefix("fence-peer ")
                .map(|r| Request::FencePeer(r.trim().to_owned()))
                .or_else(|| {
                    t.strip_prefix("may-sync-target ").map(|r| Request::MaySyncTarget(r.trim().to_owned()))
                })
                .or_else(|| {
                    t.strip_prefix("restart-workload ").map(|w| Request::RestartWorkload(w.trim().to_owned()))
                }),
        }
    }

    fn text(&self) -> String {
        match self {
            Request::Switchover => "switchover".into(),
            Request::Maintenance(true) => "maintenance on".into(),
            Request::Maintenance(false) => "maintenance off".into(),
            Request::FencePeer(r) => format!("fence-peer {r}"),
            Request::ResetPeer => "reset-peer".into(),
            Request::MaySyncTarget(r) => format!("may-sync-target {r}"),
            Request::RestartWorkload(w) => format!("restart-workload {w}"),
        }
    }
}

/// Where an answer goes.
#[derive(Debug)]
pub struct Reply {
    socket: Arc<UnixDatagram>,
    to: SocketAddr,
}

impl Reply {
    pub fn send(self, answer: Result<String, String>) {
        let text = match answer {
            Ok(t) => format!("ok {t}"),
            Err(e) => format!("refused {e}"),
        };
        if let Some(path) = self.to.as_pathname() {
            let _ = self.socket.send_to(text.as_bytes(), path);
        }
    }
}

pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join(CONTROL_SOCKET)
}

/// Listens on the control socket; each request is handed to the loop as `wrap(request, reply)`.
pub fn spawn<W: Send + 'static>(
    run_dir: &Path,
    to: Sender<W>,
    wrap: fn(Request, Reply) -> W,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("making {}", run_dir.display()))?;
    let path = socket_path(run_dir);
    let _ = std::fs::remove_file(&path);
    let socket = Arc::new(UnixDatagram::bind(&path).with_context(|| format!("binding {}", path.display()))?);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new().name("pair-control".into()).spawn(move || {
        let mut buf = [0u8; 256];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
            let reply = Reply { socket: socket.clone(), to: from };
            match Request::parse(&String::from_utf8_lossy(&buf[..n])) {
                Some(r) => {
                    if to.send(wrap(r, reply)).is_err() {
                        return;
                    }
                }
                None => reply.send(Err(
                    "unknown request: expected switchover, maintenance on|off, fence-peer RESOURCE, reset-peer, \
                     may-sync-target RESOURCE or restart-workload NAME"
                        .into(),
                )),
            }
        }
    })?;
    Ok(())
}

/// Sends `request` to the daemon whose run folder is `run_dir` and returns its answer.
pub fn ask(run_dir: &Path, request: Request) -> anyhow::Result<Result<String, String>> {
    let server = socket_path(run_dir);
    let own = run_dir.join(format!("pair-client-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&own);
    let socket = UnixDatagram::bind(&own).with_context(|| format!("binding {}", own.display()))?;
    let result = (|| {
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        socket
            .send_to(request.text().as_bytes(), &server)
            .with_context(|| format!("{} (is the pair daemon running?)", server.display()))?;
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).context("no answer from the pair daemon within 10 s")?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        Ok(match text.split_once(' ') {
            Some(("ok", rest)) => Ok(rest.to_owned()),
            Some((_, rest)) => Err(rest.to_owned()),
            None => Err(text),
        })
    })();
    let _ = std::fs::remove_file(&own);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_back_as_they_were_written_and_nothing_else_is_one() {
        for r in [
            Request::Switchover,
            Request::Maintenance(true),
            Request::Maintenance(false),
            Request::FencePeer("raw".into()),
            Request::ResetPeer,
            Request::MaySyncTarget("data".into()),
            Request::RestartWorkload("web".into()),
        ] {
            assert_eq!(Request::parse(&r.text()), Some(r));
        }
        assert_eq!(Request::parse("reboot everything"), None);
        assert_eq!(Request::parse(""), None);
    }
}
