//! How flamefire gets its credentials, as people configure them (issue 17
//! §4): role profiles with `mfa_serial` assumed through the emulator's STS,
//! their cached sessions, chained sources, and `--profile` against
//! environment keys. Each test has its own config file, cache and keys.

use crate::iam::{SECRET, calls_by, fresh_access_key};
use crate::support::{ACCOUNT, Emulator, MFA_CODE, REGION, emulator_admin, endpoint, unique};

/// A role profile like the Terraform output's, with `mfa_serial`, whose
/// source profile has long-term keys; the cache lives under `dir`.
fn mfa_profile(dir: &std::path::Path, source_key: &str) -> Vec<(String, std::path::PathBuf)> {
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile base]\naws_access_key_id = {source_key}\naws_secret_access_key = {}\nregion = us-east-1\n\n\
             [profile oncall]\nrole_arn = arn:aws:iam::123456789012:role/flamefire-oncall\nsource_profile = base\n\
             mfa_serial = arn:aws:iam::123456789012:mfa/alice\nregion = us-east-1\n",
            SECRET
        ),
    )
    .unwrap();
    vec![
        ("AWS_CONFIG_FILE".into(), config),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), dir.join("none")),
        ("XDG_CACHE_HOME".into(), dir.join("cache")),
        ("HOME".into(), dir.to_path_buf()),
    ]
}

/// The binary in a new session: no controlling terminal, so /dev/tty cannot
/// be opened and nothing can wait for a code typed by hand.
fn without_terminal(args: &[&str], env: &[(String, std::path::PathBuf)]) -> std::process::Output {
    in_a_new_session(flamefire_with(args, env))
}

/// `cmd` run in a new session (no controlling terminal), to its end.
fn in_a_new_session(mut cmd: std::process::Command) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd.output().expect("flamefire runs")
}

/// The binary with `args`, the emulator's endpoint, no stray AWS settings,
/// and `env` on top (an empty value removes the variable).
fn flamefire_with(args: &[&str], env: &[(String, std::path::PathBuf)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("flamefire"));
    for var in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "FLAMEFIRE_BUCKET",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint())
        .args(args)
        .stdin(std::process::Stdio::null());
    // An empty value removes the variable.
    for (k, v) in env {
        if v.as_os_str().is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd
}

#[test]
fn an_mfa_role_profile_is_assumed_with_the_code_and_its_session_cached() {
    let emu = Emulator::new();
    let source_key = fresh_access_key();
    let dir = tempfile::tempdir().unwrap();
    let env = mfa_profile(dir.path(), &source_key);
    let doctor = [
        "doctor",
        "--profile",
        "oncall",
        "--bucket",
        &emu.bucket,
        "--document",
        &emu.document,
    ];

    // No code and no terminal: say how to pass one, call nothing.
    let out = without_terminal(&doctor, &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("✖ credentials"), "{text}");
    assert!(text.contains("--mfa-code"), "{text}");
    assert_eq!(calls_by(&source_key, "sts:AssumeRole"), (0, 0));

    // With --mfa-code: AssumeRole once, signed by the source profile.
    let with_code = [&doctor[..], &["--mfa-code", "123456"]].concat();
    let out = without_terminal(&with_code, &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("assumed-role/flamefire-oncall/"), "{text}");
    assert_eq!(calls_by(&source_key, "sts:AssumeRole"), (1, 0));
    let cache = dir.path().join("cache/flamefire/sts/oncall.json");
    let mode = std::fs::metadata(&cache)
        .expect("the session is cached")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // The cached session serves the next command: no code, no AssumeRole.
    let out = without_terminal(&doctor, &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(calls_by(&source_key, "sts:AssumeRole"), (1, 0));
}

/// An engineer the emulator knows (long-term key, secret, MFA device) and
/// the on-call role exactly as the Terraform module makes it for `emu`,
/// trusting that engineer with MFA.
struct Engineer {
    name: String,
    key: String,
    secret: String,
    serial: String,
    role_arn: String,
    role_name: String,
}

impl Engineer {
    fn new(emu: &Emulator) -> Engineer {
        let name = unique("engineer");
        let user_arn = format!("arn:aws:iam::{ACCOUNT}:user/{name}");
        let serial = format!("arn:aws:iam::{ACCOUNT}:mfa/{name}");
        let key = crate::support::access_key_id();
        let secret = format!("secret-of-{name}");
        emulator_admin(
            "POST",
            "iam",
            &serde_json::json!({
                "access_key_id": key, "secret_access_key": secret,
                "principal": user_arn, "mfa_serial": serial, "mfa_code": MFA_CODE,
            }),
        );
        let role_name = unique("oncall");
        let role = emulator_admin(
            "POST",
            "roles",
            &serde_json::json!({ "terraform": {
                "role_name": role_name, "bucket": emu.bucket, "document_name": emu.document,
                "region": REGION, "account_id": ACCOUNT, "trusted_principal_arns": [user_arn],
            }}),
        );
        Engineer {
            name,
            key,
            secret,
            serial,
            role_arn: role["role_arn"].as_str().unwrap().to_string(),
            role_name,
        }
    }

    /// `[profile engineer]` with the keys and `[profile oncall]` that
    /// assumes the role with MFA, as the Terraform output suggests; the
    /// cache and HOME under `dir`.
    fn profiles(&self, dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
        let config = dir.join("config");
        std::fs::write(
            &config,
            format!(
                "[profile engineer]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {REGION}\n\n\
                 [profile oncall]\nrole_arn = {}\nsource_profile = engineer\nmfa_serial = {}\nregion = {REGION}\n",
                self.key, self.secret, self.role_arn, self.serial
            ),
        )
        .unwrap();
        vec![
            ("AWS_CONFIG_FILE".into(), config),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), dir.join("none")),
            ("XDG_CACHE_HOME".into(), dir.join("cache")),
            ("HOME".into(), dir.to_path_buf()),
        ]
    }
}

