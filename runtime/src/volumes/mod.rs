//! The node's side of the pair's volumes ([`pairos_mirror`] does DRBD and LVM): the
//! [`manager`] keeps this node's volumes as the pair's configuration says, takes the peer's
//! newer configuration, and makes the volumes primary or secondary as the pair daemon's role
//! says; [`outdate`] outdates the peer's side over the public network for DRBD's fence-peer
//! call; [`split_brain`] is how a split brain is resolved with nothing thrown away; [`view`] is
//! what `pairos volume list` and the status show.

pub mod create;
pub mod manager;
pub mod outdate;
pub mod split_brain;
pub mod view;
