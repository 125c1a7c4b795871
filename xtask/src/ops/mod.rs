//! The stack operations every command shares: observing a checkout and bringing it to base
//! plus series (`checkout`), recovering from a stop or unsaved work (`recover`) and from a
//! crash (`intent`), exporting a range as a stack (`export`), the update records
//! (`update_state`), a stack's own checks (`checks`) and the interpreters build-all built
//! (`interpreters`). Commands use this layer; no command module imports another.

pub mod checkout;
pub mod checks;
pub mod export;
pub mod intent;
pub mod interpreters;
pub mod recover;
pub mod update_state;

pub use checkout::{Plan, Stopped, locked_and_synced, observe, plan, sync_one};