fn doctor_args<'a>(emu: &'a Emulator, profile: &'a str) -> Vec<&'a str> {
    vec![
        "doctor",
        "--profile",
        profile,
        "--bucket",
        &emu.bucket,
        "--document",
        &emu.document,
    ]
}

/// Issue 17 §4: the AWS CLI drops environment keys when --profile is given;
/// flamefire let AWS_ACCESS_KEY_ID win (and skipped MFA). And the role
/// session was named `flamefire-<epoch>`, which tells CloudTrail nothing:
/// it now names the engineer whose keys assumed the role.
#[test]
fn an_explicit_profile_beats_environment_keys_and_its_session_names_the_engineer() {
    let emu = Emulator::new();
    let engineer = Engineer::new(&emu);
    let dir = tempfile::tempdir().unwrap();
    let mut env = engineer.profiles(dir.path());
    let stray = fresh_access_key();
    env.push(("AWS_ACCESS_KEY_ID".into(), stray.clone().into()));
    env.push(("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()));

    let args = [&doctor_args(&emu, "oncall")[..], &["--mfa-code", MFA_CODE]].concat();
    let out = without_terminal(&args, &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let session = format!(
        "assumed-role/{}/flamefire-{}",
        engineer.role_name, engineer.name
    );
    assert!(text.contains(&session), "{session} not in:\n{text}");
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (1, 0));
    assert_eq!(calls_by(&stray, "sts:GetCallerIdentity"), (0, 0));

    // A plain key profile too: the profile's keys sign, not the environment's.
    let out = without_terminal(&doctor_args(&emu, "engineer"), &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("user/{}", engineer.name)),
        "the engineer profile's identity is not in:\n{text}"
    );
    assert_eq!(calls_by(&stray, "sts:GetCallerIdentity"), (0, 0));

    // Without --profile, the environment's keys win, as in the AWS CLI.
    let without: Vec<&str> = doctor_args(&emu, "oncall")
        .into_iter()
        .filter(|a| *a != "--profile" && *a != "oncall")
        .collect();
    let out = without_terminal(&without, &env);
    assert_eq!(
        calls_by(&stray, "sts:GetCallerIdentity"),
        (1, 0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Issue 17 §4: the MFA profile's source_profile was loaded with
/// aws-config's `ProviderConfig::default()`, which has no region; a source
/// that assumes a role itself then failed with "Missing Region" before any
/// call. Here the region is only on the command line, as a user of
/// `--region` has it, and the source is a role chained from the engineer's
/// keys. (The last hop's role is not registered with the emulator, so moto
/// answers it: the emulator's STS takes MFA from users only.)
#[test]
fn a_source_profile_that_assumes_a_role_itself_is_given_the_region() {
    let emu = Emulator::new();
    let engineer = Engineer::new(&emu);
    let hub_name = unique("hub");
    let hub = emulator_admin(
        "POST",
        "roles",
        &serde_json::json!({
            "role_name": hub_name,
            "policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]},
            "trust_policy": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/{}", engineer.name)}}]},
        }),
    );
    let hub_arn = hub["role_arn"].as_str().unwrap();
    let target = unique("target");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile engineer]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [profile hub]\nrole_arn = {hub_arn}\nsource_profile = engineer\n\n\
             [profile oncall]\nrole_arn = arn:aws:iam::{ACCOUNT}:role/{target}\nsource_profile = hub\nmfa_serial = {}\n",
            engineer.key, engineer.secret, engineer.serial
        ),
    )
    .unwrap();
    let env = vec![
        ("AWS_CONFIG_FILE".into(), config),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            dir.path().join("none"),
        ),
        ("XDG_CACHE_HOME".into(), dir.path().join("cache")),
        ("HOME".into(), dir.path().to_path_buf()),
    ];
    let args = [
        &doctor_args(&emu, "oncall")[..],
        &["--mfa-code", MFA_CODE, "--region", REGION],
    ]
    .concat();
    let out = without_terminal_or_region(&args, &env);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    // aws-config's words for it: "missing signing region" / "Missing Region".
    let lower = text.to_lowercase();
    assert!(
        !lower.contains("missing signing region") && !lower.contains("missing region"),
        "{text}\n{err}"
    );
    assert!(
        text.contains(&format!("assumed-role/{target}/flamefire-")),
        "{text}\n{err}"
    );
    // The hub hop: signed by the engineer's keys, judged by the emulator's STS.
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (1, 0));
}

