//! The pipeline: each stage is a module with a clear input and output; [`build`] runs them in
//! order, caches the slow ones by the digest of their inputs, reports progress as [`Event`]s,
//! and writes the output folder atomically (a `.partial` folder renamed into place on success).

pub mod bios_boot;
pub mod boot_initramfs;
pub mod disk;
pub mod fetch;
pub mod iso;
pub mod pxe;
pub mod rootfs;
pub mod rootimg;
pub mod uki;

use std::path::{Path, PathBuf};
use std::time::Instant;

use pairos_boards::Profile;
use pairos_host::CommandError;
use serde::Serialize;

use crate::cache::{CacheError, StageCache};
use crate::digest::sha256_file;
use crate::layout::image_layout;
use crate::manifest::{self, Artifact, Manifest};
use crate::manifest_record;
use crate::spec::Spec;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{what}: {source}")]
    Tool { what: String, source: CommandError },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what} not found at {}", path.display())]
    Missing { what: String, path: PathBuf },
    #[error("{what} is {size} bytes, but there is room for {room}: raise the partition size in the spec")]
    TooBig { what: String, size: u64, room: u64 },
    #[error("could not read {what}: {text}")]
    Parse { what: String, text: String },
    #[error("{}: {message}", path.display())]
    Disk { path: PathBuf, message: String },
    #[error(transparent)]
    Debian(#[from] crate::debian::DebianError),
    #[error(transparent)]
    Kmod(#[from] crate::kmod::KmodError),
    #[error(transparent)]
    Initramfs(#[from] crate::initramfs::InitramfsError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Table(#[from] crate::partition_table::TableError),
    #[error("{0}")]
    Input(String),
}

impl StageError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
        move |source| StageError::Io { path: path.to_owned(), source }
    }
}

impl From<CacheError<StageError>> for StageError {
    fn from(e: CacheError<StageError>) -> Self {
        match e {
            CacheError::Io { path, source } => StageError::Io { path, source },
            CacheError::Stage(e) => e,
        }
    }
}

/// A build failure: which stage, and why.
#[derive(Debug, thiserror::Error)]
#[error("stage {stage}")]
pub struct BuildError {
    pub stage: &'static str,
    #[source]
    pub source: StageError,
}

/// Progress, for a terminal or the API.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Stage { index: usize, total: usize, name: &'static str },
    StageDone { name: &'static str, seconds: f64, cached: bool },
    Warning { message: String },
}

pub const STAGES: [&str; 10] =
    ["fetch", "debootstrap", "rootfs", "root-image", "initramfs", "uki", "pxe", "disk", "iso", "manifest"];

#[derive(Debug)]
pub struct BuildOptions {
    pub spec: Spec,
    /// The certified profiles the image is for (already narrowed to the spec's boards).
    pub boards: Vec<Profile>,
    pub out: PathBuf,
    pub cache: PathBuf,
    pub signing_key: Option<PathBuf>,
    /// A lab build: the public test key (`ci/keys/`) may sign it. A release build refuses it.
    pub lab: bool,
    /// The `pairos` binary that goes into the image.
    pub pairos_bin: PathBuf,
    pub source_date_epoch: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: &'static str,
    pub seconds: f64,
    pub cached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    pub out: PathBuf,
    pub version: String,
    pub kernel: String,
    pub root_hash: String,
    pub boards: Vec<String>,
    pub ephemeral_key: bool,
    pub artifacts: Vec<Artifact>,
    pub stages: Vec<StageReport>,
    pub seconds: f64,
}

/// Modules a booting node needs before its root is mounted. ext4 asks for crc32c when it
/// mounts, and the initramfs has no modprobe helper to answer, so it is loaded up front. The
/// installer reads the image from the DVD (isofs, sr_mod). The recovery agent makes the disk it
/// wrote the firmware's next boot through efivarfs.
const BOOT_MODULES: [&str; 7] =
    ["dm_verity", "squashfs", "crc32c_generic", "ext4", "isofs", "sr_mod", "efivarfs"];

struct Runner<'a> {
    events: &'a mut dyn FnMut(Event),
    reports: Vec<StageReport>,
}

impl Runner<'_> {
    fn stage<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<(T, bool), StageError>,
    ) -> Result<T, BuildError> {
        let index = STAGES.iter().position(|s| *s == name).map_or(0, |i| i + 1);
        (self.events)(Event::Stage { index, total: STAGES.len(), name });
        let start = Instant::now();
        let (value, cached) = f().map_err(|source| BuildError { stage: name, source })?;
        let seconds = start.elapsed().as_secs_f64();
        (self.events)(Event::StageDone { name, seconds, cached });
        self.reports.push(StageReport { name, seconds, cached });
        Ok(value)
    }
}

