//! The CLI's config layer: `config.toml` → the flags' defaults, before the
//! plans are built.
//!
//! Input: the command line, the environment and at most one TOML file
//! (`--config FILE`, `FLAMEFIRE_CONFIG`, or `$XDG_CONFIG_HOME/flamefire/config.toml`,
//! by default `~/.config/flamefire/config.toml`). Output: the parsed [`Cli`] and,
//! for `-v` and `doctor`, where each value came from ([`Origins`]).
//!
//! Precedence, highest first: a flag, its environment variable, the config
//! file (an `[env.NAME]` section chosen by `--env NAME` over the file's top
//! level), flamefire's built-in default. The file only replaces the *defaults*
//! of the clap definitions, so clap itself applies the first two rules and the
//! values still go through every check of `cli/mod.rs`. `cli/` is the only
//! code that touches clap. It must not read anything but the
//! config file, and a bad file is an error, never a silent default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use serde::Deserialize;
use toml::Spanned;

pub use super::origins::{Origin, Origins, Source};
use crate::cli::Cli;
use crate::error::ConfigError;

/// A setting the file can hold. `key` is the flag's long name, so that
/// `bucket = "x"` in the file means `--bucket x`.
struct Key {
    key: &'static str,
    /// clap's id of the flag (the field name in `cli/mod.rs`).
    arg: &'static str,
    /// Variables that the AWS SDK reads itself when the flag is absent: they
    /// outrank the file too, so the file must not turn into a flag over them.
    sdk_env: &'static [&'static str],
}

const KEYS: &[Key] = &[
    Key {
        key: "bucket",
        arg: "bucket",
        sdk_env: &[],
    },
    Key {
        key: "prefix",
        arg: "prefix",
        sdk_env: &[],
    },
    // aws-config's EnvironmentVariableRegionProvider reads AWS_REGION, then
    // AWS_DEFAULT_REGION (aws-config/src/default_provider/region.rs).
    Key {
        key: "region",
        arg: "region",
        sdk_env: &["AWS_REGION", "AWS_DEFAULT_REGION"],
    },
    // aws-config's profile selection reads AWS_PROFILE (aws-config/src/profile/).
    Key {
        key: "profile",
        arg: "profile",
        sdk_env: &["AWS_PROFILE"],
    },
    Key {
        key: "document",
        arg: "document",
        sdk_env: &[],
    },
    // Used by the instance opt-in check (issue 9) once its flag exists;
    // until then the value is read, checked and shown, and changes nothing.
    Key {
        key: "opt-in-tag",
        arg: "opt_in_tag",
        sdk_env: &[],
    },
    Key {
        key: "duration",
        arg: "duration",
        sdk_env: &[],
    },
    Key {
        key: "frequency",
        arg: "frequency",
        sdk_env: &[],
    },
];

/// The file's settings, at the top level or in an `[env.NAME]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Settings {
    bucket: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    document: Option<Spanned<String>>,
    opt_in_tag: Option<Spanned<String>>,
    duration: Option<Spanned<u32>>,
    frequency: Option<Spanned<u32>>,
    env: Option<BTreeMap<String, Spanned<Settings>>>,
}

impl Settings {
    /// `(key, value as a flag would give it, where in the file)`, in [`KEYS`] order.
    fn values(&self) -> Vec<(&'static str, String, Range<usize>)> {
        let text =
            |v: &Option<Spanned<String>>| v.as_ref().map(|s| (s.get_ref().clone(), s.span()));
        let num =
            |v: &Option<Spanned<u32>>| v.as_ref().map(|s| (s.get_ref().to_string(), s.span()));
        [
            ("bucket", text(&self.bucket)),
            ("prefix", text(&self.prefix)),
            ("region", text(&self.region)),
            ("profile", text(&self.profile)),
            ("document", text(&self.document)),
            ("opt-in-tag", text(&self.opt_in_tag)),
            ("duration", num(&self.duration)),
            ("frequency", num(&self.frequency)),
        ]
        .into_iter()
        .filter_map(|(key, v)| v.map(|(value, span)| (key, value, span)))
        .collect()
    }
}