/// Issue 17 §4: a cached MFA session with less life left than the run
/// needs was used anyway, and the run then refused to sign uploads that
/// would outlive it. Now it is renewed with a new code. 20 minutes left is
/// plenty for `doctor` and a default run, not for `--timeout 1500`.
#[test]
fn a_cached_mfa_session_too_short_for_the_run_is_renewed_with_a_new_code() {
    let emu = Emulator::new();
    let engineer = Engineer::new(&emu);
    let dir = tempfile::tempdir().unwrap();
    let env = engineer.profiles(dir.path());
    let cache = dir.path().join("cache/flamefire/sts/oncall.json");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let short = serde_json::json!({
        "role_arn": engineer.role_arn, "mfa_serial": engineer.serial,
        "access_key_id": fresh_access_key(), "secret_access_key": SECRET,
        "session_token": "cached-token", "expires_epoch": now + 20 * 60,
    });
    std::fs::write(&cache, short.to_string()).unwrap();
    let ssm = |extra: &[&str]| {
        let mut args = vec![
            "ssm",
            "--profile",
            "oncall",
            "--asg",
            "no-such-group",
            "--bucket",
            &emu.bucket,
            "--document",
            &emu.document,
        ];
        args.extend_from_slice(extra);
        without_terminal(&args, &env)
    };

    // A default run fits in 20 minutes: the cache serves it, nobody is asked.
    let out = ssm(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("--mfa-code"), "{err}");
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (0, 0));

    // --timeout 1500 does not: a new code is asked for (no terminal here).
    let out = ssm(&["--timeout", "1500"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--mfa-code"), "{err}");

    // Given one, the role is assumed again and the longer session cached.
    let _ = ssm(&["--timeout", "1500", "--mfa-code", MFA_CODE]);
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (1, 0));
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let expires = cached["expires_epoch"].as_u64().unwrap();
    assert!(expires >= now + 3000, "{cached}");
}

/// `without_terminal`, with no region in the environment: only flags and
/// profiles say it.
fn without_terminal_or_region(
    args: &[&str],
    env: &[(String, std::path::PathBuf)],
) -> std::process::Output {
    let mut env = env.to_vec();
    env.push(("AWS_REGION".into(), "".into()));
    env.push(("AWS_DEFAULT_REGION".into(), "".into()));
    without_terminal(args, &env)
}

/// What `aws login` leaves behind for `engineer`, as the emulator's Sign-In
/// issues it: the session ARN (a profile's `login_session`), an access
/// token that has already expired (so that aws-config must refresh it
/// before use), a refresh token bound to a DPoP key, and that key.
fn aws_login(engineer: &Engineer) -> serde_json::Value {
    emulator_admin(
        "POST",
        "signin",
        &serde_json::json!({ "access_key_id": engineer.key }),
    )
}

