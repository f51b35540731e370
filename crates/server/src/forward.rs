//! What members of an ensemble tell each other beside ZAB itself, and the transaction
//! payload layout: both belong to the member (crates/member), which decides with them; the
//! peer links read them from here.

pub use zoocore_member::forward::*;
