//! Machinery shared by the caching exercises: lab drivers and simulators the learner never edits.
