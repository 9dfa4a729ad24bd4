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
//!
//! Whether a cached session still has life left is judged by the
//! account's clock (`clock`), not the laptop's: one GetCallerIdentity with
//! the cached session asks STS, whose `Date` sets the run's clock and whose
//! `ExpiredToken` says the session is over, however wrong the laptop is.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use serde::{Deserialize, Serialize};

use super::clock::Clock;
use super::errors;
use crate::error::{AwsKind, Error, Result};

/// A profile that assumes a role with MFA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaProfile {
    pub profile: String,
    pub role_arn: String,
    pub mfa_serial: String,
    pub source_profile: String,
    /// How the source profile is logged in again, when it is a login
    /// (`aws login`'s `login_session`, or SSO): the command to name when
    /// its credentials fail.
    pub source_login: Option<String>,
    pub role_session_name: Option<String>,
    pub duration_seconds: Option<i32>,
    pub external_id: Option<String>,
}

/// A cached session is used only while it has this much life left: enough
/// for a default run (30 s recording, 300 s timeout) with room to spare.
const CACHE_MIN_LIFE: Duration = Duration::from_secs(15 * 60);

/// A cached session that ended this long ago by the laptop's clock is
/// dropped without asking STS: a laptop a day wrong is rarer than a
/// session left over from yesterday, and asking would put an
/// `ExpiredToken` in CloudTrail at the start of every day.
const CACHE_STALE: Duration = Duration::from_secs(24 * 3600);

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
    let source_login = set.get_profile(source_profile).and_then(|src| {
        if src.get("login_session").is_some() {
            Some(format!("aws login --profile {source_profile}"))
        } else if src.get("sso_session").is_some() || src.get("sso_start_url").is_some() {
            Some(format!("aws sso login --profile {source_profile}"))
        } else {
            None
        }
    });
    Ok(Some(MfaProfile {
        profile: name.clone(),
        role_arn: role_arn.to_string(),
        mfa_serial: mfa_serial.to_string(),
        source_profile: source_profile.to_string(),
        source_login,
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

/// The cached session of `p`, when it is the same role and device.
fn read_cache(p: &MfaProfile) -> Option<Cached> {
    let bytes = std::fs::read(cache_file(&p.profile)?).ok()?;
    let c: Cached = serde_json::from_slice(&bytes).ok()?;
    (c.role_arn == p.role_arn && c.mfa_serial == p.mfa_serial).then_some(c)
}

impl Cached {
    fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            Some(UNIX_EPOCH + Duration::from_secs(self.expires_epoch)),
            "flamefire-mfa-cache",
        )
    }
}

/// Whether a session ending at `expires_epoch` lives `min_life` more (at
/// least [`CACHE_MIN_LIFE`]) after `now`; else the life it needs, in s.
fn lives_long_enough(
    expires_epoch: u64,
    now: SystemTime,
    min_life: Duration,
) -> std::result::Result<(), u64> {
    let life = min_life.max(CACHE_MIN_LIFE).as_secs();
    if expires_epoch > epoch(now) + life {
        Ok(())
    } else {
        Err(life)
    }
}

/// The cached session of `p`, when STS still takes it and, by the
/// account's clock, it lives long enough for this run. The one
/// GetCallerIdentity it makes needs no permission; its `Date` sets
/// `clock` for the whole run (every later client shares it).
async fn cached_session(
    p: &MfaProfile,
    min_life: Duration,
    base: &aws_types::SdkConfig,
    clock: &Clock,
) -> Option<Credentials> {
    let cached = read_cache(p)?;
    if cached.expires_epoch + CACHE_STALE.as_secs() < epoch(SystemTime::now()) {
        tracing::debug!(
            "the cached MFA session of profile {} is long over",
            p.profile
        );
        return None;
    }
    let creds = cached.credentials();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(base)
            .credentials_provider(creds.clone())
            .interceptor(clock.interceptor())
            .build(),
    );
    if let Err(e) = sts.get_caller_identity().send().await {
        if errors::kind(&e) == Some(AwsKind::BadCredentials) {
            tracing::info!(
                "STS no longer takes the cached MFA session of profile {} ({}): asking for a new code",
                p.profile,
                errors::chain(&e)
            );
            return None;
        }
        // Not an answer about the session (the network, a throttle): judge
        // by the clock as far as it is known; the run's own calls will say more.
        tracing::debug!(
            "sts:GetCallerIdentity with the cached MFA session: {}",
            errors::chain(&e)
        );
    }
    match lives_long_enough(cached.expires_epoch, clock.now(), min_life) {
        Ok(()) => Some(creds),
        Err(life) => {
            tracing::info!(
                "the cached MFA session of profile {} ends too soon for this run ({} s needed, by AWS's clock): asking for a new code",
                p.profile,
                life
            );
            None
        }
    }
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
/// the run, given to the source profile's own provider too; `clock` is
/// the run's, set by the first STS answer here.
pub async fn credentials(
    p: &MfaProfile,
    plan: &super::AwsPlan,
    region: &aws_types::region::Region,
    base: &aws_types::SdkConfig,
    clock: &Clock,
) -> Result<Credentials> {
    // The cache wins even over --mfa-code: AWS refuses a code used twice.
    if let Some(cached) = cached_session(p, plan.min_life, base, clock).await {
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
            next: match &p.source_login {
                Some(login) => format!(
                    "log in again with `{login}` (profile {} is the source_profile of {}), then retry",
                    p.source_profile, p.profile
                ),
                None => format!(
                    "check the credentials of profile {} (it signs the AssumeRole of {})",
                    p.source_profile, p.role_arn
                ),
            },
        })?;
    let code = token_code(p, plan.mfa_code.as_deref()).await?;
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(base)
            .credentials_provider(source_creds)
            .interceptor(clock.interceptor())
            .build(),
    );
    let session = match &p.role_session_name {
        Some(name) => name.clone(),
        None => session_name(&sts, SystemTime::now()).await,
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
    fn a_cached_session_must_outlive_the_run_and_the_minimum() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |s: u64| 1_700_000_000 + s;
        // Less than CACHE_MIN_LIFE left, whatever the run needs.
        assert_eq!(lives_long_enough(at(600), now, Duration::ZERO), Err(900));
        assert_eq!(lives_long_enough(at(901), now, Duration::ZERO), Ok(()));
        // A run longer than the minimum needs its own length.
        let run = Duration::from_secs(1500);
        assert_eq!(lives_long_enough(at(1200), now, run), Err(1500));
        assert_eq!(lives_long_enough(at(1501), now, run), Ok(()));
        // Over already.
        assert_eq!(lives_long_enough(at(0), now, Duration::ZERO), Err(900));
    }

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
