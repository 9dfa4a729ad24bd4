//! Shared test fixtures: the real binary with a hygienic environment, real
//! Node processes, and the embedded document's script.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails (never skips) when a tool the tests need is missing.
pub fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is missing: run scripts/test.sh (the README's test command), which installs perf, node and the emulator"
    );
}

/// The emulator's endpoint, as scripts/test.sh exports it.
pub fn endpoint() -> String {
    let port = std::env::var("FLAMEFIRE_EMULATOR_PORT").unwrap_or_else(|_| "5055".into());
    format!("http://127.0.0.1:{port}")
}

/// The real binary, with no way to reach real AWS or instance metadata
/// (bat's test hygiene): no profiles, dummy credentials, the emulator endpoint.
pub fn flamefire() -> assert_cmd::Command {
    assert_cmd::Command::from_std(flamefire_process())
}

/// [`flamefire`] as a plain `std::process::Command`, for tests that spawn the
/// binary and talk to it while it runs (Ctrl-C, reading progress lines).
pub fn flamefire_process() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("flamefire"));
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_SESSION_TOKEN",
        "FLAMEFIRE_BUCKET",
        "FLAMEFIRE_PREFIX",
        "FLAMEFIRE_CONFIG",
        "FLAMEFIRE_ENV",
    ] {
        cmd.env_remove(var);
    }
    // No config file: a developer's ~/.config/flamefire/config.toml must not
    // change what the tests see (tests/config.rs sets its own).
    cmd.env("XDG_CONFIG_HOME", repo().join("tests/data/no-config-here"));
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_ENDPOINT_URL", endpoint());
    cmd
}

/// Reads `stderr` line by line until one contains `needle`; fails when the
/// stream ends first or `within` passes.
pub fn wait_for_line(stderr: &mut impl std::io::BufRead, needle: &str, within: Duration) {
    let started = Instant::now();
    let mut line = String::new();
    while !line.contains(needle) {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "flamefire ended before printing {needle:?}"
        );
        assert!(
            started.elapsed() < within,
            "no {needle:?} line within {within:?}"
        );
    }
}

/// Held by tests that put a perf for another kernel where the script looks
/// for one (/usr/lib/linux-tools*/perf, /usr/bin/perf_<ver>): the script
/// takes the newest it finds, so two such tests at once would see each
/// other's.
pub fn perf_stand_ins() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by tests whose figures depend on the host's live perf maps (the
/// script's memory estimate sums every live /tmp/perf-PID.map) and by tests
/// that plant big maps: one of them planting tens of MB between another's
/// reading and its script's check would turn that one's limit into a
/// refusal.
pub fn live_maps_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The demo cluster (`demo/cluster.js`) with perf maps on: real Node
/// processes with a known hot function (`tokenizeHtml` in sick mode).
pub struct NodeApp {
    child: Child,
    pub pids: Vec<u32>,
    /// Its working directory: Node 20's --perf-basic-prof writes isolate logs there.
    _cwd: tempfile::TempDir,
}

impl NodeApp {
    // The child is owned by the returned guard, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start(mode: &str, workers: usize, node_flags: &[&str]) -> NodeApp {
        require("node");
        let cwd = tempfile::tempdir().expect("temp dir");
        let child = Command::new("node")
            .current_dir(cwd.path())
            .args(node_flags)
            .arg(repo().join("demo/cluster.js"))
            .env("FLAMEFIRE_DEMO_MODE", mode)
            .env("FLAMEFIRE_DEMO_WORKERS", workers.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("node starts");
        let primary = child.id();
        // Owned by the guard from here on, so a failed wait still stops it.
        let mut app = NodeApp {
            child,
            pids: vec![primary],
            _cwd: cwd,
        };
        let started = Instant::now();
        loop {
            let kids = children(primary);
            if kids.len() >= workers {
                std::thread::sleep(Duration::from_millis(800)); // let the JIT map the hot code
                app.pids.extend(kids);
                return app;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "demo workers did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `--pid` arguments for all of its processes.
    pub fn pid_args(&self) -> Vec<String> {
        self.pids
            .iter()
            .flat_map(|p| ["--pid".to_string(), p.to_string()])
            .collect()
    }
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// The parent of `pid` (field 4 of /proc/PID/stat), if it still runs.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split(' ').nth(1)?.parse().ok()
}

pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Every live process whose command name is `perf`.
pub fn perf_processes() -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == "perf") {
            out.push(pid);
        }
    }
    out
}

