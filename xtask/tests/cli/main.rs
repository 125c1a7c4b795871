//! End-to-end tests of the xtask binary against upstream repositories made in temp dirs.

mod harness;

mod audit;
mod claims;
mod concurrency;
mod conflicts;
mod conventions;
mod export;
mod names;
mod protection;
mod pypi;
mod recovery;
mod refusals;
mod save;
mod shared;
mod sync;
mod update;
mod verify;
