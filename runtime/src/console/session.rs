//! Console sessions without server state: a session is a token signed with a key derived from
//! the pair key, so that the other node believes it after a failover and the operator stays
//! logged in. Each session has a CSRF token (also derived), which the page sends back in a
//! header with every change; a cross-site form can send the cookie but cannot read the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pairos_recovery::trust::PairKey;
use serde::{Deserialize, Serialize};

/// How long a session lasts after login.
pub const LIFETIME_SECS: u64 = 12 * 3600;
/// The session cookie's name.
pub const COOKIE: &str = "pairos_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-pairos-csrf";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Seconds since the Unix epoch.
    pub issued: u64,
    pub expires: u64,
    /// Makes every session's token its own.
    pub nonce: String,
}

/// Issues and checks tokens with the pair's key.
#[derive(Debug, Clone)]
pub struct Sessions {
    key: std::sync::Arc<PairKey>,
}

impl Sessions {
    pub fn new(key: PairKey) -> Sessions {
        Sessions { key: std::sync::Arc::new(key) }
    }

    /// A new session from `now`.
    pub fn issue(&self, now: u64) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce)?;
        let claims =
            Claims { issued: now, expires: now + LIFETIME_SECS, nonce: URL_SAFE_NO_PAD.encode(nonce) };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("serialises"));
        let tag = self.key.tag("console-session", &[body.as_bytes()]);
        Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// The claims of a token this pair signed and that has not expired at `now`.
    pub fn check(&self, token: &str, now: u64) -> Option<Claims> {
        let (body, tag) = token.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if !self.key.check("console-session", &[body.as_bytes()], &tag) {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (claims.issued <= now + 300 && now < claims.expires).then_some(claims)
    }

    /// The CSRF token of a session.
    pub fn csrf(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.key.tag("console-csrf", &[token.as_bytes()]))
    }

    /// Whether `csrf` is the session's CSRF token (in constant time).
    pub fn csrf_matches(&self, token: &str, csrf: &str) -> bool {
        URL_SAFE_NO_PAD.decode(csrf).is_ok_and(|t| self.key.check("console-csrf", &[token.as_bytes()], &t))
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(byte: u8) -> Sessions {
        Sessions::new(PairKey::from_hex(&format!("{byte:02x}").repeat(32)).expect("hex"))
    }

    #[test]
    fn a_token_holds_on_either_node_until_it_expires() {
        let (a, b) = (sessions(1), sessions(1));
        let t = a.issue(1000).expect("issues");
        assert!(b.check(&t, 1001).is_some(), "the peer, with the same key, believes it");
        assert!(b.check(&t, 1000 + LIFETIME_SECS).is_none(), "expired");
        assert!(sessions(2).check(&t, 1001).is_none(), "another pair's key");
        let mut forged = t.clone();
        forged.insert(3, 'x');
        assert!(a.check(&forged, 1001).is_none());
        assert!(a.check("", 1001).is_none() && a.check("a.b", 1001).is_none());
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let s = sessions(3);
        let (t1, t2) = (s.issue(5).expect("issues"), s.issue(5).expect("issues"));
        assert!(s.csrf_matches(&t1, &s.csrf(&t1)));
        assert!(!s.csrf_matches(&t2, &s.csrf(&t1)));
        assert!(!s.csrf_matches(&t1, "garbage!"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie("a=1; pairos_session=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie("pairos_sessionx=1", COOKIE), None);
    }
}