/// Shares of samples: (samples in stacks containing `frame`, all samples).
pub fn share_of(folded: &Path, frame: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(folded).expect("folded file");
    let mut hit = 0;
    let mut all = 0;
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("folded line");
        let count: u64 = count.parse().expect("count");
        all += count;
        if stack.split(';').any(|f| f.contains(frame)) {
            hit += count;
        }
    }
    (hit, all)
}

/// Checks that an SVG is well-formed XML and returns the text of every
/// `<title>` (inferno's frame labels), entities decoded.
pub fn svg_titles(svg: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(svg).expect("svg exists");
    let mut reader = quick_xml::Reader::from_str(&text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Err(e) => panic!("{} is not well-formed XML: {e}", svg.display()),
            _ => {}
        }
    }
    text.split("<title>")
        .skip(1)
        .filter_map(|t| t.split_once("</title>").map(|(title, _)| title))
        .map(|t| {
            t.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffff
    )
}

/// One HTTP call to the emulator with curl; returns the body.
pub fn emulator_http(method: &str, path: &str, body: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "-X", method])
        .arg(format!("{}{path}", endpoint()));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd.output().expect("curl runs");
    assert!(
        out.status.success(),
        "the emulator at {} does not answer {method} {path}: start it with tests/emulator/start.sh (scripts/test.sh does): {}",
        endpoint(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One admin call to the emulator with a JSON body; returns the JSON reply.
pub fn emulator_admin(method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let reply = emulator_http(
        method,
        &format!("/_flamefire/{path}"),
        Some(&body.to_string()),
    );
    let value: serde_json::Value = serde_json::from_str(&reply).unwrap_or_else(|e| {
        panic!("the emulator's reply to {method} {path} is not JSON ({e}): {reply}")
    });
    assert!(
        value.get("error").is_none(),
        "the emulator refused {method} /_flamefire/{path}: {reply} (restart an older emulator: tests/emulator/stop.sh)"
    );
    value
}

/// A fresh access key id of AWS's shape: `AKIA` + 16 uppercase letters and digits.
pub fn access_key_id() -> String {
    use std::hash::BuildHasher;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let seed = std::collections::hash_map::RandomState::new();
    let mut key = String::from("AKIA");
    for i in 0..16u64 {
        key.push(ALPHABET[(seed.hash_one(i) % ALPHABET.len() as u64) as usize] as char);
    }
    key
}

pub const ACCOUNT: &str = "123456789012";

/// Emulator tags: a managed, online instance, and one that replays a
/// recorded capture (`replay_capture()`) instead of running the script.
pub const ONLINE: (&str, &str) = ("flamefire-test:ssm", "online");
pub const REPLAY: (&str, &str) = ("flamefire-test:behaviour", "replay");

/// The capture `replay` instances upload (a sick Node cluster).
pub fn replay_capture() -> String {
    repo()
        .join("tests/data/captures/sick.perf.gz")
        .to_str()
        .unwrap()
        .to_string()
}
pub const REGION: &str = "us-east-1";
/// The code the emulator's MFA device for the on-call engineer accepts.
pub const MFA_CODE: &str = "123456";

/// Session credentials of the on-call role.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub role_arn: String,
}

impl Session {
    /// The on-call role exactly as the Terraform module creates it (its
    /// templates, its defaults: MFA required, tag flamefire=enabled, prefix
    /// flamefire/) for this bucket and document, plus `overrides` of module
    /// variables; assumed with MFA through the emulator's STS by an engineer
    /// the trust policy names.
    pub fn oncall(bucket: &str, document: &str, overrides: serde_json::Value) -> Session {
        let engineer = unique("engineer");
        let user_arn = format!("arn:aws:iam::{ACCOUNT}:user/{engineer}");
        let serial = format!("arn:aws:iam::{ACCOUNT}:mfa/{engineer}");
        let user_key = access_key_id();
        let user_secret = format!("secret-of-{engineer}");
        emulator_admin(
            "POST",
            "iam",
            &serde_json::json!({
                "access_key_id": user_key, "secret_access_key": user_secret,
                "principal": user_arn, "mfa_serial": serial, "mfa_code": MFA_CODE,
            }),
        );
        let mut vars = serde_json::json!({
            "role_name": unique("oncall"), "bucket": bucket, "document_name": document,
            "region": REGION, "account_id": ACCOUNT, "trusted_principal_arns": [user_arn],
        });
        for (k, v) in overrides.as_object().into_iter().flatten() {
            vars[k] = v.clone();
        }
        let role = emulator_admin("POST", "roles", &serde_json::json!({ "terraform": vars }));
        let role_arn = role["role_arn"].as_str().unwrap().to_string();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let creds = runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(REGION))
                .endpoint_url(endpoint())
                .credentials_provider(aws_credential_types::Credentials::new(
                    &user_key,
                    &user_secret,
                    None,
                    None,
                    "flamefire-test-engineer",
                ))
                .load()
                .await;
            aws_sdk_sts::Client::new(&config)
                .assume_role()
                .role_arn(&role_arn)
                .role_session_name("oncall")
                .serial_number(&serial)
                .token_code(MFA_CODE)
                .send()
                .await
                .unwrap_or_else(|e| panic!("AssumeRole of {role_arn} through the emulator: {e:?}"))
        });
        let c = creds.credentials().expect("AssumeRole returns credentials");
        Session {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().to_string(),
            role_arn,
        }
    }

    /// Signs `cmd` with these session credentials.
    pub fn apply(&self, cmd: &mut assert_cmd::Command) {
        cmd.env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("AWS_SESSION_TOKEN", &self.session_token);
    }

    /// Ends the session `in_seconds` from now (STS's shortest is 900 s).
    pub fn expire_in(&self, in_seconds: f64) {
        emulator_admin(
            "POST",
            "iam/expire",
            &serde_json::json!({"access_key_id": self.access_key_id, "in_seconds": in_seconds}),
        );
    }
}

