//! Exit codes: scripts branch on them, so they are typed and documented in `--help`.

/// How `pairos` ends. A failure never exits 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, or the answer is yes (certified).
    Success = 0,
    /// The command worked and the answer is no (not certified).
    Negative = 1,
    /// The command could not do its job (bad input, unreadable file, ...).
    Error = 2,
    /// DRBD's fence-peer contract (`pairos volume fence-peer`): the peer's side is inconsistent.
    PeerInconsistent = 3,
    /// ... the peer's side is outdated.
    PeerOutdated = 4,
    /// ... the peer's side is primary (this side is the one to outdate).
    PeerPrimary = 6,
    /// ... the peer is powered off (a fence confirmed it).
    PeerFenced = 7,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}
