//! `sdlings init [DIR]`: write a fresh, ready workbook from the curriculum built into sdlings.
//!
//! This is how a learner with an installed sdlings (`cargo install`) gets their own workbook: they
//! keep their work (and their progress file) in their own repository and update the tool
//! separately.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::Outcome;
use crate::pristine;
use crate::workbook::{EXERCISES_DIR, INFO_FILE_NAME};

/// The workbook's root manifest: the exercise packages only (the CLI is installed separately),
/// with the same build profiles as sdlings' own workbook (a unit test keeps them equal).
const WORKSPACE_MANIFEST: &str = r#"# An sdlings workbook: `sdlings` (installed with `cargo install`) runs it from this directory.
[workspace]
members = [
    "exercises", "exercises/kit", "solutions",
    "exercises/http", "exercises/http/kit", "solutions/http",
    "exercises/resp", "exercises/resp/kit", "solutions/resp",
    "exercises/shortener", "exercises/shortener/kit", "solutions/shortener",
]
resolver = "3"

# Debug info: line tables for the exercises (enough for a backtrace), none for dependencies.
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false

# The exercises are rebuilt on every save: their own code stays unoptimised (fast to compile), but
# the runtime they lean on is optimised once, so labs measure realistic speed.
[profile.dev.package.tokio]
opt-level = 2

[profile.dev.package.mio]
opt-level = 2

[profile.dev.package.rand]
opt-level = 2

[profile.dev.package.rand_core]
opt-level = 2

[profile.dev.package.chacha20]
opt-level = 2

[profile.dev.package.turmoil]
opt-level = 2

# The kit's own code (Zipf keys, lab tables) is what labs spend their time in between calls to
# the learner's code.
[profile.dev.package.sdlings-kit]
opt-level = 2
"#;

/// Build output and sdlings' lock files stay out of git; the progress file is kept with the work.
/// Build output, sdlings' locks and reset backups, and a progress file half-written when sdlings
/// was killed (the real one, `.sdlings-state.toml`, is meant to be committed).
const GITIGNORE: &str = "/target\n/.sdlings/\n/.sdlings-state.toml.tmp-*\n";

pub fn run(dir: &Path) -> Result<Outcome> {
    if dir.exists()
        && fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty; sdlings init writes a new workbook and never overwrites files. Choose another directory.",
            dir.display()
        );
    }
    for (rel, contents) in pristine::files() {
        write(dir, rel, contents)?;
    }
    write(dir, "Cargo.toml", WORKSPACE_MANIFEST.as_bytes())?;
    write(dir, ".gitignore", GITIGNORE.as_bytes())?;
    debug_assert!(dir.join(INFO_FILE_NAME).is_file() && dir.join(EXERCISES_DIR).is_dir());
    println!(
        "A fresh sdlings workbook is ready in {}.\n\n  cd {}\n  git init && git add . && git commit -m \"Start sdlings\"   # optional: keep your work\n  sdlings                                                        # start the watcher",
        dir.display(),
        dir.display()
    );
    Ok(Outcome::Success)
}

fn write(dir: &Path, rel: &str, contents: &[u8]) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_curriculum_is_embedded() {
        let files = crate::pristine::files();
        for wanted in [
            "info.toml",
            "exercises/00_intro/welcome.rs",
            "solutions/00_intro/welcome.rs",
            "exercises/kit/src/lib.rs",
            "sets/week1-caching.toml",
        ] {
            assert!(files.iter().any(|(p, _)| *p == wanted), "{wanted}");
        }
        assert!(!files.iter().any(|(p, _)| p.contains("/target/")));
    }

    /// A workbook made by `init` has the packages and builds the way sdlings' own workbook does.
    #[test]
    fn a_new_workbook_has_the_members_and_build_profiles_of_the_built_in_one() {
        let table = |manifest: &str| manifest.parse::<toml::Table>().unwrap();
        let ours = table(super::WORKSPACE_MANIFEST);
        let built_in = table(include_str!("../../Cargo.toml"));
        assert_eq!(ours["profile"], built_in["profile"]);
        assert_eq!(
            ours["workspace"]["members"],
            built_in["workspace"]["members"]
        );
    }
}
