//! Machinery shared by the balancing exercises: lab drivers and simulators the learner never edits.
