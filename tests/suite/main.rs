//! sdlings' own tests, in one test binary (one link, and every test can run beside the others).
//!
//! Most run on the fixture workbook (tests/fixture): tiny std-only exercises, one copy per test,
//! each building into its own directory. `curriculum` checks the real curriculum once.

mod common;

mod authoring;
mod bad_input;
mod bench;
mod cli;
mod cohort;
mod curriculum;
mod editor_saves;
mod mentor;
mod robustness;
mod state_durability;
mod watch;
