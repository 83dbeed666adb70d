//! Machinery shared by the rate_limiting exercises: lab drivers and simulators the learner never edits.