/// A value the file sets for this run, and where.
#[derive(Debug, Clone)]
struct FileValue {
    key: &'static str,
    value: String,
    line: usize,
    section: Option<String>,
}

/// What stops parsing: clap's own errors (usage, `--help`, `--version`),
/// which clap prints and exits on in `main`, or a bad config file.
#[derive(Debug)]
pub enum ParseError {
    Clap(clap::Error),
    Config(ConfigError),
}

impl From<clap::Error> for ParseError {
    fn from(e: clap::Error) -> Self {
        ParseError::Clap(e)
    }
}

impl From<ConfigError> for ParseError {
    fn from(e: ConfigError) -> Self {
        ParseError::Config(e)
    }
}

/// Parses this process's arguments with the config file's defaults.
pub fn parse() -> Result<Cli, ParseError> {
    parse_from(std::env::args_os().collect(), |var| std::env::var_os(var))
}

/// Parses `args` with the config file's defaults; `env` reads a variable.
pub fn parse_from(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Cli, ParseError> {
    let first = Cli::command().try_get_matches_from(&args)?;
    let cli = Cli::from_arg_matches(&first)?;
    if matches!(
        cli.command,
        crate::cli::Command::Completions { .. } | crate::cli::Command::Man { .. }
    ) {
        // Generated docs show flamefire's own defaults, not this user's.
        return Ok(cli);
    }
    let Some((path, explicit)) = cli
        .config
        .clone()
        .map(|p| (p, true))
        .or_else(|| default_path(&env).map(|p| (p, false)))
    else {
        return finish(cli, &first, None, &[], &env);
    };
    let Some(text) = read(&path, explicit)? else {
        if let Some(name) = &cli.env {
            return Err(ConfigError::NoFile {
                env: name.clone(),
                path,
            }
            .into());
        }
        return finish(cli, &first, None, &[], &env);
    };
    let values = file_values(&path, &text, cli.env.as_deref())?;
    // Region and profile: the SDK's variables outrank the file, so the file
    // must not become a default over them.
    let inject: Vec<&FileValue> = values
        .iter()
        .filter(|v| {
            let key = KEYS.iter().find(|k| k.key == v.key).expect("known key");
            !key.sdk_env
                .iter()
                .any(|var| env(var).is_some_and(|x| !x.is_empty()))
        })
        .collect();
    let command = with_defaults(Cli::command(), &inject);
    let matches = command.try_get_matches_from(&args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    finish(cli, &matches, Some(&path), &values, &env)
}

/// `$XDG_CONFIG_HOME/flamefire/config.toml`, else `~/.config/flamefire/config.toml`
/// (the XDG Base Directory spec: a relative XDG_CONFIG_HOME is ignored).
fn default_path(env: &impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("flamefire").join("config.toml"))
}

/// The file's text; `None` when the default file does not exist. A file
/// named by `--config` must exist.
fn read(path: &Path, explicit: bool) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The file's values for this run: the top level, overridden by `[env.NAME]`.
fn file_values(path: &Path, text: &str, env: Option<&str>) -> Result<Vec<FileValue>, ConfigError> {
    let file: Settings = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = line_col(text, span.start);
        let key = if e.span().is_some() {
            key_at(text, span.start)
        } else {
            String::new()
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            key: if key.is_empty() { "(file)".into() } else { key },
            message: e.message().trim().to_string(),
            next: format!(
                "fix or remove it; the keys are {} and [env.NAME] sections holding them (see the README's \"Config file\")",
                KEYS.iter().map(|k| k.key).collect::<Vec<_>>().join(", ")
            ),
        }
    })?;
    let mut values: Vec<FileValue> = Vec::new();
    let mut add = |settings: &Settings, section: Option<&str>| -> Result<(), ConfigError> {
        for (key, value, span) in settings.values() {
            let (line, column) = line_col(text, span.start);
            check(key, &value).map_err(|why| ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                key: key.to_string(),
                message: why,
                next: format!("fix `{key}` (it takes what --{key} takes)"),
            })?;
            values.retain(|v| v.key != key);
            values.push(FileValue {
                key,
                value,
                line,
                section: section.map(str::to_string),
            });
        }
        Ok(())
    };
    add(&file, None)?;
    let sections = file.env.as_ref();
    for (name, section) in sections.into_iter().flatten() {
        if section.get_ref().env.is_some() {
            let (line, column) = line_col(text, section.span().start);
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                key: format!("env.{name}.env"),
                message: "sections do not nest".into(),
                next: "move the inner section to the top level as [env.NAME]".into(),
            });
        }
    }
    if let Some(name) = env {
        let Some(section) = sections.and_then(|s| s.get(name)) else {
            let names: Vec<&str> = sections
                .map(|s| s.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(ConfigError::NoSection {
                env: name.to_string(),
                path: path.to_path_buf(),
                available: if names.is_empty() {
                    "it has none".into()
                } else {
                    format!("it has {}", names.join(", "))
                },
            });
        };
        add(section.get_ref(), Some(name))?;
    }
    values.sort_by_key(|v| KEYS.iter().position(|k| k.key == v.key));
    Ok(values)
}