/// The emulator with a fresh bucket and the embedded document deployed
/// under a fresh name: each test gets its own. `ssm()` runs as the on-call
/// role the Terraform module creates for them.
pub struct Emulator {
    pub bucket: String,
    pub document: String,
    oncall: std::sync::OnceLock<Session>,
}

impl Emulator {
    pub fn new() -> Emulator {
        let health = emulator_http("GET", "/_flamefire/health", None);
        assert!(health.contains("\"ok\""), "emulator unhealthy: {health}");
        let bucket = unique("ff-bucket").to_lowercase();
        emulator_http("PUT", &format!("/{bucket}"), None);
        let document = unique("flamefire-record");
        flamefire()
            .args(["document", "deploy", "--document", &document])
            .assert()
            .success();
        Emulator {
            bucket,
            document,
            oncall: std::sync::OnceLock::new(),
        }
    }

    /// The on-call role's session for this bucket and document (assumed once).
    pub fn oncall(&self) -> &Session {
        self.oncall
            .get_or_init(|| Session::oncall(&self.bucket, &self.document, serde_json::json!({})))
    }

    /// Seeds `count` running instances with these tags; returns their ids.
    /// They carry the module's opt-in tag `flamefire=enabled` unless `tags`
    /// set `flamefire` themselves.
    pub fn seed(&self, count: usize, tags: &[(&str, &str)]) -> Vec<String> {
        let mut tags: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        tags.entry("flamefire")
            .or_insert_with(|| serde_json::Value::String("enabled".into()));
        let body = serde_json::json!({"count": count, "tags": tags}).to_string();
        let reply: serde_json::Value =
            serde_json::from_str(&emulator_http("POST", "/_flamefire/seed", Some(&body))).unwrap();
        reply["instance_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect()
    }

    /// Seeds `count` online instances that replay the stored capture
    /// (`replay_capture()`) instead of running the script, plus `extra` tags.
    pub fn seed_replaying(&self, count: usize, extra: &[(&str, &str)]) -> Vec<String> {
        let capture = replay_capture();
        let replay = [ONLINE, REPLAY, ("flamefire-test:replay-capture", &capture)];
        self.seed(count, &[&replay[..], extra].concat())
    }

    /// `flamefire ssm` against this bucket and document, as the on-call role.
    pub fn ssm(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.ssm_process())
    }

