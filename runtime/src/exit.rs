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
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}