/// What the flags' own checks would say, so that a bad value is blamed on
/// the file's line and not on a flag that was never given.
fn check(key: &str, value: &str) -> Result<(), String> {
    let doc = crate::document::embedded().map_err(|e| e.to_string())?;
    let checked = match key {
        "bucket" => crate::cli::check_bucket_name(value),
        "prefix" => crate::cli::normalise_prefix(value).map(|_| ()),
        "document" => crate::cli::check_document_name(value),
        "duration" => doc.check("Duration", value, key),
        "frequency" => doc.check("Frequency", value, key),
        "region" | "profile" | "opt-in-tag" if value.trim().is_empty() => {
            return Err("must not be empty (leave the key out instead)".into());
        }
        _ => Ok(()),
    };
    checked.map_err(|e| e.to_string())
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The key written on the line at `offset` (`key = …`), or the table header.
fn key_at(text: &str, offset: usize) -> String {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    match line.split_once('=') {
        Some((key, _)) => key.trim().trim_matches('"').to_string(),
        None => line.to_string(),
    }
}

/// The command tree with the file's values as the defaults of the flags
/// they name, in every subcommand that has such a flag.
fn with_defaults(mut cmd: clap::Command, values: &[&FileValue]) -> clap::Command {
    for v in values {
        let key = KEYS.iter().find(|k| k.key == v.key).expect("known key");
        if cmd.get_arguments().any(|a| a.get_id() == key.arg) {
            // clap takes `&'static str` defaults (without its `string`
            // feature); these few short strings live as long as the process.
            let value: &'static str = Box::leak(v.value.clone().into_boxed_str());
            cmd = cmd.mut_arg(key.arg, |a| a.default_value(value));
        }
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |sub| with_defaults(sub, values));
    }
    cmd
}

