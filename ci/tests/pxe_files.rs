//! `pairos pxe`'s TFTP and HTTP against real clients (tftp-hpa, atftp, curl) in network
//! namespaces: files arrive byte-identical, with every option we offer; nothing escapes the boot
//! folder by `..`, absolute paths or symlinks; writes are refused; nothing is served on another
//! interface.

use std::path::Path;

use pairos_lab::pxe::{sample_pxe_root, start_pxe};
use pairos_lab::{Endpoint, Lab, LabError};

const SERVER: &str = "10.77.0.1";

fn same(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Runs a client in `who`'s namespace; (succeeded, stdout and stderr).
fn client(who: &Endpoint, program: &str, args: &[&str]) -> (bool, String) {
    match who.ns.cmd(program).args(args).run_text() {
        Ok(text) => (true, text),
        Err(e) => (false, e.to_string()),
    }
}

#[test]
fn tftp_and_http_serve_exact_bytes_inside_the_boot_folder_only() -> Result<(), LabError> {
    let mut lab = Lab::new("pxe-files")?;
    let server = lab.endpoint("private", "srv", &format!("{SERVER}/24"))?;
    lab.attach(&server.ns, "public", "eth1", Some("10.78.0.1/24"))?;
    let cli = lab.endpoint("private", "cli", "10.77.0.50/24")?;
    let outsider = lab.endpoint("public", "pub", "10.78.0.50/24")?;
    let root = lab.dir().join("pxe");
    sample_pxe_root(&root, 3 << 20).expect("pxe root");
    let secret = lab.dir().join("secret");
    std::fs::write(&secret, "not for clients").expect("secret");
    std::os::unix::fs::symlink(&secret, root.join("escape")).expect("symlink");
    std::os::unix::fs::symlink("big.bin", root.join("alias.bin")).expect("symlink");
    let leases = lab.dir().join("leases.json");
    let args = ["--lease-file", leases.to_str().expect("utf8")];
    let _pxe = start_pxe(&server, &root, &args, &lab.dir().join("pxe.log"))?;
    let big = root.join("big.bin");
    let got = |name: &str| lab.dir().join(name);

    // tftp-hpa, plain RFC 1350 (512-byte blocks, no options): 6,144 blocks.
    let (ok, out) = client(
        &cli,
        "tftp",
        &["-m", "binary", SERVER, "-c", "get", "big.bin", got("hpa.bin").to_str().expect("utf8")],
    );
    assert!(ok && same(&big, &got("hpa.bin")), "tftp-hpa: {out}");
    // A leading slash is the folder's root, as PXE firmware sends it.
    let (ok, out) = client(
        &cli,
        "tftp",
        &["-m", "binary", SERVER, "-c", "get", "/ipxe/undionly.kpxe", got("k").to_str().expect("utf8")],
    );
    assert!(ok && same(&root.join("ipxe/undionly.kpxe"), &got("k")), "tftp-hpa: {out}");

    // curl with blksize and tsize, at a block size that needs IP fragments and one that does not.
    for blksize in ["1468", "8192"] {
        let out_file = got(&format!("curl-{blksize}.bin"));
        let (ok, out) = client(
            &cli,
            "curl",
            &[
                "-sS",
                "--tftp-blksize",
                blksize,
                "-o",
                out_file.to_str().expect("utf8"),
                &format!("tftp://{SERVER}/big.bin"),
            ],
        );
        assert!(ok && same(&big, &out_file), "curl blksize {blksize}: {out}");
    }

    // atftp with a window of 8 blocks (RFC 7440) and blksize: the windowed sender.
    let (ok, out) = client(
        &cli,
        "atftp",
        &[
            "--option",
            "windowsize 8",
            "--option",
            "blksize 1428",
            "--option",
            "tsize 0",
            "-g",
            "-r",
            "alias.bin",
            "-l",
            got("atftp.bin").to_str().expect("utf8"),
            SERVER,
        ],
    );
    assert!(ok && same(&big, &got("atftp.bin")), "atftp windowsize 8: {out}");

    // Escapes are refused, by every client, and never deliver the secret.
    for (name, how) in [("../secret", "parent"), ("escape", "symlink"), ("ipxe/../../secret", "parent")] {
        let f = got(&format!("hpa-{how}"));
        let (ok, out) =
            client(&cli, "tftp", &["-m", "binary", SERVER, "-c", "get", name, f.to_str().expect("utf8")]);
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(!text.contains("not for clients"), "tftp-hpa got {name}: {ok} {out}");
        assert!(
            out.contains("outside the boot folder") || out.contains("Access violation") || !ok,
            "{name}: {out}"
        );
        let (ok, out) = client(&cli, "atftp", &["-g", "-r", name, "-l", f.to_str().expect("utf8"), SERVER]);
        assert!(
            !ok || !std::fs::read_to_string(&f).unwrap_or_default().contains("not for clients"),
            "atftp {name}: {out}"
        );
    }
    let (ok, out) = client(&cli, "curl", &["-sS", "--path-as-is", &format!("tftp://{SERVER}/../secret")]);
    assert!(!ok && !out.contains("not for clients"), "curl tftp ..: {out}");
    let (ok, out) = client(&cli, "curl", &["-sS", &format!("tftp://{SERVER}//etc/passwd")]);
    assert!(!ok && !out.contains("root:"), "absolute path: {out}");

    // Read-only: a write is refused and creates nothing.
    let (_, out) =
        client(&cli, "tftp", &["-m", "binary", SERVER, "-c", "put", big.to_str().expect("utf8"), "new.bin"]);
    assert!(out.contains("read-only"), "tftp put: {out}");
    assert!(!root.join("new.bin").exists());

    // HTTP: whole files, ranges, HEAD, the generated local-boot scripts.
    let url = |p: &str| format!("http://{SERVER}/{p}");
    let (ok, out) =
        client(&cli, "curl", &["-sSf", "-o", got("http.bin").to_str().expect("utf8"), &url("big.bin")]);
    assert!(ok && same(&big, &got("http.bin")), "curl http: {out}");
    let (ok, out) = client(
        &cli,
        "curl",
        &[
            "-sSf",
            "-r",
            "1000-1999",
            "-o",
            got("range.bin").to_str().expect("utf8"),
            "-w",
            "%{http_code}",
            &url("big.bin"),
        ],
    );
    let bytes = std::fs::read(&big).expect("big");
    assert!(ok && out.trim() == "206", "range: {out}");
    assert_eq!(std::fs::read(got("range.bin")).expect("range"), bytes[1000..2000]);
    let (ok, out) = client(&cli, "curl", &["-sSfI", &url("big.bin")]);
    assert!(ok && out.to_lowercase().contains(&format!("content-length: {}", bytes.len())), "HEAD: {out}");
    assert!(out.to_lowercase().contains("accept-ranges: bytes"), "HEAD: {out}");
    let (ok, out) = client(&cli, "curl", &["-sSf", &url("localboot-bios.ipxe")]);
    assert!(ok && out.contains("sanboot"), "localboot-bios: {out}");
    let (ok, out) = client(&cli, "curl", &["-sSf", &url("localboot-uefi.ipxe")]);
    assert!(ok && out.contains("\nexit 1\n"), "localboot-uefi: {out}");
    for (path, code) in [
        ("../secret", "403"),
        ("%2e%2e/secret", "403"),
        ("escape", "403"),
        ("nothing", "404"),
        ("ipxe", "403"),
    ] {
        let (_, out) = client(
            &cli,
            "curl",
            &["-sS", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", &url(path)],
        );
        assert_eq!(out.trim(), code, "GET /{path}");
    }

    // Nothing is served on the other interface, though the address is routable from there: the
    // outsider reaches the server's private address (the kernel answers its ping), and only the
    // services' binding to the private interface keeps them silent.
    outsider.ns.ip(&["route", "add", "10.77.0.0/24", "dev", "eth0"])?;
    let (ok, out) = client(&outsider, "ping", &["-c", "1", "-W", "3", SERVER]);
    assert!(ok, "the outsider cannot reach {SERVER} at all, so the checks below would prove nothing: {out}");
    let (ok, out) = client(
        &outsider,
        "curl",
        &["-sS", "--max-time", "3", &format!("tftp://{SERVER}/big.bin"), "-o", "/dev/null"],
    );
    assert!(!ok, "TFTP answered on the other interface: {out}");
    let (ok, out) =
        client(&outsider, "curl", &["-sS", "--max-time", "3", &url("big.bin"), "-o", "/dev/null"]);
    assert!(!ok, "HTTP answered on the other interface: {out}");
    Ok(())
}
