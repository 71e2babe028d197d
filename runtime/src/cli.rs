//! The whole command line of `pairos`, and nothing else: noun-verb subcommands, help on every
//! argument. Handlers live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pairos",
    version,
    about = "Two servers, one highly available unit",
    long_about = "pairos turns two identical certified servers into one highly available unit.\n\
                  Exit codes: 0 success, 1 a negative answer (e.g. not certified), 2 error.",
    propagate_version = true
)]
pub struct Cli {
    /// Run `pair status`, `pair switchover` or `pair maintenance` against the pair's console at
    /// this address (`https://ADDRESS`) instead of this node; the password comes from
    /// $PAIROS_PASSWORD or standard input. Given before the command (`pairos --pair URL pair
    /// status`): `pairos install --pair` is another option.
    #[arg(long, value_name = "URL")]
    pub pair: Option<String>,
    /// The pair's certificate (PEM or DER; `pairos console fingerprint --pem` prints it): the
    /// only one trusted with --pair.
    #[arg(long, value_name = "FILE", env = "PAIROS_PAIR_CERT")]
    pub pair_cert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Certified hardware: list and show board profiles, check this machine.
    #[command(subcommand)]
    Boards(BoardsCommand),
    /// Build the node OS image: disk.raw (+ disk.bmap), the PXE set, the ISO, and the signed manifest.
    Build(BuildArgs),
    /// Serve network boot on one interface: DHCP (or proxyDHCP), TFTP and HTTP.
    Pxe(PxeArgs),
    /// Write the signed image to a disk or a disk image file, verified chunk by chunk, resumable.
    Install(InstallArgs),
    /// The pair runtime: started by the initramfs as the node's first process.
    Run(RunArgs),
    /// What this running node says about itself and its peer (a recovering peer's progress too).
    Status(StatusArgs),
    /// The pair's membership: approve a newcomer, forget a peer, set how newcomers enrol.
    #[command(subcommand)]
    Pair(PairCommand),
    /// The pair's mirrored volumes: made on the primary, replicated to the peer by DRBD.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// The pair's workloads: the programs the primary runs on the volumes, behind the pair's
    /// address. Defined on the primary; the peer follows.
    #[command(subcommand)]
    Workload(WorkloadCommand),
    /// The pair's web console and API (HTTPS at the pair's address): serve it, set its password,
    /// show its certificate.
    #[command(subcommand)]
    Console(ConsoleCommand),
    /// The witness a customer runs on any third Linux box: it grants one node of a pair at a
    /// time a lease, so that a node whose peer went silent may take over without a fence.
    #[command(subcommand)]
    Witness(WitnessCommand),
    /// Early boot: what the initramfs runs as /init (normally started by the kernel, not by hand).
    #[command(hide = true)]
    Init,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build spec (TOML); without it, the embedded default spec builds the default image.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Output folder; replaced as a whole when the build succeeds, untouched when it fails.
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// ed25519 private key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`). Without it a
    /// throw-away development key signs the image.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// A lab build: allows the public test key in ci/keys/ to sign it. Without it that key is
    /// refused, since anyone can sign with it.
    #[arg(long)]
    pub lab: bool,
    /// Stage cache (results keyed by the digest of their inputs) [default: ~/.cache/pairos/build].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Print a JSON summary on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PxePolicy {
    /// Serve the recovery boot to every network-booting client.
    Recover,
    /// Tell every network-booting client to boot its local disk.
    Local,
    /// Answer no network-booting client (plain DHCP clients still get addresses).
    Ignore,
}

