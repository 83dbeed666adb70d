//! Machinery shared by the resilience exercises: lab drivers and simulators the learner never edits.
