//! The command line, declared with clap. Every verb has its own `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "sdlings",
    version,
    about = "A self-checking workbook: learn system design by building the components, in Rust.",
    long_about = "A self-checking workbook: learn system design by building the components, in Rust.\n\n\
        Run it with no command (or `sdlings watch`) from the workbook root: it opens the current \
        exercise's verdict and re-checks it every time you save the file in your editor.",
    after_help = "Exit codes: 0 success; 1 an exercise failed; 2 a usage error or a problem with the workbook.",
    after_long_help = "\
Examples:
  sdlings                          watch the current exercise; re-check it on every save
  sdlings list                     your progress, topic by topic
  sdlings hint lru_cache           the next hint for an exercise
  sdlings run lru_cache            run an exercise's lab on its own
  sdlings set use week1-caching    follow a mentor's exercise set
  sdlings verify --format junit --output report.xml
                                   grade every exercise reached so far, for CI
  sdlings init ~/my-workbook       a fresh workbook from the curriculum built into sdlings
  sdlings dev new 01_caching/lfu_cache
                                   scaffold a new exercise (authors)

Files:
  info.toml             the curriculum: topics, exercises, hints
  .sdlings-state.toml   your progress (written atomically; keep it with your work)
  sets/*.toml           exercise sets; sets/README.md is the mentor guide
  exercises/AUTHORING.md  how to write an exercise

Environment:
  NO_COLOR              no colours (also --color never)
  SDLINGS_TARGET_DIR    where exercises are built (default: target/sdlings); give each
                        workbook its own: cargo cannot tell two copies' builds apart

Exit codes: 0 success; 1 an exercise failed; 2 a usage error or a problem with the workbook."
)]
pub struct Cli {
    /// When to use colours: auto (a terminal without NO_COLOR), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// Work on this exercise set (a name from sets/, or a set file) instead of the active one,
    /// for this command only.
    #[arg(long, global = true, value_name = "SET")]
    pub set: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the current exercise and re-check it on every save (the default).
    ///
    /// Keys: h next hint, l list (jump to any unlocked exercise), n next exercise once this one
    /// passes, r re-check, q quit. Without a terminal it prints one line per check and reads the
    /// same keys as lines on standard input, quitting at the end of input.
    Watch(WatchArgs),
    /// List topics and exercises with their status and your overall progress.
    List,
    /// Check one exercise once (the current one by default); a pass is recorded.
    ///
    /// Exits 0 if it passes, 1 if not.
    Check {
        /// The exercise to check; defaults to the current one.
        name: Option<String>,
        /// Replay one run: every seeded property of the exercise tries only this seed (the one
        /// a failure printed). A pass on one seed is not recorded.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
    },
    /// Reveal the next hint of an exercise (the current one by default).
    ///
    /// Hints are progressive: the first is a nudge, the last is close to the approach. Hints
    /// already revealed are shown again.
    Hint {
        /// The exercise; defaults to the current one.
        name: Option<String>,
    },
    /// Build and run an exercise's lab (its `fn main`); arguments after `--` are passed to it.
    Run {
        /// The exercise; defaults to the current one.
        name: Option<String>,
        /// Arguments for the lab, e.g. `sdlings run lru_cache -- --capacity 50`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Put an exercise back to its original text; your version is kept as a backup.
    Reset {
        /// The exercise to reset.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Show an exercise's solution (once you have finished it).
    Solution {
        /// The exercise.
        name: String,
        /// Show it even though the exercise is not done yet.
        #[arg(long)]
        force: bool,
    },
    /// Re-check every exercise reached so far and report; exits 1 unless all pass.
    ///
    /// Each exercise is reported as passed, failed (with its first failing test) or not attempted
    /// (its file is unchanged), with the hints revealed, when it first passed, and whether its
    /// tests were changed from the original (which makes it count as not passed). With an active
    /// set (or --set) only the set's exercises are checked. Formats: text, markdown, json (a
    /// versioned schema, see sets/README.md) and junit (XML for CI test-report viewers).
    Verify {
        /// Check every exercise (of the set, or of the workbook), including locked ones.
        #[arg(long)]
        all: bool,
        /// The report's format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the report to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Whose work this is, for a mentor merging reports (default: the author of the
        /// workbook's latest git commit, else git's user.name).
        #[arg(long, value_name = "NAME")]
        learner: Option<String>,
    },
    /// Mentors: merge learners' `verify --format json` reports into one cohort view.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Exercise sets: a mentor's selection of exercises for a cohort.
    Set {
        #[command(subcommand)]
        command: SetCommand,
    },
    /// Write a fresh workbook (exercises, solutions, sets, manifests) into DIR.
    ///
    /// For an installed sdlings (`cargo install`): the curriculum is built into the binary, so
    /// learners keep their work in their own repository and update the tool separately. Refuses
    /// to write into a directory that is not empty. The .gitignore it writes keeps your progress
    /// file in version control.
    Init {
        /// Where to create the workbook.
        #[arg(default_value = "sdlings")]
        dir: PathBuf,
    },
    /// Print a shell completion script, e.g. `sdlings completions bash > ~/.local/share/bash-completion/completions/sdlings`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Tools for authors of exercises.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge verify reports (JSON) into one cohort view: a grid of learners × exercises, per
    /// exercise how many passed and the median hints used, per learner progress and last pass,
    /// and the exercises where the cohort is stuck.
    ///
    /// Two reports of the same learner: the newest is used, and the view says so. Reports whose
    /// tests were edited or made on another curriculum version are marked. Nothing is written
    /// unless every file is a usable report.
    Merge {
        /// The learners' reports (`sdlings verify --format json --output FILE`).
        #[arg(required = true, value_name = "FILES")]
        files: Vec<PathBuf>,
        /// The view's format: one self-contained HTML page, Markdown, or JSON.
        #[arg(long, value_enum, default_value_t = CohortFormat::Html)]
        format: CohortFormat,
        /// Write the view to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CohortFormat {
    Html,
    Markdown,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// List the sets in sets/ (the active one is marked).
    List,
    /// Show a set: its description, unlock policy and exercises with your status.
    Show {
        /// A set name from sets/, or the path of a set file.
        name: String,
    },
    /// Make a set the active one: watch, list, check and verify follow it.
    Use {
        /// A set name from sets/, or the path of a set file.
        name: String,
    },
    /// Go back to the whole workbook. Your progress is kept either way.
    Clear,
}

#[derive(Debug, Default, Args)]
pub struct WatchArgs {
    /// Poll the files for changes instead of relying on file-system events. Use it where saves go
    /// unnoticed: network drives, WSL's Windows mounts, some containers.
    #[arg(long)]
    pub poll: bool,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Scaffold an exercise: its file, solution, pristine copy, info.toml entry and both bins.
    ///
    /// TOPIC is an existing topic's directory or name (`01_caching`, `caching`); a new directory
    /// named NN_name (`07_queues`) creates the topic and its README too. The scaffold has
    /// placeholder hints and TODO(author) markers that `dev check` refuses until written.
    New {
        /// TOPIC/NAME, e.g. `01_caching/lfu_cache`.
        spec: String,
    },
    /// Validate the whole workbook: info.toml, files, Cargo bins, hints, topic READMEs, the shape
    /// of each exercise (its first todo!() within 80 lines, at most 550 lines, a topic median of
    /// at most 350, at least 8 listed mistakes; solutions/anatomy.toml may set other targets or
    /// exempt an exercise with a reason); every exercise fails unsolved, every solution passes its
    /// tests repeatedly, every lab finishes.
    Check {
        /// How many times each solution's tests must pass in a row.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeat: u32,
        /// Only the checks that need no build (info.toml, files, bins, hints, READMEs, mutants
        /// lists, identical test modules, the exercises' shape): a fraction of a second.
        #[arg(long = "static")]
        static_only: bool,
        /// Build and run only these exercises (default: all; with --set, the set's). The static
        /// checks always cover the whole workbook.
        names: Vec<String>,
    },
    /// Write the [[bin]] lists of exercises/Cargo.toml and solutions/Cargo.toml from info.toml
    /// (run it after adding, renaming or moving an exercise).
    Update,
    /// Check that the tests reject the plausible wrong implementations listed beside each
    /// solution (solutions/NN_topic/NAME.mutants.toml): each is applied to a copy of the
    /// solution, built and tested, and must fail.
    Mutants {
        /// Only these exercises (default: all).
        names: Vec<String>,
    },
}
