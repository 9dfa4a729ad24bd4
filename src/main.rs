//! flamefire's entry point: parse arguments, run the pipeline, exit.
//!
//! The only place that decides the process's exit code.

use std::process::ExitCode;

use flamefire::cli::config::{self, ParseError};
use flamefire::error::Error;

fn main() -> ExitCode {
    // Flags, environment and config file (src/config.rs); clap exits on
    // --help, --version and usage errors (exit 2) itself.
    let cli = match config::parse() {
        Ok(cli) => cli,
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::Config(e)) => return fail(Error::from(e)),
    };
    init_tracing(cli.verbose);
    cli.settings.trace();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(flamefire::app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Error::Interrupted) => {
            eprintln!("flamefire: interrupted");
            ExitCode::from(Error::Interrupted.exit_code())
        }
        Err(err) => fail(err),
    }
}

/// Prints the error and its causes, one `caused by:` line each.
fn fail(err: Error) -> ExitCode {
    eprintln!("flamefire: error: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    ExitCode::from(err.exit_code())
}

/// `-v` shows flamefire's debug lines, `-vv` the AWS SDK's too.
fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => "warn",
        1 => "flamefire=debug,warn",
        _ => "flamefire=trace,aws=debug,info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLAMEFIRE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