#[derive(Debug, Args)]
pub struct PxeArgs {
    /// The interface to serve on; nothing is answered on any other.
    #[arg(long, value_name = "IF")]
    pub interface: String,
    /// The PXE set to serve (`pxe/` of a `pairos build` output).
    #[arg(long, value_name = "DIR", required_unless_present = "check")]
    pub root: Option<PathBuf>,
    /// Serve nothing: ask, as a DHCP client would, whether a DHCP server answers on the
    /// interface, and say which. Exit 0 if none answers, 1 if one does.
    #[arg(long)]
    pub check: bool,
    /// With --check, print the answer as JSON.
    #[arg(long, requires = "check")]
    pub json: bool,
    /// What network-booting clients are told.
    #[arg(long, value_enum, default_value = "recover")]
    pub policy: PxePolicy,
    /// Address pool as FIRST-LAST [default: .100 to .199 of the interface's /24].
    #[arg(long, value_name = "FIRST-LAST")]
    pub pool: Option<String>,
    /// Where leases are kept across restarts.
    #[arg(long, value_name = "FILE", default_value = "/var/lib/pairos/pxe-leases.json")]
    pub lease_file: PathBuf,
    /// Lease time in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "3600")]
    pub lease_secs: u32,
    /// The HTTP port: iPXE scripts, kernel and initramfs, the recovery UKI.
    #[arg(long, value_name = "PORT", default_value = "80")]
    pub http_port: u16,
    /// The TFTP port (firmware PXE loads iPXE from it).
    #[arg(long, value_name = "PORT", default_value = "69")]
    pub tftp_port: u16,
    /// ProxyDHCP: another server on the link gives addresses; only add the boot information
    /// (ports 67 and 4011). No address is ever offered, and --pool and leases are not used.
    #[arg(long, conflicts_with_all = ["pool"])]
    pub proxy: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The image: a build output folder (or the ISO's /image), or an http:// URL serving one.
    #[arg(long, value_name = "DIR|URL")]
    pub image: String,
    /// The target: a block device, or a disk image file (created at the image's size if missing).
    #[arg(long, value_name = "PATH")]
    pub disk: std::path::PathBuf,
    /// The public key that must have signed the manifest [default: the one built into this
    /// image, /etc/pairos/signing-key.pub or /usr/share/pairos/signing-key.pub].
    #[arg(long, value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
    /// Wipe a disk that holds foreign data. Without it such a disk is refused and left as it is.
    #[arg(long)]
    pub allow_foreign: bool,
    /// The pair the disk belongs to: a pairos disk of this pair keeps its state and data
    /// partitions; one of another pair is foreign [default: the --node-config file's pair, or
    /// none, so that a disk with any pair's identity is refused].
    #[arg(long, value_name = "PAIR_ID")]
    pub pair: Option<String>,
    /// The resume record [default: DISK.pairos-write for a file, /run/pairos/DEVICE.pairos-write
    /// for a block device].
    #[arg(long, value_name = "FILE")]
    pub journal: Option<std::path::PathBuf>,
    /// Preload the node's identity (and management network) into its state partition: JSON
    /// with pair_id, node_name, peer_name and optionally management {address, prefix,
    /// gateway, dns}. For partners who ship a node configured.
    #[arg(long, value_name = "FILE")]
    pub node_config: Option<std::path::PathBuf>,
    /// Chunks fetched at once, 1 to 64 (memory: 4 MiB each).
    #[arg(long, value_name = "N", default_value = "4",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub parallel: u64,
    /// At most this many MiB a second, 1 to 1048576 (spares the peer that serves the image).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_rate: Option<u64>,
    /// Write an image older than the one the disk holds. Without it a downgrade is refused: a
    /// validly signed old image may have a known hole.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Print the writer's events as JSON lines on stdout (progress on stderr stays).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Do not open the root shell on the console (for tests of the runtime alone).
    #[arg(long)]
    pub no_console: bool,
    /// Do not bring up the private link or serve the peer (for tests of the runtime alone).
    #[arg(long)]
    pub no_services: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The status file the runtime writes.
    #[arg(long, value_name = "FILE", default_value = crate::pair::status::STATUS_FILE)]
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PairCommand {
    /// Let the newcomer with this private-link MAC enrol (when enrolment is `approve`), or let a
    /// node held after two imagings within the hour be offered recovery again.
    Approve(PairMacArgs),
    /// Forget a remembered peer: when it network-boots while the pair misses a node, it is
    /// treated as a newcomer and offered recovery.
    ForgetPeer(PairMacArgs),
    /// How newcomers enrol: `auto` (zero touch, the default) or `approve` (the operator
    /// approves each one with `pairos pair approve MAC`).
    Enrolment(EnrolmentArgs),
    /// The pair daemon: heartbeats on both links, roles, fencing and the pair's address (the
    /// node runs it; tests run it in a network namespace).
    Run(PairRunArgs),
    /// Both nodes as this one sees them: roles, epoch, links, health, alarms, the last role
    /// changes and why they happened.
    Status(PairStatusArgs),
    /// Hand the primary role to the peer (on the primary; the peer must be live).
    Switchover(PairControlArgs),
    /// `on`: no automatic moves (a dead primary is still replaced); `off`: moves again.
    Maintenance(MaintenanceArgs),
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Make a volume on the pair (on the primary): a logical volume of SIZE on each node and a
    /// DRBD resource between them. The peer makes its side within seconds.
    Create(VolumeCreateArgs),
    /// Grow a volume of the pair to SIZE (on the primary): both nodes extend their logical
    /// volume, then DRBD takes the new size; the file system on it is the user's to grow.
    Grow(VolumeCreateArgs),
    /// Remove a volume of the pair (on the primary), its data on both nodes with it: refused
    /// without --discard-data, and while the volume is in use.
    Remove(VolumeRemoveArgs),
    /// The pair's volumes: device, role, disk states on both nodes, connection, sync.
    List(VolumeListArgs),
    /// DRBD's fence-peer handler (DRBD runs it when a volume's peer is lost): asks the pair
    /// daemon until the peer's side is outdated over the public network (exit 4; 3 if it is
    /// inconsistent, 6 if it is primary) or the peer is confirmed off (exit 7); exit 1 if
    /// neither is known in time, and DRBD keeps the writes frozen.
    FencePeer(VolumeFencePeerArgs),
    /// DRBD's split-brain handler (DRBD runs it when both sides of a volume wrote apart): tells
    /// the volume manager, which keeps the primary's data and this node's divergent data in a
    /// snapshot.
    #[command(hide = true)]
    SplitBrain(VolumeHandlerArgs),
    /// DRBD's before-resync-target handler (DRBD runs it on the node about to become a resync's
    /// target): asks the pair daemon, and exits 1, so that DRBD drops the connection, while
    /// this node acts as primary or the daemon cannot be asked.
    #[command(hide = true)]
    BeforeResyncTarget(VolumeHandlerArgs),
}

/// What DRBD's handlers are given.
#[derive(Debug, Args)]
pub struct VolumeHandlerArgs {
    /// The volume (DRBD sets DRBD_RESOURCE).
    #[arg(long, env = "DRBD_RESOURCE", value_name = "NAME")]
    pub resource: String,
    /// The pair daemon's run folder.
    #[arg(long, value_name = "DIR", default_value = "/run/pairos")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct VolumeFencePeerArgs {
    /// The volume (DRBD sets DRBD_RESOURCE).
    #[arg(long, env = "DRBD_RESOURCE", value_name = "NAME")]
    pub resource: String,
    /// How long to keep asking, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub within: u64,
    /// The pair daemon's run folder.
    #[arg(long, value_name = "DIR", default_value = "/run/pairos")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct VolumeRemoveArgs {
    /// The volume to remove.
    pub name: String,
    /// Yes: the volume's data on both nodes is lost.
    #[arg(long)]
    pub discard_data: bool,
    #[command(flatten)]
    pub at: VolumeFolders,
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// 1 to 32 of a-z, 0-9 and -, starting with a letter.
    pub name: String,
    /// Its size: 256M, 1G, 1.5GiB (binary units; rounded up to 4 MiB).
    pub size: String,
    #[command(flatten)]
    pub at: VolumeFolders,
}

#[derive(Debug, Args)]
pub struct VolumeListArgs {
    #[command(flatten)]
    pub at: VolumeFolders,
}

/// Where `pairos volume` and `pairos workload` read and write on a node, and how they print.
#[derive(Debug, Args)]
pub struct VolumeFolders {
    /// The node's state folder (the pair's configuration).
    #[arg(long, value_name = "DIR", default_value = "/state/pairos")]
    pub state: PathBuf,
    /// The pair daemon's run folder (its status and the volume manager's view).
    #[arg(long, value_name = "DIR", default_value = "/run/pairos")]
    pub run_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Add a workload to the pair from its definition (TOML; see `pairos workload example`),
    /// on the primary. Everything is checked first: a definition with any mistake is refused
    /// whole, and the pair is not touched.
    Add(WorkloadAddArgs),
    /// Print an example definition, every field explained.
    Example,
    /// The pair's workloads, in the order they start.
    List(VolumeListArgs),
    /// Remove a workload from the pair (on the primary).
    Remove(WorkloadRemoveArgs),
    /// The last lines a workload printed on this node (its log is kept in the state
    /// partition, bounded and rotated).
    Logs(WorkloadLogsArgs),
    /// Restart a workload on the primary (stop timeout, then kill; started again and waited
    /// for until healthy). A failed workload is started again too; its restart budget is not
    /// spent.
    Restart(WorkloadRestartArgs),
}

#[derive(Debug, Args)]
pub struct WorkloadRestartArgs {
    /// The workload's name.
    pub name: String,
    /// How long to wait for it to be healthy again, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u64,
    #[command(flatten)]
    pub at: VolumeFolders,
}

#[derive(Debug, Args)]
pub struct WorkloadLogsArgs {
    /// The workload's name.
    pub name: String,
    /// How many lines.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub lines: usize,
    /// The node's state folder (where the logs are).
    #[arg(long, value_name = "DIR", default_value = "/state/pairos")]
    pub state: PathBuf,
}

#[derive(Debug, Args)]
pub struct WorkloadAddArgs {
    /// The definition (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace the workload of the same name.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub at: VolumeFolders,
}

#[derive(Debug, Args)]
pub struct WorkloadRemoveArgs {
    /// The workload's name.
    pub name: String,
    #[command(flatten)]
    pub at: VolumeFolders,
}

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Serve pairs that know the witness key (UDP), keeping their grants in the state folder.
    Run(WitnessRunArgs),
    /// Print a new witness key (64 hex digits) for the pair's settings and `run --key-file`.
    Key,
    /// What the witness kept: each pair's holder, epoch and lease.
    Status(WitnessStatusArgs),
}

#[derive(Debug, Args)]
pub struct WitnessRunArgs {
    /// Where to listen.
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "0.0.0.0:7470")]
    pub listen: std::net::SocketAddr,
    /// The witness key (64 hex digits; `pairos witness key` makes one).
    #[arg(long, value_name = "FILE", default_value = "/etc/pairos/witness.key")]
    pub key_file: PathBuf,
    /// Where the grants are kept (fsynced before a grant that changes the holder is answered).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/pairos-witness")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct WitnessStatusArgs {
    /// The witness's state folder (as given to `run`).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/pairos-witness")]
    pub state_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PairRunArgs {
    /// The daemon's configuration (TOML: node, peer, links, pair address, fence, timing).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct PairStatusArgs {
    /// The daemon's run folder (its status file and control socket).
    #[arg(long, value_name = "DIR", default_value = "/run/pairos")]
    pub run_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PairControlArgs {
    /// The daemon's run folder (its status file and control socket).
    #[arg(long, value_name = "DIR", default_value = "/run/pairos")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    /// `on`: no automatic moves; `off`: moves again.
    #[arg(value_enum)]
    pub state: OnOff,
    /// The daemon's run folder (its status file and control socket).
    #[arg(long, value_name = "DIR", default_value = "/run/pairos")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct PairMacArgs {
    /// A MAC address, aa:bb:cc:dd:ee:ff.
    pub mac: String,
    /// The node's state folder.
    #[arg(long, value_name = "DIR", default_value = crate::pair::identity::STATE_DIR)]
    pub state: PathBuf,
    /// Where approvals are kept until the next reboot.
    #[arg(long, value_name = "FILE", default_value = crate::pair::services::APPROVED_FILE)]
    pub approved: PathBuf,
}

#[derive(Debug, Args)]
pub struct EnrolmentArgs {
    /// `auto`: a newcomer enrols while the pair misses a node; `approve`: only once approved.
    #[arg(value_enum)]
    pub mode: EnrolmentMode,
    /// The node's state folder.
    #[arg(long, value_name = "DIR", default_value = crate::pair::identity::STATE_DIR)]
    pub state: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnrolmentMode {
    Auto,
    Approve,
}

#[derive(Debug, Subcommand)]
pub enum BoardsCommand {
    /// List the certified board profiles.
    List(ProfilesArgs),
    /// Show one board profile in full.
    Show(ShowArgs),
    /// Inventory this machine (or a captured tree) from sysfs and procfs.
    Probe(ProbeArgs),
    /// Check whether this machine is a certified board; exits 0 if certified, 1 if not, 2 on error.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// Read profiles from this folder of *.toml files instead of the built-in set.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The profile's name, as `pairos boards list` prints it.
    pub name: String,
    #[command(flatten)]
    pub profiles: ProfilesArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Read a captured tree (with sys/ and proc/ below it) instead of this machine's.
    #[arg(long, value_name = "ROOT", default_value = "/")]
    pub sysfs: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read a captured tree (with sys/ and proc/ below it) instead of this machine's.
    #[arg(long, value_name = "ROOT", default_value = "/")]
    pub sysfs: PathBuf,
    #[command(flatten)]
    pub profiles: ProfilesArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                assert!(
                    builtin || arg.get_help().is_some(),
                    "{} --{} has no help",
                    cmd.get_name(),
                    arg.get_id()
                );
            }
            for sub in cmd.get_subcommands() {
                assert!(sub.get_about().is_some(), "{} has no about", sub.get_name());
                walk(sub);
            }
        }
        walk(&super::Cli::command());
    }
}

