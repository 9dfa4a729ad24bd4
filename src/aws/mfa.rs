//! Role profiles with `mfa_serial`, which aws-config does not support
//! (awslabs/aws-sdk-rust#527): without this, AssumeRole goes out without a
//! token code and the role's `aws:MultiFactorAuthPresent` condition denies it.
//!
//! Input: the selected profile (`--profile`, `AWS_PROFILE` or `default`)
//! and `--mfa-code`. Output: the role session's credentials. As the AWS
//! CLI does, flamefire asks for the code on the terminal, calls AssumeRole
//! with SerialNumber and TokenCode using the `source_profile`'s
//! credentials, and caches the session until shortly before it expires, so
//! that the code is asked once per session, not once per command.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use serde::{Deserialize, Serialize};

use super::errors;
use crate::error::{Error, Result};

/// A profile that assumes a role with MFA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaProfile {
    pub profile: String,
    pub role_arn: String,
    pub mfa_serial: String,
    pub source_profile: String,
    pub role_session_name: Option<String>,
    pub duration_seconds: Option<i32>,
    pub external_id: Option<String>,
}

/// A cached session is used only while it has this much life left: enough
/// for a default run (30 s recording, 300 s timeout) with room to spare.
const CACHE_MIN_LIFE: Duration = Duration::from_secs(15 * 60);

/// The selected profile, when it assumes a role with `mfa_serial`.
/// Environment credentials come first in the SDK's chain, so with
/// `AWS_ACCESS_KEY_ID` set and no `--profile` (only AWS_PROFILE or the
/// default) the profile is not used and neither is MFA. An explicit
/// `--profile` wins over them, as in the AWS CLI.
pub async fn find(profile: Option<&str>) -> Result<Option<MfaProfile>> {
    if profile.is_none() && std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return Ok(None);
    }
    let fs = aws_types::os_shim_internal::Fs::real();
    let env = aws_types::os_shim_internal::Env::real();
    let set = match aws_config::profile::load(
        &fs,
        &env,
        // The standard files (~/.aws/config and credentials, or AWS_CONFIG_FILE).
        &Default::default(),
        profile.map(|p| p.to_string().into()),
    )
    .await
    {
        Ok(set) => set,
        // No config file at all is the SDK's business, not ours.
        Err(e) => {
            tracing::debug!("no profile file for MFA: {e}");
            return Ok(None);
        }
    };
    let name = set.selected_profile().to_string();
    let Some(p) = set.get_profile(&name) else {
        return Ok(None);
    };
    let (Some(role_arn), Some(mfa_serial)) = (p.get("role_arn"), p.get("mfa_serial")) else {
        return Ok(None);
    };
    let source_profile = p.get("source_profile").ok_or_else(|| {
        Error::Usage(format!(
            "profile {name} has role_arn and mfa_serial but no source_profile: flamefire needs source_profile (the profile with your own credentials) to assume the role with MFA"
        ))
    })?;
    Ok(Some(MfaProfile {
        profile: name.clone(),
        role_arn: role_arn.to_string(),
        mfa_serial: mfa_serial.to_string(),
        source_profile: source_profile.to_string(),
        role_session_name: p.get("role_session_name").map(str::to_string),
        duration_seconds: p.get("duration_seconds").and_then(|d| d.parse().ok()),
        external_id: p.get("external_id").map(str::to_string),
    }))
}

/// What the cache file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    role_arn: String,
    mfa_serial: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expires_epoch: u64,
}

/// `$XDG_CACHE_HOME/flamefire/sts/` or `~/.cache/flamefire/sts/`.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("flamefire").join("sts"))
}

