//! The console's TLS certificate, derived from the pair key: both nodes hold the key, so both
//! make the same certificate (byte for byte), and a browser that trusted the pair's address
//! before a failover trusts it after. The key is a P-256 key (what every browser speaks) whose
//! scalar is an HMAC of the pair key; the self-signature is deterministic ECDSA (RFC 6979), and
//! the serial number and validity are fixed, so nothing random enters.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePrivateKey;
use pairos_recovery::trust::PairKey;
use sha2::{Digest, Sha256};

/// The certificate and its private key, DER, as rustls takes them.
pub struct Certificate {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    /// SHA-256 of the public key's SubjectPublicKeyInfo, base64: what key pinning (and
    /// Chromium's `--ignore-certificate-errors-spki-list`) names.
    pub spki_sha256: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Certificate({})", fingerprint(&self.cert_der))
    }
}

/// Signs for rcgen with the derived key.
struct Derived {
    key: SigningKey,
    public: Vec<u8>,
}

impl rcgen::RemoteKeyPair for Derived {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature: DerSignature = self.key.sign(msg);
        Ok(signature.as_bytes().to_vec())
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// The P-256 key of the pair's console: the first HMAC of the pair key (purpose
/// `console-tls-N`) that is a valid scalar (all but a 2^-32 chance take the first).
fn signing_key(pair_key: &PairKey) -> SigningKey {
    (0u32..)
        .find_map(|n| SigningKey::from_slice(&pair_key.tag(&format!("console-tls-{n}"), &[])).ok())
        .expect("some HMAC is a valid P-256 scalar")
}

/// The pair's console certificate: for `pair_id` (its common name), valid from 2025 to 2050,
/// for the names and addresses given (the pair's address, the nodes' management addresses).
pub fn derive(pair_key: &PairKey, pair_id: &str, names: &[String]) -> anyhow::Result<Certificate> {
    let key = signing_key(pair_key);
    let public = key.verifying_key().to_encoded_point(false).as_bytes().to_vec();
    let key_der = key.to_pkcs8_der().map_err(|e| anyhow::anyhow!("encoding the console key: {e}"))?;
    let spki = {
        use base64::Engine;
        use p256::pkcs8::EncodePublicKey;
        let der =
            key.verifying_key().to_public_key_der().map_err(|e| anyhow::anyhow!("the console key: {e}"))?;
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der.as_bytes()))
    };
    let key_pair = rcgen::KeyPair::from_remote(Box::new(Derived { key, public }))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("pairos console of pair {pair_id}"));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "pairos");
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2050, 1, 1);
    let serial = Sha256::digest(pair_id.as_bytes());
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial[..16]));
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key_pair)?;
    Ok(Certificate { cert_der: cert.der().to_vec(), key_der: key_der.as_bytes().to_vec(), spki_sha256: spki })
}

/// SHA-256 of the certificate, as browsers show it: `AB:CD:...`.
pub fn fingerprint(cert_der: &[u8]) -> String {
    Sha256::digest(cert_der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The certificate as PEM.
pub fn pem(cert_der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert_der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// The names a pair's certificate covers: its address and the nodes' management addresses.
pub fn names(pair_address: Option<&str>, management: &[String]) -> Vec<String> {
    let mut names: Vec<String> = pair_address.into_iter().map(str::to_owned).collect();
    for m in management {
        if !names.contains(m) {
            names.push(m.clone());
        }
    }
    names.push("localhost".into());
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PairKey {
        PairKey::from_hex(&format!("{byte:02x}").repeat(32)).expect("hex")
    }

    #[test]
    fn both_nodes_derive_the_same_certificate_and_another_pair_another() {
        let names = names(Some("192.168.50.10"), &["192.168.50.11".into(), "192.168.50.12".into()]);
        let a = derive(&key(7), "pair-x", &names).expect("derives");
        let b = derive(&key(7), "pair-x", &names).expect("derives");
        assert_eq!(a.cert_der, b.cert_der);
        assert_eq!(a.key_der, b.key_der);
        let other = derive(&key(8), "pair-x", &names).expect("derives");
        assert_ne!(fingerprint(&a.cert_der), fingerprint(&other.cert_der));
        assert_eq!(fingerprint(&a.cert_der).len(), 32 * 3 - 1);
    }

    #[test]
    fn rustls_accepts_the_derived_certificate_and_key() {
        let c = derive(&key(9), "pair-y", &names(Some("10.0.0.1"), &[])).expect("derives");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![c.cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(c.key_der.clone().into()),
            );
        assert!(config.is_ok(), "{config:?}");
        // openssl reads it as an X.509 certificate with our names.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("cert.der");
        std::fs::write(&path, &c.cert_der).expect("write");
        let out = std::process::Command::new("openssl")
            .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&path)
            .output()
            .expect("openssl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("IP Address:10.0.0.1"), "{text}");
        assert!(text.contains("pairos console of pair pair-y"), "{text}");
        assert!(text.contains("ecdsa-with-SHA256"), "{text}");
        // The pin is openssl's SHA-256 of the public key's DER.
        let pin = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl x509 -inform DER -in {} -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64",
                path.display()
            ))
            .output()
            .expect("openssl runs");
        assert_eq!(String::from_utf8_lossy(&pin.stdout).trim(), c.spki_sha256);
    }
}
