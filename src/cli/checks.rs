//! Checks of values that name AWS resources, shared by the flags and the
//! config file (`config.rs` blames a bad value on its line, with the same
//! words). Pure functions: no I/O, no clap.

use crate::error::{Error, Result};

/// SSM document names: 3–128 of letters, digits, `_.-`.
pub fn check_document_name(name: &str) -> Result<()> {
    let ok = regex::Regex::new(r"^[A-Za-z0-9_.-]{3,128}$")
        .expect("static regex")
        .is_match(name);
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--document {name:?} is not an SSM document name (3–128 letters, digits, `_.-`)"
        )))
    }
}

/// S3's bucket naming rules, so a typo fails before any AWS call.
pub(crate) fn check_bucket_name(bucket: &str) -> Result<()> {
    let ok = regex::Regex::new(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
        .expect("static regex")
        .is_match(bucket)
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--bucket {bucket:?} is not a valid S3 bucket name (3–63 lowercase letters, digits, `.` and `-`)"
        )))
    }
}

/// `flamefire` and `flamefire/` mean the same prefix; the empty prefix is the
/// bucket root. Segments must start with a letter, digit or `_`, so that no
/// key looks like an option (`-o…`) or climbs (`..`).
pub(crate) fn normalise_prefix(prefix: &str) -> Result<String> {
    if prefix.is_empty() {
        return Ok(String::new());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    let segment = regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$").expect("static regex");
    if !trimmed.split('/').all(|s| segment.is_match(s)) {
        return Err(Error::Usage(format!(
            "--prefix {:?} is not allowed: use path segments of letters, digits and `_.-` that start with a letter, digit or `_`, e.g. flamefire/",
            shorten_arg(prefix)
        )));
    }
    Ok(format!("{trimmed}/"))
}

pub(super) fn shorten_arg(s: &str) -> String {
    s.chars().take(80).collect()
}