    /// `ssm()` as a plain process, for tests that watch it while it runs.
    pub fn ssm_process(&self) -> Command {
        let mut cmd = flamefire_process();
        cmd.args([
            "ssm",
            "--bucket",
            &self.bucket,
            "--document",
            &self.document,
        ]);
        let s = self.oncall();
        cmd.env("AWS_ACCESS_KEY_ID", &s.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &s.secret_access_key)
            .env("AWS_SESSION_TOKEN", &s.session_token);
        cmd
    }

    /// Every invocation of this emulator's commands for `instance`: (status, details).
    pub fn invocations_of(&self, instance: &str) -> Vec<(String, String)> {
        self.invocations().remove(instance).unwrap_or_default()
    }

    /// Every invocation of this emulator's commands, by instance: (status,
    /// details), in one call however many hosts.
    pub fn invocations(&self) -> std::collections::HashMap<String, Vec<(String, String)>> {
        let all: serde_json::Value =
            serde_json::from_str(&emulator_http("GET", "/_flamefire/invocations", None)).unwrap();
        let mut out: std::collections::HashMap<String, Vec<(String, String)>> =
            std::collections::HashMap::new();
        for cmd in all["commands"].as_array().unwrap() {
            if cmd["DocumentName"].as_str() != Some(self.document.as_str()) {
                continue;
            }
            for inv in cmd["invocations"].as_array().unwrap() {
                let field = |k: &str| inv[k].as_str().unwrap_or_default().to_string();
                out.entry(field("InstanceId"))
                    .or_default()
                    .push((field("Status"), field("StatusDetails")));
            }
        }
        out
    }
}

/// A named pipe at `path` (mkfifo(1)).
pub fn mkfifo(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}: {status}", path.display());
}

/// A bucket policy that admits uploads from the office's addresses only
/// (127.0.0.0/8, the laptop here): the hosts' POSTs from their NAT address
/// (tag flamefire-test:source-ip) are refused, the laptop's calls are not.
pub fn office_only_uploads(bucket: &str) {
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "OfficeOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
        "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]});
    put_bucket_policy(bucket, &policy.to_string());
}

/// PutBucketPolicy with the test environment's (admin) credentials, through
/// the real SDK: the emulator keeps and judges bucket policies itself.
fn put_bucket_policy(bucket: &str, policy: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint())
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutBucketPolicy on {bucket}: {e:?}"));
    });
}

/// Every key in the bucket (ListObjectsV2 with the test environment's
/// credentials, through the front server; up to 1,000 keys).
pub fn bucket_keys(bucket: &str) -> Vec<String> {
    let xml = emulator_http("GET", &format!("/{bucket}?list-type=2"), None);
    xml.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// A process that is killed (its whole group) and reaped on drop, with the
/// files planted for it removed.
pub struct Guard {
    pub child: Child,
    pub planted: Vec<PathBuf>,
}

impl Guard {
    pub fn spawn(cmd: &mut Command) -> Guard {
        let child = cmd
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Guard {
            child,
            planted: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
        for path in &self.planted {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits for the child to end; kills its group and fails if it has not
/// ended after `limit` (a safety net against a hang, not a time assertion).
pub fn wait_or_kill(mut child: Child, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: the script still ran after {limit:?}\n{}",
                crate::agent::describe(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.wait_with_output().unwrap()
}
