//! The subcommands, dispatched. Each one's pipeline reads top to bottom
//! in its own module under `cmd/`.

use std::time::SystemTime;

use crate::cli::{Cli, Command, DocumentCommand, new_run_id};
use crate::cmd;
use crate::document;
use crate::error::{Result, exit};
use crate::progress::Progress;
use crate::report;

pub async fn run(cli: Cli) -> Result<u8> {
    let progress = Progress::new(cli.quiet);
    let run_id = new_run_id(SystemTime::now());
    match cli.command {
        Command::Local(args) => cmd::local::run(args.plan(run_id)?, &progress).await,
        Command::Render(args) => cmd::render::run(args.plan()?, &progress).await,
        Command::Diff(args) => cmd::diff::run(args.plan()?, &progress).await,
        Command::Ssm(args) => cmd::ssm::run(args.plan(run_id)?, &progress).await,
        Command::Document(DocumentCommand::Print) => {
            report::print_stdout(document::YAML);
            Ok(exit::OK)
        }
        Command::Document(DocumentCommand::Deploy(args)) => {
            cmd::admin::deploy(args.plan()?, &progress).await
        }
        Command::Doctor(args) => cmd::admin::doctor(args.plan()?, &cli.settings, &progress).await,
        Command::Runs(args) => cmd::admin::list_runs(args.bucket.plan(&args.aws)?, args.json).await,
        Command::Fetch(args) => cmd::fetch::run(args.plan()?, &progress).await,
        Command::Completions { shell } => {
            report::print_stdout(&crate::cli::completions(shell));
            Ok(exit::OK)
        }
        Command::Man { dir: None } => {
            report::print_stdout(&crate::cli::man_page());
            Ok(exit::OK)
        }
        Command::Man { dir: Some(dir) } => {
            for page in crate::cli::man_pages(&dir)? {
                report::print_stdout(&format!("{}\n", page.display()));
            }
            Ok(exit::OK)
        }
    }
}
