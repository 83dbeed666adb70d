// click_analytics — TODO(author): one line saying what to build.
//
// TODO(author): a few lines: what to build, why it matters in a real system (one concrete
// example), and which lab knob to turn after passing and what to expect.

// ---------------------------------------------------------------------------------------------
// Your part.
// ---------------------------------------------------------------------------------------------

/// TODO(author): the component's real interface, with fixed signatures the tests compile against.
pub fn answer() -> u64 {
    // TODO(author): leave the learner's part as todo!() with a short hint of what to do.
    todo!("compute the answer")
}

// ---------------------------------------------------------------------------------------------
// The lab: runs once the tests pass. Knobs are the constants below.
// ---------------------------------------------------------------------------------------------

/// TODO(author): a workload knob.
const REQUESTS: u64 = 1_000;

fn main() {
    // TODO(author): the figures that matter; sdlings_kit::lab draws tables and charts.
    println!("requests: {REQUESTS}, answer: {}", answer());
}

// ---------------------------------------------------------------------------------------------
// The tests: behaviour first, then edge cases, then the plausible mistakes.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_the_answer() {
        // TODO(author): tests whose names read as sentences the learner can act on.
        assert_eq!(answer(), 42, "the answer is 42");
    }
}