/// Refuses to replace a folder that is not an earlier build's output.
fn check_out(out: &Path) -> Result<(), StageError> {
    if !out.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(out).map_err(StageError::io(out))?.next().is_none();
    if out.is_dir() && (empty || out.join("manifest.json").is_file()) {
        return Ok(());
    }
    Err(StageError::Input(format!(
        "{} exists and is not a pairos build output (no manifest.json); refusing to replace it",
        out.display()
    )))
}

fn partial_dir(out: &Path) -> PathBuf {
    let name = out.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.partial"))
}

/// Builds the image described by `opts`. On failure nothing is left in or beside `opts.out`.
pub fn build(opts: &BuildOptions, events: &mut dyn FnMut(Event)) -> Result<BuildSummary, BuildError> {
    let started = Instant::now();
    let input = |source| BuildError { stage: "setup", source };
    check_out(&opts.out).map_err(input)?;
    let key = match &opts.signing_key {
        Some(path) => {
            let key = manifest::load_signing_key(path).map_err(|e| input(e.into()))?;
            if !opts.lab && manifest::is_public_test_key(&key.verifying_key()) {
                return Err(input(StageError::Input(format!(
                    "signing key {}: this is the public test key from ci/keys/, which anyone can \
                     sign with; it signs lab builds only (pass --lab for one), never a release",
                    path.display()
                ))));
            }
            key
        }
        None => {
            events(Event::Warning {
                message: "NO SIGNING KEY GIVEN: signing with a throw-away development key. Nodes will \
                          only accept this image with this build's public key; pass --signing-key \
                          for a release."
                    .into(),
            });
            manifest::ephemeral_signing_key()
        }
    };
    let public_pem = manifest::public_key_pem(&key.verifying_key());
    let partial = partial_dir(&opts.out);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| input(StageError::io(&partial)(e)))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| input(StageError::io(&partial)(e)))?;
    let result = build_into(opts, &key, &public_pem, &partial, events);
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let finish = |source| BuildError { stage: "output", source };
    if opts.out.exists() {
        std::fs::remove_dir_all(&opts.out).map_err(|e| finish(StageError::io(&opts.out)(e)))?;
    }
    std::fs::rename(&partial, &opts.out).map_err(|e| finish(StageError::io(&opts.out)(e)))?;
    Ok(BuildSummary {
        out: opts.out.clone(),
        ephemeral_key: opts.signing_key.is_none(),
        seconds: started.elapsed().as_secs_f64(),
        ..summary
    })
}