/// One file per profile; the name keeps only safe characters.
fn cache_file(profile: &str) -> Option<PathBuf> {
    let safe: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(cache_dir()?.join(format!("{safe}.json")))
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The cached session of `p`, when it is the same role and device and
/// lives for `min_life` more (at least [`CACHE_MIN_LIFE`]).
fn read_cache(p: &MfaProfile, now: SystemTime, min_life: Duration) -> Option<Credentials> {
    let bytes = std::fs::read(cache_file(&p.profile)?).ok()?;
    let c: Cached = serde_json::from_slice(&bytes).ok()?;
    let life = min_life.max(CACHE_MIN_LIFE).as_secs();
    let fresh = c.expires_epoch > epoch(now) + life;
    if c.role_arn != p.role_arn || c.mfa_serial != p.mfa_serial {
        return None;
    }
    if !fresh {
        tracing::info!(
            "the cached MFA session of profile {} ends too soon for this run ({} s needed): asking for a new code",
            p.profile,
            life
        );
        return None;
    }
    Some(Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        Some(UNIX_EPOCH + Duration::from_secs(c.expires_epoch)),
        "flamefire-mfa-cache",
    ))
}

/// Writes the session with owner-only permissions (it is a credential).
fn write_cache(p: &MfaProfile, creds: &Credentials) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let (Some(dir), Some(file)) = (cache_dir(), cache_file(&p.profile)) else {
        return;
    };
    let cached = Cached {
        role_arn: p.role_arn.clone(),
        mfa_serial: p.mfa_serial.clone(),
        access_key_id: creds.access_key_id().into(),
        secret_access_key: creds.secret_access_key().into(),
        session_token: creds.session_token().unwrap_or_default().into(),
        expires_epoch: creds.expiry().map(epoch).unwrap_or(0),
    };
    let written = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .and_then(|()| {
            let tmp = dir.join(format!(".{}.tmp", std::process::id()));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec(&cached).expect("cache entry serialises"))?;
            std::fs::rename(&tmp, &file)
        });
    if let Err(e) = written {
        tracing::warn!("could not cache the MFA session in {}: {e}", dir.display());
    }
}

/// The MFA code: `--mfa-code`, or asked on the terminal (prompt on stderr,
/// answer from /dev/tty so that piped stdin is left alone).
async fn token_code(p: &MfaProfile, given: Option<&str>) -> Result<String> {
    let code = match given {
        Some(c) => c.trim().to_string(),
        None => {
            let prompt = format!(
                "MFA code for {} (profile {}, role {}): ",
                p.mfa_serial, p.profile, p.role_arn
            );
            let profile = p.profile.clone();
            tokio::task::spawn_blocking(move || ask_tty(&prompt))
                .await
                .expect("prompt task does not panic")
                .map_err(|e| {
                    Error::Usage(format!(
                        "profile {profile} assumes its role with MFA, and there is no terminal to ask for the code ({e}): pass --mfa-code CODE"
                    ))
                })?
        }
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Usage(format!(
            "--mfa-code: the MFA code for {} must be the 6 digits your device shows now",
            p.mfa_serial
        )));
    }
    Ok(code)
}

fn ask_tty(prompt: &str) -> std::io::Result<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let mut err = std::io::stderr();
    err.write_all(prompt.as_bytes())?;
    err.flush()?;
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// The SDK's credentials provider for profile `name`, with the region
/// (aws-config's `ProviderConfig::default()` has none, so a source that
/// itself assumes a role, or refreshes an `aws login` token, fails with
/// "Missing Region": aws-config 1.13.0 src/provider_config.rs, `Default`).
pub fn profile_provider(
    name: &str,
    region: &aws_types::region::Region,
) -> aws_config::profile::ProfileFileCredentialsProvider {
    let config = aws_config::provider_config::ProviderConfig::default()
        .with_region(Some(region.clone()))
        .with_retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4));
    aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&config)
        .profile_name(name)
        .build()
}

