//! Errors in the workbook's TOML files (info.toml, set files), phrased for the user: each names
//! the file, the line and the field, and what to do. Also the rules every name and path in those
//! files follows.

use std::fmt;
use std::ops::Range;
use std::path::{Component, Path};

use toml::Spanned;

/// An error in info.toml (or a set file), already phrased for the user: it names the file, the
/// line and the field.
#[derive(Debug)]
pub struct FileError {
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileError {}

/// Turns byte offsets into "file:line:column" positions for error messages.
pub struct Locator<'a> {
    pub text: &'a str,
    pub file_name: &'a str,
}

impl Locator<'_> {
    pub fn error(&self, span: Range<usize>, field: &str, message: &str) -> FileError {
        let (line, column) = line_column(self.text, span.start);
        FileError {
            message: format!(
                "{}:{line}:{column}: field `{field}`: {message}",
                self.file_name
            ),
        }
    }

    pub fn plain(&self, message: &str) -> FileError {
        FileError {
            message: format!("{}: {message}", self.file_name),
        }
    }
}

/// A `toml`/serde error, which already carries the line, column and field, prefixed by the file.
pub fn toml_error(file_name: &str, e: &toml::de::Error) -> FileError {
    FileError {
        message: format!("{file_name}: {}", e.to_string().trim_end()),
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// Lowercase letters, digits and `_`, starting with a letter: safe as a Cargo binary name, a file
/// name and a Rust crate name.
pub fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Exercise and topic names become Cargo binary names and file names: keep them to Rust
/// identifiers.
pub fn check_identifier(
    value: &Spanned<String>,
    field: &str,
    at: &Locator,
) -> Result<(), FileError> {
    let s = value.get_ref();
    if is_identifier(s) {
        Ok(())
    } else {
        Err(at.error(
            value.span(),
            field,
            &format!(
                "`{s}` is not a valid name: use lowercase letters, digits and `_`, starting with a letter"
            ),
        ))
    }
}

/// Paths in curriculum files are relative and stay inside the workbook: no `..`, no absolute
/// paths, no drive prefixes.
pub fn check_relative_path(
    value: &Spanned<String>,
    field: &str,
    at: &Locator,
) -> Result<(), FileError> {
    let s = value.get_ref();
    let stays_inside = !s.is_empty()
        && !s.contains('\\')
        && Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if stays_inside {
        Ok(())
    } else {
        Err(at.error(
            value.span(),
            field,
            &format!(
                "`{s}` must be a relative path inside the workbook, with `/` separators and no `..`"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
