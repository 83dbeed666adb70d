//! Machinery shared by the hashing exercises: lab drivers and simulators the learner never edits.
