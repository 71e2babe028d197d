//! Where an image comes from: a build folder (or the ISO's `/image`), or an HTTP URL serving
//! the same files: a build folder behind any web server, or a peer's image service. A source
//! gives the manifest, its signature, and byte ranges of `disk.raw`; the writer checks every
//! byte it gets against the signed manifest, so no source is trusted.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use pairos_image::manifest::{self, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{what}: expected {expected} bytes, got {got}")]
    Short { what: String, expected: u64, got: u64 },
    #[error("the image's manifest: {0}")]
    Manifest(#[from] manifest::ManifestError),
}

/// The files of an image, wherever they are.
pub trait ImageSource: Send + Sync {
    /// What this source is, for messages.
    fn describe(&self) -> String;
    /// A small file of the image (`manifest.json`, `manifest.sig`).
    fn file(&self, name: &str) -> Result<Vec<u8>, SourceError>;
    /// `length` bytes of `disk.raw` at `offset`.
    fn disk_range(&self, offset: u64, length: u64) -> Result<Vec<u8>, SourceError>;
}

/// A manifest whose signature checked, with the bytes that were signed and the signature.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
    pub signature: Vec<u8>,
    /// The key it was checked with.
    pub key: VerifyingKey,
}

impl Verified {
    /// Checks `signature` over `bytes` with `key`, then parses them.
    pub fn check(bytes: Vec<u8>, signature: Vec<u8>, key: &VerifyingKey) -> Result<Verified, SourceError> {
        manifest::verify(&bytes, &signature, key)?;
        let manifest = Manifest::parse(&bytes)?;
        Ok(Verified { manifest, bytes, signature, key: *key })
    }

    /// The sha256 of the signed bytes: names this exact manifest (in resume records, say).
    pub fn digest(&self) -> String {
        pairos_image::digest::sha256_hex(&self.bytes)
    }
}

/// The manifest, after its signature has been checked with `key`. Nothing is written before.
pub fn verified_manifest(source: &dyn ImageSource, key: &VerifyingKey) -> Result<Verified, SourceError> {
    Verified::check(source.file("manifest.json")?, source.file("manifest.sig")?, key)
}

/// A build output folder, or a copy of one (the ISO's `/image`).
#[derive(Debug, Clone)]
pub struct FolderSource {
    pub dir: PathBuf,
}

impl ImageSource for FolderSource {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn file(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        let path = self.dir.join(name);
        std::fs::read(&path)
            .map_err(|source| SourceError::Io { what: format!("reading {}", path.display()), source })
    }

    fn disk_range(&self, offset: u64, length: u64) -> Result<Vec<u8>, SourceError> {
        let path = self.dir.join("disk.raw");
        let io = |source| SourceError::Io { what: format!("reading {}", path.display()), source };
        let file = File::open(&path).map_err(io)?;
        let mut buf = vec![0u8; length as usize];
        file.read_exact_at(&mut buf, offset).map_err(io)?;
        Ok(buf)
    }
}

/// The most a manifest or its signature may be, read over HTTP before its signature is checked.
const MAX_FILE: u64 = 16 << 20;

/// An image over HTTP: `BASE/manifest.json`, `BASE/manifest.sig`, and range requests on
/// `BASE/disk.raw`.
#[derive(Debug, Clone)]
pub struct HttpSource {
    pub base: String,
    agent: ureq::Agent,
}

impl HttpSource {
    pub fn new(base: &str) -> HttpSource {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build();
        HttpSource { base: base.trim_end_matches('/').to_owned(), agent: config.into() }
    }

    /// `name`, or `length` bytes of it at `offset`. No more is read than a manifest can be, or
    /// than the range asked for: the body is not trusted before it is checked.
    fn get(&self, name: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}/{name}", self.base);
        let err = |message: String| SourceError::Http { url: url.clone(), message };
        let mut req = self.agent.get(&url);
        if let Some((offset, length)) = range {
            req = req.header("Range", &format!("bytes={offset}-{}", offset + length - 1));
        }
        let mut resp = req.call().map_err(|e| err(e.to_string()))?;
        let status = resp.status().as_u16();
        let expected = if range.is_some() { 206 } else { 200 };
        if status != expected {
            return Err(err(format!("HTTP status {status}, expected {expected}")));
        }
        let limit = range.map_or(MAX_FILE, |(_, length)| length);
        let mut body = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| err(format!("reading the body: {e}")))?;
        if body.len() as u64 > limit {
            return Err(err(format!("the body is longer than the {limit} bytes expected")));
        }
        Ok(body)
    }
}

impl ImageSource for HttpSource {
    fn describe(&self) -> String {
        self.base.clone()
    }

    fn file(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        self.get(name, None)
    }

    fn disk_range(&self, offset: u64, length: u64) -> Result<Vec<u8>, SourceError> {
        let data = self.get("disk.raw", Some((offset, length)))?;
        if data.len() as u64 != length {
            return Err(SourceError::Short {
                what: format!("{}/disk.raw at {offset}", self.base),
                expected: length,
                got: data.len() as u64,
            });
        }
        Ok(data)
    }
}

/// The source for `image`: an `http://` URL or a folder.
pub fn open(image: &str) -> Box<dyn ImageSource> {
    if image.starts_with("http://") || image.starts_with("https://") {
        Box::new(HttpSource::new(image))
    } else {
        Box::new(FolderSource { dir: Path::new(image).to_owned() })
    }
}
