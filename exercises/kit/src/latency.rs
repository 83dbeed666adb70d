//! Machinery shared by the latency exercises: lab drivers and simulators the learner never edits.
