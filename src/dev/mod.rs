//! Tools for authors of exercises.

pub mod check;