#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Serve the console on the public port (`pairos run` keeps it running on a node).
    Serve(ConsoleServeArgs),
    /// Set the console password on the primary (read from standard input, one line); the peer
    /// follows the pair's document.
    Password(ConsolePasswordArgs),
    /// The console certificate's SHA-256 fingerprint (the same on both nodes), for the operator
    /// to compare with what the browser shows.
    Fingerprint(ConsoleFingerprintArgs),
}

#[derive(Debug, Args)]
pub struct ConsoleServeArgs {
    /// The pair's id (the certificate's common name).
    #[arg(long)]
    pub pair_id: String,
    /// The pair key (64 hexadecimal digits): the certificate and the sessions derive from it.
    #[arg(long, value_name = "FILE", default_value = "/state/pairos/pair.key")]
    pub key_file: PathBuf,
    #[command(flatten)]
    pub folders: VolumeFolders,
    /// The public port: the console listens on it alone. Without it, on every interface.
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:443")]
    pub listen: std::net::SocketAddr,
    /// A name or address the certificate covers (the pair's address, the nodes' management
    /// addresses); repeat it.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// The peer's console (`HOST:PORT`, its management address): the dashboard draws its parts.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsolePasswordArgs {
    #[command(flatten)]
    pub folders: VolumeFolders,
    /// Replace a password that is set already.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct ConsoleFingerprintArgs {
    /// The pair's id.
    #[arg(long)]
    pub pair_id: String,
    /// The pair key (64 hexadecimal digits) the certificate derives from.
    #[arg(long, value_name = "FILE", default_value = "/state/pairos/pair.key")]
    pub key_file: PathBuf,
    /// A name or address the certificate covers, as `pairos console serve` was given them.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the certificate itself (PEM), for `pairos --pair-cert`.
    #[arg(long, conflicts_with = "json")]
    pub pem: bool,
}
