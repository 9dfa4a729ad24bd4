//! Where each setting of a run came from (flag, environment, config file,
//! default): filled by `config::parse`, shown by `-v` and by `doctor`.

use std::fmt;
use std::path::PathBuf;

/// Where a value came from, highest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(String),
    Env(String),
    File {
        path: PathBuf,
        line: usize,
        section: Option<String>,
    },
    Default,
    /// No value anywhere: the AWS SDK's own chain decides (region, profile),
    /// or the command says what is missing (bucket).
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::File {
                path,
                line,
                section,
            } => {
                write!(f, "config {}:{line}", path.display())?;
                match section {
                    Some(s) => write!(f, " [env.{s}]"),
                    None => Ok(()),
                }
            }
            Source::Default => f.write_str("built-in default"),
            Source::Unset => f.write_str("not set"),
        }
    }
}

/// One setting of this run: its value and its source.
#[derive(Debug, Clone)]
pub struct Origin {
    pub key: &'static str,
    pub value: Option<String>,
    pub source: Source,
}

/// Where this run's settings came from: the `-v` lines and doctor's block.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    pub settings: Vec<Origin>,
}

impl Origins {
    pub fn get(&self, key: &str) -> Option<&Origin> {
        self.settings.iter().find(|o| o.key == key)
    }

    /// One `-v` (debug) line per setting.
    pub fn trace(&self) {
        match &self.file {
            Some(path) => tracing::debug!("config file: {}", path.display()),
            None => tracing::debug!("config file: none"),
        }
        for o in &self.settings {
            tracing::debug!(
                "{} = {} ({})",
                o.key,
                o.value.as_deref().unwrap_or("-"),
                o.source
            );
        }
    }

    /// A block for `doctor`: each setting, its value and its source.
    pub fn render(&self) -> String {
        let mut out = String::from("settings (flag > environment > config file > default):\n");
        let width = self
            .settings
            .iter()
            .filter_map(|o| o.value.as_ref().map(|v| v.chars().count()))
            .max()
            .unwrap_or(1)
            .max(1);
        for o in &self.settings {
            out.push_str(&format!(
                "  {:<11}{:<width$}  {}\n",
                o.key,
                o.value.as_deref().unwrap_or("-"),
                o.source
            ));
        }
        out
    }
}
