use std::path::PathBuf;
use std::time::Duration;

use pairos_host::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Command(#[from] Box<CommandError>),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{vm}: waited {waited:?} for {what:?} on the console; last console lines:\n{tail}")]
    Timeout { vm: String, what: String, waited: Duration, tail: String },
    #[error("{vm}: QEMU exited while waiting for {what:?}: {source}\nlast console lines:\n{tail}")]
    Exited { vm: String, what: String, source: Box<CommandError>, tail: String },
    #[error("{vm}: while waiting for {what:?} the console said {line:?}; last console lines:\n{tail}")]
    Failed { vm: String, what: String, line: String, tail: String },
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Debian(#[from] pairos_image::debian::DebianError),
    #[error(transparent)]
    Kmod(#[from] pairos_image::kmod::KmodError),
    #[error(transparent)]
    Initramfs(#[from] pairos_image::initramfs::InitramfsError),
}

impl From<CommandError> for LabError {
    fn from(e: CommandError) -> Self {
        LabError::Command(Box::new(e))
    }
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.into();
    move |source| LabError::Io { path, source }
}
