//! Scaffolding shared by the sdlings exercises.
//!
//! Everything here is *given*: the things a real system gets from its platform (a clock, a random
//! source, a way to print figures), so each exercise can focus on its one idea. Nothing in this
//! crate solves an exercise.

pub mod backend;
pub mod clock;
pub mod lab;
pub mod workload;
