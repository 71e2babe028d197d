//! Which certificate the console presents. The pair's own (derived from the pair key, the same
//! on both nodes) unless the operator uploaded one (kept in the pair's document, so both nodes
//! present it too). The choice is made at each handshake from the document, read again at most
//! every two seconds, so an upload takes effect on both nodes without a restart. Console to
//! console, the nodes keep speaking on a port of their own with the derived certificate, which
//! each pins ([`super::peer`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use pairos_mirror::document::{PairConfig, UploadedTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

const LOOK_EVERY: Duration = Duration::from_secs(2);

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A chain and key the operator gave, checked: PEM certificates (the server's first), a PEM
/// private key that rustls can sign with, and the key must be the first certificate's.
pub fn check(t: &UploadedTls) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(t.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("cert_pem: {e:?}: expected PEM certificates"))?;
    if chain.is_empty() {
        anyhow::bail!("cert_pem: no certificate in it (expected -----BEGIN CERTIFICATE-----)");
    }
    let key = PrivateKeyDer::from_pem_slice(t.key_pem.as_bytes()).map_err(|e| {
        anyhow::anyhow!("key_pem: {e:?}: expected a PEM private key (PKCS#8, PKCS#1 or SEC1)")
    })?;
    let key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| anyhow::anyhow!("key_pem: {e}: expected an RSA, ECDSA or Ed25519 private key"))?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().context("the private key (key_pem) is not the certificate's")?;
    Ok(certified)
}

/// The derived certificate as rustls takes it.
pub fn derived(cert: &super::certificate::Certificate) -> anyhow::Result<Arc<CertifiedKey>> {
    let key = PrivateKeyDer::Pkcs8(cert.key_der.clone().into());
    Ok(Arc::new(CertifiedKey::from_der(vec![cert.cert_der.clone().into()], key, &provider())?))
}

/// Picks the certificate for each handshake.
#[derive(Debug)]
pub struct Resolver {
    derived: Arc<CertifiedKey>,
    state_dir: PathBuf,
    /// The uploaded one as last read (none: the derived one), and when.
    current: Mutex<(Option<Arc<CertifiedKey>>, Option<UploadedTls>, Instant)>,
    say: fn(String),
}

impl Resolver {
    pub fn new(derived: Arc<CertifiedKey>, state_dir: PathBuf, say: fn(String)) -> Resolver {
        let stale = Instant::now().checked_sub(LOOK_EVERY * 2).unwrap_or_else(Instant::now);
        Resolver { derived, state_dir, current: Mutex::new((None, None, stale)), say }
    }

    /// The certificate presented now, and the DER of its first certificate.
    pub fn now(&self) -> Arc<CertifiedKey> {
        let mut c = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.2.elapsed() >= LOOK_EVERY {
            let uploaded = PairConfig::load(&self.state_dir).ok().and_then(|d| d.console).and_then(|c| c.tls);
            if uploaded != c.1 {
                c.0 = match uploaded.as_ref().map(check) {
                    Some(Ok(k)) => {
                        (self.say)("console: presenting the uploaded certificate".into());
                        Some(Arc::new(k))
                    }
                    Some(Err(e)) => {
                        (self.say)(format!("console: the uploaded certificate is not usable ({e:#}): presenting the pair's own"));
                        None
                    }
                    None => None,
                };
                c.1 = uploaded;
            }
            c.2 = Instant::now();
        }
        c.0.clone().unwrap_or_else(|| self.derived.clone())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair_cert() -> super::super::certificate::Certificate {
        let key = pairos_recovery::trust::PairKey::from_hex(&"11".repeat(32)).expect("hex");
        super::super::certificate::derive(&key, "p", &["10.0.0.1".into()]).expect("derives")
    }

    #[test]
    fn an_upload_must_be_a_certificate_and_its_own_key() {
        let a = pair_cert();
        let pem = super::super::certificate::pem(&a.cert_der);
        let other = pairos_recovery::trust::PairKey::from_hex(&"22".repeat(32)).expect("hex");
        let b = super::super::certificate::derive(&other, "p", &["10.0.0.1".into()]).expect("derives");
        let key_pem = |der: &[u8]| {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
        };
        assert!(check(&UploadedTls { cert_pem: pem.clone(), key_pem: key_pem(&a.key_der) }).is_ok());
        let e = check(&UploadedTls { cert_pem: pem.clone(), key_pem: key_pem(&b.key_der) })
            .expect_err("not its key");
        assert!(format!("{e:#}").contains("key"), "{e:#}");
        let e = check(&UploadedTls { cert_pem: "hello".into(), key_pem: key_pem(&a.key_der) })
            .expect_err("no cert");
        assert!(format!("{e:#}").contains("cert_pem"), "{e:#}");
        let e = check(&UploadedTls { cert_pem: pem, key_pem: "nope".into() }).expect_err("no key");
        assert!(format!("{e:#}").contains("key_pem"), "{e:#}");
    }

    #[test]
    fn the_resolver_follows_the_document() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = pair_cert();
        let r = Resolver::new(derived(&a).expect("derived"), dir.path().to_owned(), |_| {});
        assert_eq!(r.now().cert[0].as_ref(), a.cert_der.as_slice(), "none uploaded: the derived one");
    }
}