fn build_into(
    opts: &BuildOptions,
    key: &ed25519_dalek::SigningKey,
    public_pem: &str,
    out: &Path,
    events: &mut dyn FnMut(Event),
) -> Result<BuildSummary, BuildError> {
    let spec = &opts.spec;
    let epoch = opts.source_date_epoch;
    let mut run = Runner { events, reports: Vec::new() };
    let cache = StageCache::open(&opts.cache)
        .map_err(|e| BuildError { stage: "setup", source: StageError::io(&opts.cache)(e) })?;
    let work = out.join(".work");

    let fetched = run.stage("fetch", || Ok((fetch::run(cache.root())?, false)))?;
    let kernel = &fetched.kernel;

    let mut image_modules: Vec<String> = opts.boards.iter().flat_map(|b| b.modules.all()).collect();
    image_modules.extend(spec.modules.iter().cloned());
    let mut boot_modules: Vec<String> =
        opts.boards.iter().flat_map(|b| b.modules.storage.iter().chain(&b.modules.nic).cloned()).collect();
    boot_modules.extend(BOOT_MODULES.iter().map(|m| m.to_string()));

    let sources = rootfs::sources_file(spec).map_err(|source| BuildError { stage: "debootstrap", source })?;
    let deboot_key = rootfs::debootstrap_key(spec, &sources, epoch)
        .map_err(|source| BuildError { stage: "debootstrap", source })?;
    let rootfs_tar = run.stage("debootstrap", || {
        let (dir, cached) = cache.get_or_build("debootstrap", &deboot_key.finish(), |o| {
            rootfs::debootstrap(spec, &sources, epoch, o)
        })?;
        Ok((dir.join("rootfs.tar"), cached))
    })?;

    let mut tree_key = deboot_key.clone();
    tree_key.add_str("stage", "rootfs");
    tree_key
        .add_file("pairos", &opts.pairos_bin)
        .map_err(|e| BuildError { stage: "rootfs", source: StageError::io(&opts.pairos_bin)(e) })?;
    tree_key.add_str("kernel", &kernel.version).add_str("modules", &image_modules.join(","));
    tree_key.add_str("version", &spec.version).add_str("public-key", public_pem);
    let os_release = rootfs::os_release(&spec.version);
    let tree = run.stage("rootfs", || {
        let overlay = rootfs::Overlay {
            pairos_bin: &opts.pairos_bin,
            version: &spec.version,
            public_key_pem: public_pem,
            kernel,
            modules: &image_modules,
        };
        let (dir, cached) = cache.get_or_build("rootfs", &tree_key.finish(), |o| {
            rootfs::tree(&rootfs_tar, &overlay, o).map(|_| ())
        })?;
        Ok((dir.join("tree"), cached))
    })?;

    let p = spec.partitions;
    let mut img_key = tree_key.clone();
    img_key.add_str("stage", "root-image").add_str("sizes", &format!("{}/{}", p.root_mib, p.verity_mib));
    let root = run.stage("root-image", || {
        let (dir, cached) = cache.get_or_build("root-image", &img_key.finish(), |o| {
            rootimg::run(&tree, epoch, p.root_mib << 20, p.verity_mib << 20, o).map(|_| ())
        })?;
        Ok((rootimg::load(&dir)?, cached))
    })?;

    let mut initrd_key = tree_key.clone();
    initrd_key.add_str("stage", "initramfs").add_str("modules", &boot_modules.join(","));
    let initrd = run.stage("initramfs", || {
        let b = boot_initramfs::BootInitramfs {
            tree: &tree,
            kernel,
            modules: &boot_modules,
            public_key_pem: public_pem,
            os_release: &os_release,
            epoch,
        };
        let (dir, cached) = cache
            .get_or_build("initramfs", &initrd_key.finish(), |o| boot_initramfs::run(&b, o).map(|_| ()))?;
        Ok((dir.join("initrd.img"), cached))
    })?;

    let cmdline = |extra: &str| format!("{} {extra}", spec.cmdline.trim());
    let disk_cmdline = cmdline(&format!("roothash={}", root.root_hash_hex));
    let recover_cmdline = cmdline("pairos.mode=recover");
    let (disk_uki, installer_uki, recover_uki) = run.stage("uki", || {
        let make = |name: &str, line: &str| -> Result<PathBuf, StageError> {
            let parts = uki::UkiParts {
                stub: &fetched.stub,
                kernel: &kernel.vmlinuz(),
                initrd: &initrd,
                cmdline: line,
                os_release: &os_release,
                uname: &kernel.version,
                epoch,
            };
            let path = work.join(format!("{name}.efi"));
            uki::build(&parts, &work.join(name), &path)?;
            Ok(path)
        };
        let ukis = (
            make("disk", &disk_cmdline)?,
            make("installer", &cmdline("pairos.mode=install"))?,
            make("recover", &recover_cmdline)?,
        );
        Ok((ukis, false))
    })?;

    run.stage("pxe", || {
        let set = pxe::PxeSet {
            kernel: &kernel.vmlinuz(),
            initrd: &initrd,
            uki: &recover_uki,
            ipxe: &fetched.ipxe,
            cmdline: &recover_cmdline,
        };
        pxe::run(&set, out).map(|()| ((), false))
    })?;

    let boards: Vec<String> = opts.boards.iter().map(|b| b.name.clone()).collect();
    let make_manifest = |map: &manifest::DiskMap, artifacts: Vec<Artifact>| Manifest {
        format: manifest::FORMAT,
        version: spec.version.clone(),
        boards: boards.clone(),
        kernel: kernel.version.clone(),
        root_hash: root.root_hash_hex.clone(),
        source_date_epoch: epoch,
        artifacts,
        disk: map.clone(),
    };
    let layout = image_layout(&p, &root.root_hash);
    let (disk, map) = run.stage("disk", || {
        let esp = work.join("esp.img");
        // The UKI boots the node; the PXE set beside it is what the node serves its peer.
        let pxe_files: Vec<(String, PathBuf)> =
            pxe::SERVED.iter().map(|f| (format!("/{}/{f}", pxe::ESP_DIR), out.join("pxe").join(f))).collect();
        let mut esp_files = vec![("/EFI/BOOT/BOOTX64.EFI", disk_uki.as_path())];
        esp_files.extend(pxe_files.iter().map(|(fat, src)| (fat.as_str(), src.as_path())));
        // BIOS boots the same kernel and initramfs (the PXE set's) with the same command line.
        let in_esp = |f: &str| format!("/{}/{f}", pxe::ESP_DIR);
        let bios = bios_boot::esp_files(&work, &in_esp("vmlinuz"), &in_esp("initrd.img"), &disk_cmdline)?;
        esp_files.extend(bios.iter().map(|(fat, src)| (fat.as_str(), src.as_path())));
        disk::fat_image(&esp, p.esp_mib, "PAIROS-ESP", &esp_files, epoch)?;
        bios_boot::install(&esp, epoch)?;
        let payloads = [("esp", esp.as_path()), ("root-a", &root.root), ("verity-a", &root.verity)];
        let disk = disk::run(&layout, &payloads, out)?;
        bios_boot::write_mbr(&disk)?;
        let mut lengths = Vec::new();
        for (name, path) in payloads {
            lengths.push((name, std::fs::metadata(path).map_err(StageError::io(path))?.len()));
        }
        let map = manifest::map_disk(&disk, &layout, &lengths)?;
        // The disk carries its own signed manifest (without the artifact list, which names
        // disk.raw itself), so that a node installed from it can serve it.
        let carried = make_manifest(&map, Vec::new()).to_bytes();
        let record = manifest_record::encode(&carried, &manifest::sign(&carried, key))?;
        let f = std::fs::OpenOptions::new().write(true).open(&disk).map_err(StageError::io(&disk))?;
        std::os::unix::fs::FileExt::write_all_at(&f, &record, manifest_record::offset(&layout))
            .map_err(StageError::io(&disk))?;
        drop(f);
        let bmap = crate::bmap::bmap(&disk, &map).map_err(StageError::io(&disk))?;
        let bmap_path = out.join("disk.bmap");
        std::fs::write(&bmap_path, bmap).map_err(StageError::io(&bmap_path))?;
        Ok(((disk, map), false))
    })?;

    let write_signed = |dir: &Path, m: &Manifest| -> Result<(), StageError> {
        let bytes = m.to_bytes();
        let sig = manifest::sign(&bytes, key);
        for (name, data) in [
            ("manifest.json", &bytes[..]),
            ("manifest.sig", &sig[..]),
            ("signing-key.pub", public_pem.as_bytes()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, data).map_err(StageError::io(&path))?;
        }
        Ok(())
    };

    let disk_artifacts = run.stage("iso", || {
        // The ISO carries the disk with a manifest of its own, covering what is on the ISO.
        let image_dir = work.join("iso-image");
        std::fs::create_dir_all(&image_dir).map_err(StageError::io(&image_dir))?;
        let disk_artifacts = artifacts(out, &["disk.raw", "disk.bmap"], &[])?;
        let disk_manifest = make_manifest(&map, disk_artifacts.clone());
        write_signed(&image_dir, &disk_manifest)?;
        let files = ["manifest.json", "manifest.sig", "signing-key.pub"].map(|n| image_dir.join(n));
        let bmap_path = out.join("disk.bmap");
        let parts = iso::IsoParts {
            installer_uki: &installer_uki,
            image_files: vec![
                ("disk.raw", disk.as_path()),
                ("disk.bmap", bmap_path.as_path()),
                ("manifest.json", files[0].as_path()),
                ("manifest.sig", files[1].as_path()),
                ("signing-key.pub", files[2].as_path()),
            ],
            version: &spec.version,
            epoch,
        };
        iso::run(&parts, &work, out)?;
        Ok((disk_artifacts, false))
    })?;

    let all = run.stage("manifest", || {
        std::fs::remove_dir_all(&work).map_err(StageError::io(&work))?;
        // disk.raw and disk.bmap were hashed for the ISO's manifest already.
        let all = artifacts(out, &[], &disk_artifacts)?;
        write_signed(out, &make_manifest(&map, all.clone()))?;
        Ok((all, false))
    })?;

    Ok(BuildSummary {
        out: out.to_owned(),
        version: spec.version.clone(),
        kernel: kernel.version.clone(),
        root_hash: root.root_hash_hex.clone(),
        boards,
        ephemeral_key: false,
        artifacts: all,
        stages: run.reports,
        seconds: 0.0,
    })
}

/// Every file below `dir` (or only `only`, when given), with size and sha256, sorted by path.
/// Files in `known` are not read again.
fn artifacts(dir: &Path, only: &[&str], known: &[Artifact]) -> Result<Vec<Artifact>, StageError> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StageError> {
        for entry in std::fs::read_dir(dir).map_err(StageError::io(dir))? {
            let path = entry.map_err(StageError::io(dir))?.path();
            if path.is_dir() {
                walk(base, &path, out)?;
            } else {
                out.push(path.strip_prefix(base).expect("below base").to_owned());
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let skip = ["manifest.json", "manifest.sig", "signing-key.pub"];
    let mut out = Vec::new();
    for rel in files {
        let name = rel.to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) || (!only.is_empty() && !only.contains(&name.as_str())) {
            continue;
        }
        if let Some(a) = known.iter().find(|a| a.path == name) {
            out.push(a.clone());
            continue;
        }
        let path = dir.join(&rel);
        let size = std::fs::metadata(&path).map_err(StageError::io(&path))?.len();
        let sha256 = sha256_file(&path).map_err(StageError::io(&path))?;
        out.push(Artifact { path: name, size, sha256 });
    }
    Ok(out)
}