/// Records where each setting of the chosen subcommand came from.
fn finish(
    mut cli: Cli,
    matches: &ArgMatches,
    path: Option<&Path>,
    values: &[FileValue],
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Cli, ParseError> {
    // The chosen (sub)subcommand's definition and matches.
    let mut command = Cli::command();
    command.build();
    let mut cmd = &command;
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        cmd = cmd
            .find_subcommand(name)
            .expect("matched subcommand exists");
        leaf = sub;
    }
    let mut settings = Vec::new();
    for key in KEYS {
        let file = values.iter().find(|v| v.key == key.key);
        let from_file = || match file {
            Some(v) => Source::File {
                path: path.expect("values come from a file").to_path_buf(),
                line: v.line,
                section: v.section.clone(),
            },
            None => Source::Default,
        };
        let sdk_env = key
            .sdk_env
            .iter()
            .find_map(|var| env(var).filter(|x| !x.is_empty()).map(|x| (*var, x)));
        let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == key.arg) else {
            // This subcommand has no such flag: show what the file says, if anything.
            if let Some(v) = file {
                settings.push(Origin {
                    key: key.key,
                    value: Some(v.value.clone()),
                    source: from_file(),
                });
            }
            continue;
        };
        let value = leaf
            .get_raw(key.arg)
            .and_then(|mut v| v.next())
            .map(|v| v.to_string_lossy().into_owned());
        let source = match leaf.value_source(key.arg) {
            Some(ValueSource::CommandLine) => {
                Source::Flag(format!("--{}", arg.get_long().unwrap_or(key.key)))
            }
            Some(ValueSource::EnvVariable) => Source::Env(
                arg.get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            Some(ValueSource::DefaultValue) => from_file(),
            _ => Source::Unset,
        };
        let (value, source) = match (source, sdk_env) {
            (Source::Unset, Some((var, x))) => (
                Some(x.to_string_lossy().into_owned()),
                Source::Env(var.into()),
            ),
            (source, _) => (value, source),
        };
        settings.push(Origin {
            key: key.key,
            value,
            source,
        });
    }
    cli.settings = Origins {
        file: path.map(Path::to_path_buf),
        settings,
    };
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], vars: &[(&str, &str)]) -> Result<Cli, ParseError> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        parse_from(args.iter().map(OsString::from).collect(), move |var| {
            vars.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn line_and_key_of_an_offset() {
        let text = "bucket = \"a\"\n[env.prod]\nregion = 3\n";
        assert_eq!(line_col(text, text.find('3').unwrap()), (3, 10));
        assert_eq!(key_at(text, text.find('3').unwrap()), "region");
        assert_eq!(key_at(text, 0), "bucket");
    }

    #[test]
    fn env_sections_override_the_top_level() {
        let text = "bucket = \"top\"\nduration = 10\n[env.prod]\nbucket = \"prod-bkt\"\n";
        let values = file_values(Path::new("c.toml"), text, Some("prod")).unwrap();
        let bucket = values.iter().find(|v| v.key == "bucket").unwrap();
        assert_eq!((bucket.value.as_str(), bucket.line), ("prod-bkt", 4));
        assert_eq!(bucket.section.as_deref(), Some("prod"));
        let duration = values.iter().find(|v| v.key == "duration").unwrap();
        assert_eq!(
            (duration.value.as_str(), duration.section.clone()),
            ("10", None)
        );
    }

    #[test]
    fn terraforms_config_output_uses_only_known_keys() {
        let tf = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/outputs.tf"),
        )
        .unwrap();
        let body = tf
            .split("output \"flamefire_config\"")
            .nth(1)
            .and_then(|rest| rest.split("<<-EOT\n").nth(1))
            .and_then(|rest| rest.split("EOT").next())
            .expect("terraform/outputs.tf has the flamefire_config heredoc");
        // Each `${jsonencode(...)}` renders a TOML-compatible JSON string.
        let rendered = regex::Regex::new(r"\$\{jsonencode\(.*\)\}")
            .unwrap()
            .replace_all(body, "\"flamefire-x\"");
        let values = file_values(Path::new("outputs.tf"), &rendered, None).unwrap();
        let keys: Vec<&str> = values.iter().map(|v| v.key).collect();
        assert_eq!(
            keys,
            [
                "bucket",
                "prefix",
                "region",
                "profile",
                "document",
                "opt-in-tag"
            ]
        );
    }

    #[test]
    fn no_home_means_no_file_and_builtin_defaults() {
        let cli = parse(&["flamefire", "runs"], &[]).unwrap();
        assert!(cli.settings.file.is_none());
        assert_eq!(cli.settings.get("prefix").unwrap().source, Source::Default);
        assert_eq!(cli.settings.get("bucket").unwrap().source, Source::Unset);
    }
}
