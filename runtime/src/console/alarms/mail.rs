//! A mail: SMTP, upgraded with STARTTLS (required when asked for) and logged in when a user is
//! set; the server's certificate checked against the system's CAs and the one given.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use pairos_mirror::document::MailDestination;

use super::Notice;

pub fn message(m: &MailDestination, n: &Notice) -> Result<Message, String> {
    let mut b = Message::builder()
        .from(m.from.parse().map_err(|e| format!("from {:?}: {e}", m.from))?)
        .subject(n.subject())
        .header(ContentType::TEXT_PLAIN);
    for to in &m.to {
        b = b.to(to.parse().map_err(|e| format!("to {to:?}: {e}"))?);
    }
    let body = format!(
        "pair: {}\nnode: {}\nseverity: {}\nalarm: {}\nid: {}\ntime: {} (seconds since 1970)\n",
        n.pair, n.node, n.severity, n.text, n.id, n.time
    );
    b.body(body).map_err(|e| format!("the message: {e}"))
}

pub fn send(m: &MailDestination, n: &Notice) -> Result<(), String> {
    let message = message(m, n)?;
    let tls = if m.starttls {
        let mut p = TlsParameters::builder(m.server.clone());
        if let Some(pem) = &m.ca_pem {
            p = p.add_root_certificate(
                Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("ca_pem: {e}"))?,
            );
        }
        Tls::Required(p.build_rustls().map_err(|e| format!("TLS for {}: {e}", m.server))?)
    } else {
        Tls::None
    };
    let mut t = SmtpTransport::builder_dangerous(&m.server)
        .port(m.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(10)));
    if let (Some(user), Some(password)) = (&m.user, &m.password) {
        t = t.credentials(Credentials::new(user.clone(), password.clone()));
    }
    t.build().send(&message).map(|_| ()).map_err(|e| format!("SMTP {}:{}: {e}", m.server, m.port))
}