/// The role session for `p`: from the cache, or AssumeRole with the code.
/// `base` gives the endpoint for STS; `region` is the one resolved for
/// the run, given to the source profile's own provider too.
pub async fn credentials(
    p: &MfaProfile,
    plan: &super::AwsPlan,
    region: &aws_types::region::Region,
    base: &aws_types::SdkConfig,
) -> Result<Credentials> {
    let now = SystemTime::now();
    // The cache wins even over --mfa-code: AWS refuses a code used twice.
    if let Some(cached) = read_cache(p, now, plan.min_life) {
        tracing::debug!("using the cached MFA session of profile {}", p.profile);
        return Ok(cached);
    }
    // Resolve the source first, so that its failure names it.
    let source_creds = profile_provider(&p.source_profile, region)
        .provide_credentials()
        .await
        .map_err(|e| Error::Aws {
            call: "loading AWS credentials",
            code: None,
            message: format!(
                "source_profile {} of profile {}: {}",
                p.source_profile,
                p.profile,
                errors::chain(&e)
            ),
            next: format!(
                "check the credentials of profile {} (it signs the AssumeRole of {})",
                p.source_profile, p.role_arn
            ),
        })?;
    let code = token_code(p, plan.mfa_code.as_deref()).await?;
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(base)
            .credentials_provider(source_creds)
            .build(),
    );
    let session = match &p.role_session_name {
        Some(name) => name.clone(),
        None => session_name(&sts, now).await,
    };
    let out = sts
        .assume_role()
        .role_arn(&p.role_arn)
        .role_session_name(session)
        .set_duration_seconds(p.duration_seconds)
        .set_external_id(p.external_id.clone())
        .serial_number(&p.mfa_serial)
        .token_code(code)
        .send()
        .await
        .map_err(|e| {
            let mut err = errors::convert("sts:AssumeRole", e, Some(&p.role_arn));
            if let Error::Aws { next, .. } = &mut err {
                *next = format!(
                    "check the MFA code (the 6 digits {} shows now), that mfa_serial in profile {} is your device, and that you may assume {} (the Terraform variable trusted_principal_arns)",
                    p.mfa_serial, p.profile, p.role_arn
                );
            }
            err
        })?;
    let c = out.credentials().ok_or_else(|| Error::Aws {
        call: "sts:AssumeRole",
        code: None,
        message: "the response has no credentials".into(),
        next: "retry with -vv".into(),
    })?;
    let expires = SystemTime::try_from(c.expiration).ok();
    let creds = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expires,
        "flamefire-mfa",
    );
    write_cache(p, &creds);
    Ok(creds)
}

/// `flamefire-<who>`: the source identity's user or session name, so that
/// CloudTrail shows the person behind the role session (the AWS CLI's
/// `botocore-session-<epoch>` says nothing). GetCallerIdentity needs no
/// permission; when it fails, the time stands in.
async fn session_name(sts: &aws_sdk_sts::Client, now: SystemTime) -> String {
    let who = match sts.get_caller_identity().send().await {
        Ok(out) => out.arn().map(who_from_arn),
        Err(e) => {
            tracing::debug!(
                "sts:GetCallerIdentity for the session name: {}",
                errors::chain(&e)
            );
            None
        }
    };
    session_name_for(who.as_deref(), now)
}

/// The last part of a user or assumed-role ARN: `alice` of
/// `arn:aws:iam::1:user/team/alice`, `bob@example.com` of
/// `arn:aws:sts::1:assumed-role/Admin/bob@example.com`.
fn who_from_arn(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// A RoleSessionName STS accepts: 2–64 of `[\w+=,.@-]` (STS API
/// reference, AssumeRole); other characters become `-`.
fn session_name_for(who: Option<&str>, now: SystemTime) -> String {
    let who: String = who
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if who.is_empty() {
        format!("flamefire-{}", epoch(now))
    } else {
        format!("flamefire-{who}")
    };
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_say_who_and_fit_sts() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let who = who_from_arn("arn:aws:iam::123456789012:user/team/alice");
        assert_eq!(session_name_for(Some(&who), now), "flamefire-alice");
        let who = who_from_arn("arn:aws:sts::123456789012:assumed-role/Admin/bob@example.com");
        assert_eq!(
            session_name_for(Some(&who), now),
            "flamefire-bob@example.com"
        );
        assert_eq!(session_name_for(Some("a b/c"), now), "flamefire-a-b-c");
        assert_eq!(session_name_for(None, now), "flamefire-1700000000");
        let long = "x".repeat(100);
        assert_eq!(session_name_for(Some(&long), now).len(), 64);
    }
}
