//! The write checker: proof that no write a client was told is saved ever disappears.
//!
//! It runs in the lab's client namespace and writes through the pair's address, as a user's
//! application would: rows with unique ids, one transaction each, at a steady rate
//! ([`load`]). Every attempt and every answer goes to a history of JSON lines ([`history`]).
//! After the pair settles, the table is read back into the same history ([`read_back`]), and
//! [`verdict`] judges it: acknowledged rows lost, duplicated, unknown or changed must all be
//! 0; rows whose answer never came may be there or not; pauses in acknowledgements are the
//! service's gaps. The verdict needs only the history, so a history can be checked again
//! anywhere (`write-checker verify`).
//!
//! The table: `rows (id bigint primary key, val text not null)` ([`TABLE`]).

pub mod history;
pub mod load;
pub mod read_back;
pub mod verdict;

/// The table the checker writes, as SQL (what a database set up for the checker holds).
pub const TABLE: &str = "CREATE TABLE IF NOT EXISTS rows (id bigint PRIMARY KEY, val text NOT NULL)";
