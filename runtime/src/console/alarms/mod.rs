//! Alarms leave the box: each new alarm (and each alarm that clears, and each failover) is a
//! [`Notice`], sent once to every destination in the pair's document (mail, SNMP traps,
//! webhooks), retried with backoff, on threads of the console's own, never in the pair's core.
//! [`feed`] works out what is new from the node's state; [`dispatch`] delivers.

pub mod dispatch;
pub mod feed;
pub mod mail;
pub mod snmp;
pub mod webhook;

use pairos_mirror::document::AlarmDestinations;
use serde::Serialize;

/// One thing to tell the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The alarm's id (the same while it lasts; its clearing has the same id).
    pub id: String,
    /// `critical`, `major`, `minor`, `clear` (it ended) or `test`.
    pub severity: String,
    pub pair: String,
    pub node: String,
    pub text: String,
    /// Seconds since the Unix epoch.
    pub time: u64,
}

impl Notice {
    /// One line, as a mail's subject says it.
    pub fn subject(&self) -> String {
        format!("[pairos {}] {} {}: {}", self.pair, self.severity.to_uppercase(), self.node, self.text)
    }
}

/// One destination, named as the page and the results show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Mail(pairos_mirror::document::MailDestination),
    Snmp(pairos_mirror::document::SnmpDestination),
    Webhook(pairos_mirror::document::WebhookDestination),
}

impl Destination {
    pub fn all(d: &AlarmDestinations) -> Vec<Destination> {
        let mut all: Vec<Destination> = d.mail.iter().cloned().map(Destination::Mail).collect();
        all.extend(d.snmp.iter().cloned().map(Destination::Snmp));
        all.extend(d.webhooks.iter().cloned().map(Destination::Webhook));
        all
    }

    pub fn name(&self) -> String {
        match self {
            Destination::Mail(m) => format!("mail to {} via {}:{}", m.to.join(", "), m.server, m.port),
            Destination::Snmp(s) => format!("SNMP trap to {}", s.target),
            Destination::Webhook(w) => format!("webhook {}", w.url),
        }
    }

    /// Sends one notice; the error says what went wrong.
    pub fn send(&self, n: &Notice) -> Result<(), String> {
        match self {
            Destination::Mail(m) => mail::send(m, n),
            Destination::Snmp(s) => snmp::send(s, n),
            Destination::Webhook(w) => webhook::send(w, n),
        }
    }
}

/// Why a set of destinations is refused (each checked before anything is saved).
pub fn refuse(d: &AlarmDestinations) -> Option<String> {
    if let Some(m) = &d.mail {
        if m.server.trim().is_empty() {
            return Some("mail: no server".into());
        }
        if m.to.is_empty() {
            return Some("mail: no recipient in \"to\"".into());
        }
        for a in m.to.iter().chain(std::iter::once(&m.from)) {
            if a.parse::<lettre::Address>().is_err() {
                return Some(format!("mail: {a:?} is not a mail address"));
            }
        }
        if m.user.is_some() != m.password.is_some() {
            return Some("mail: a login needs both user and password".into());
        }
        if m.password.is_some() && !m.starttls {
            return Some("mail: a password is never sent without STARTTLS".into());
        }
    }
    for s in &d.snmp {
        if snmp::target(&s.target).is_err() {
            return Some(format!("snmp: {:?} is not HOST:PORT", s.target));
        }
        if s.community.is_empty() {
            return Some("snmp: an empty community".into());
        }
    }
    for w in &d.webhooks {
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            return Some(format!("webhook: {:?} is not an http:// or https:// URL", w.url));
        }
    }
    None
}