/// The token file where aws-config 1.13.0 looks for it:
/// `$AWS_LOGIN_CACHE_DIRECTORY/<hex SHA-256 of the login_session>.json`
/// (src/login/cache.rs 24-45), with the fields its `parse_cached_token`
/// reads (cache.rs 135-300; `accessToken` as in json_credentials.rs).
fn login_token_file(cache_dir: &std::path::Path, login: &serde_json::Value) -> std::path::PathBuf {
    use sha2::Digest;
    let session = login["login_session"].as_str().unwrap();
    let hash: String = sha2::Sha256::digest(session.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    cache_dir.join(format!("{hash}.json"))
}

fn write_login_token(cache_dir: &std::path::Path, login: &serde_json::Value) -> std::path::PathBuf {
    let file = login_token_file(cache_dir, login);
    std::fs::create_dir_all(cache_dir).unwrap();
    let token = serde_json::json!({
        "accessToken": login["access_token"],
        "tokenType": "aws_sigv4",
        "refreshToken": login["refresh_token"],
        "clientId": login["client_id"],
        "dpopKey": login["dpop_key"],
    });
    std::fs::write(&file, token.to_string()).unwrap();
    file
}

/// `[profile console]` logged in with `aws login`, and `[profile oncall]`
/// that assumes the engineer's on-call role with MFA from it. No region in
/// the files: `--region` alone says it, as in the chained test.
fn login_profiles(
    engineer: &Engineer,
    login: &serde_json::Value,
    dir: &std::path::Path,
) -> Vec<(String, std::path::PathBuf)> {
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile console]\nlogin_session = {}\n\n\
             [profile oncall]\nrole_arn = {}\nsource_profile = console\nmfa_serial = {}\n",
            login["login_session"].as_str().unwrap(),
            engineer.role_arn,
            engineer.serial
        ),
    )
    .unwrap();
    let cache = dir.join("login-cache");
    write_login_token(&cache, login);
    vec![
        ("AWS_CONFIG_FILE".into(), config),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), dir.join("none")),
        ("AWS_LOGIN_CACHE_DIRECTORY".into(), cache),
        ("XDG_CACHE_HOME".into(), dir.join("cache")),
        ("HOME".into(), dir.to_path_buf()),
    ]
}

/// Refreshes the emulator's Sign-In answered for `login`'s session.
fn refreshes(login: &serde_json::Value) -> u64 {
    let all: serde_json::Value = serde_json::from_str(&crate::support::emulator_http(
        "GET",
        "/_flamefire/signin",
        None,
    ))
    .unwrap();
    all["refreshes"][login["login_session"].as_str().unwrap()]
        .as_u64()
        .unwrap_or(0)
}

/// Issue 17 §4: an `aws login` source whose access token has expired must
/// be refreshed through AWS Sign-In (CreateOAuth2Token with a DPoP proof),
/// which needs the region: the MFA path gave the source's provider none,
/// so this failed with "Missing Region". Here the refreshed session signs
/// the AssumeRole with MFA, the expired one signs nothing, and the token
/// file holds the rotated refresh token afterwards.
#[test]
fn an_aws_login_source_is_refreshed_through_sign_in_and_assumes_the_role_with_mfa() {
    let emu = Emulator::new();
    let engineer = Engineer::new(&emu);
    let login = aws_login(&engineer);
    let dir = tempfile::tempdir().unwrap();
    let env = login_profiles(&engineer, &login, dir.path());
    let args = [
        &doctor_args(&emu, "oncall")[..],
        &["--mfa-code", MFA_CODE, "--region", REGION],
    ]
    .concat();

    let out = without_terminal_or_region(&args, &env);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    let session = format!(
        "assumed-role/{}/flamefire-{}",
        engineer.role_name, engineer.name
    );
    assert!(text.contains(&session), "{session} not in:\n{text}\n{err}");
    assert_eq!(refreshes(&login), 1);

    // The expired access token signed nothing; the refreshed one, saved
    // back by aws-config with the rotated refresh token, signed the AssumeRole.
    let expired = login["access_token"]["accessKeyId"].as_str().unwrap();
    assert_eq!(calls_by(expired, "sts:AssumeRole"), (0, 0));
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(login_token_file(&dir.path().join("login-cache"), &login)).unwrap(),
    )
    .unwrap();
    assert_ne!(saved["refreshToken"], login["refresh_token"], "{saved}");
    let fresh = saved["accessToken"]["accessKeyId"].as_str().unwrap();
    assert_ne!(fresh, expired);
    assert_eq!(calls_by(fresh, "sts:AssumeRole"), (1, 0));
}

