//! Tools for authors of exercises.

pub mod anatomy;
pub mod check;
pub mod mutants;
pub mod new;
pub mod static_checks;
pub mod update;
