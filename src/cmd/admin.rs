//! `doctor`, `runs` and `document deploy`: the commands around a run.

use super::load;
use crate::aws::Aws;
use crate::cli::config::Origins;
use crate::cli::{BucketPlan, DeployPlan, DoctorPlan};
use crate::doctor;
use crate::document;
use crate::error::{Result, exit};
use crate::progress::Progress;
use crate::report;
use crate::runs;

pub async fn doctor(plan: DoctorPlan, settings: &Origins, progress: &Progress) -> Result<u8> {
    let loaded = Aws::load(&plan.aws).await;
    let aws = match loaded {
        Ok(aws) => aws,
        // No credentials, no other check: say so as a check, with its next step.
        Err(e) => {
            let checks = doctor::no_credentials(&e);
            report::print_stdout(&doctor::render(&checks));
            return Ok(doctor::exit_code(&checks));
        }
    };
    progress.info("checking…");
    let checks = doctor::run(&aws, &plan.checks, progress).await;
    report::print_stdout(&doctor::render(&checks));
    report::print_stdout(&settings.render());
    Ok(doctor::exit_code(&checks))
}

pub async fn list_runs(location: BucketPlan, json: bool) -> Result<u8> {
    let aws = load(&location).await?;
    aws.check_bucket(&location.bucket, &location.prefix).await?;
    let found = runs::list(&aws, &location.bucket, &location.prefix).await?;
    if json {
        let mut text = serde_json::to_string_pretty(&found).expect("runs serialise");
        text.push('\n');
        report::print_stdout(&text);
    } else {
        report::print_stdout(&runs::table(&found));
    }
    Ok(exit::OK)
}

pub async fn deploy(args: DeployPlan, progress: &Progress) -> Result<u8> {
    let aws = Aws::load(&args.aws).await?;
    let (version, changed) = aws.deploy_document(&args.document, document::YAML).await?;
    let what = if changed {
        "deployed"
    } else {
        "already up to date:"
    };
    progress.info(&format!(
        "{what} {} in {} (default version {version})",
        args.document,
        aws.region()
    ));
    report::print_stdout(&format!("{}\n", args.document));
    Ok(exit::OK)
}