/// Issue 17 §4: when Sign-In refuses the refresh (the session was signed
/// out or revoked), the error names the profiles and the command that
/// logs in again, and no role is assumed.
#[test]
fn a_refused_aws_login_refresh_says_to_log_in_again() {
    let emu = Emulator::new();
    let engineer = Engineer::new(&emu);
    let login = aws_login(&engineer);
    emulator_admin(
        "POST",
        "signin/revoke",
        &serde_json::json!({ "login_session": login["login_session"] }),
    );
    let dir = tempfile::tempdir().unwrap();
    let env = login_profiles(&engineer, &login, dir.path());
    let args = [
        &doctor_args(&emu, "oncall")[..],
        &["--mfa-code", MFA_CODE, "--region", REGION],
    ]
    .concat();

    let out = without_terminal(&args, &env);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}\n{err}");
    assert!(text.contains("✖ credentials"), "{text}");
    assert!(
        text.contains("source_profile console of profile oncall"),
        "{text}"
    );
    assert!(text.contains("`aws login --profile console`"), "{text}");
    // aws-config's words for Sign-In's TOKEN_EXPIRED (login.rs 168).
    assert!(text.contains("Your session has expired"), "{text}");
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (0, 0));
    assert_eq!(refreshes(&login), 0);
    assert!(!dir.path().join("cache/flamefire/sts/oncall.json").exists());
}

/// `cmd`'s session cache entry, as flamefire wrote it.
fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Regression (issue 17 §6 for the MFA cache): whether a cached role
/// session still had life left was judged by the laptop's clock. A laptop
/// 30 minutes fast threw away a session with 40 minutes left (and, with no
/// terminal, could not run at all); a laptop 30 minutes slow used a session
/// STS had already ended. Now STS's `Date` judges it (flamefire runs under
/// libfaketime; the emulator keeps this machine's true time).
#[test]
fn a_cached_mfa_session_is_judged_by_aws_clock_not_the_laptops() {
    let emu = Emulator::new();
    let engineer = Engineer::new(&emu);
    let dir = tempfile::tempdir().unwrap();
    let env = engineer.profiles(dir.path());
    let doctor = doctor_args(&emu, "oncall");
    let with_code = [&doctor[..], &["--mfa-code", MFA_CODE]].concat();
    let out = without_terminal(&with_code, &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (1, 0));
    let cache = dir.path().join("cache/flamefire/sts/oncall.json");
    let mut cached = read_json(&cache);

    // 40 minutes left by AWS's clock, 10 by a laptop 30 minutes fast: the
    // session serves, and nobody is asked for a code (there is no terminal).
    cached["expires_epoch"] = (epoch_now() + 40 * 60).into();
    std::fs::write(&cache, cached.to_string()).unwrap();
    let out = in_a_new_session(crate::clock::on_a_clock_off_by(
        1800,
        &flamefire_with(&doctor, &env),
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(!text.contains("--mfa-code"), "{text}");
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (1, 0));

    // Ended 10 minutes ago by AWS's clock, 20 minutes left by a laptop 30
    // minutes slow: STS refuses it, so the role is assumed again with the code.
    let key = cached["access_key_id"].as_str().unwrap();
    emulator_admin(
        "POST",
        "iam/expire",
        &serde_json::json!({ "access_key_id": key, "in_seconds": -600 }),
    );
    cached["expires_epoch"] = (epoch_now() - 600).into();
    std::fs::write(&cache, cached.to_string()).unwrap();
    let out = in_a_new_session(crate::clock::on_a_clock_off_by(
        -1800,
        &flamefire_with(&with_code, &env),
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert_eq!(calls_by(&engineer.key, "sts:AssumeRole"), (2, 0));
    let renewed = read_json(&cache);
    assert_ne!(renewed["access_key_id"], cached["access_key_id"]);
    assert!(
        renewed["expires_epoch"].as_u64().unwrap() > epoch_now() + 3000,
        "{renewed}"
    );
}
