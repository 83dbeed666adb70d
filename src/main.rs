//! sdlings: a self-checking workbook that teaches system design by building the components.
//!
//! `main` only parses the command line and maps outcomes to exit codes; each concern lives in its
//! own module (see the list below).

mod cli;
mod cohort;
mod commands;
mod dev;
mod info_file;
mod present;
mod pristine;
mod report;
mod runner;
mod set;
mod state;
mod term;
mod toml_file;
mod watch;
mod workbook;

use std::process::ExitCode;

use clap::Parser;
use colored::Colorize;

use cli::{Cli, Command, DevCommand, ReportCommand, SetCommand, WatchArgs};
use commands::Outcome;
use workbook::Workbook;

fn main() -> ExitCode {
    let cli = Cli::parse();
    term::init_color(cli.color);
    runner::process::stop_children_on_interrupt();
    match run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{} {e:#}", "error:".red().bold());
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    // The commands that need no workbook.
    match &cli.command {
        Some(Command::Init { dir }) => return commands::init::run(dir),
        Some(Command::Report {
            command:
                ReportCommand::Merge {
                    files,
                    format,
                    output,
                },
        }) => return commands::report::merge(files, *format, output.as_deref()),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "sdlings", &mut std::io::stdout());
            return Ok(Outcome::Success);
        }
        _ => {}
    }
    let mut workbook = Workbook::discover()?;
    workbook.set_override = cli.set;
    match cli.command.unwrap_or(Command::Watch(WatchArgs::default())) {
        Command::Watch(args) => watch::run(workbook, &args),
        Command::List => commands::list::run(&workbook),
        Command::Check { name, seed } => commands::check::run(&workbook, name.as_deref(), seed),
        Command::Hint { name } => commands::hint::run(&workbook, name.as_deref()),
        Command::Run { name, args } => commands::run::run(&workbook, name.as_deref(), &args),
        Command::Reset { name, yes } => commands::reset::run(&workbook, &name, yes),
        Command::Solution { name, force } => commands::solution::run(&workbook, &name, force),
        Command::Verify {
            all,
            format,
            output,
            learner,
        } => commands::verify::run(
            &workbook,
            all,
            format,
            output.as_deref(),
            learner.as_deref(),
        ),
        Command::Init { .. } | Command::Completions { .. } | Command::Report { .. } => {
            unreachable!("handled above")
        }
        Command::Set { command } => match command {
            SetCommand::List => commands::set::list(&workbook),
            SetCommand::Show { name } => commands::set::show(&workbook, &name),
            SetCommand::Use { name } => commands::set::use_set(&workbook, &name),
            SetCommand::Clear => commands::set::clear(&workbook),
        },
        Command::Dev { command } => match command {
            DevCommand::Check {
                repeat,
                static_only,
                names,
            } => dev::check::run(&workbook, repeat, static_only, &names),
            DevCommand::Update => dev::update::run(&workbook),
            DevCommand::New { spec } => dev::new::run(&workbook, &spec),
            DevCommand::Mutants { names } => dev::mutants::run(&workbook, &names),
        },
    }
}
