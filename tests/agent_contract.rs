//! The emulated SSM agent (tests/emulator) against the real agent's contract:
//! one test per row of the table in tests/emulator/README.md ("The real
//! agent's contract"), each through the real SDK over HTTP with a small
//! document registered in the emulator, so every other test runs its
//! scripts the way amazon-ssm-agent would on a host.
//!
//! Issue 16: the stand-in agent was gentler than the real one (working
//! directory, environment, session, pipes, exit codes, truncation, and it
//! never checked `allowedPattern` with RE2 as the real agent does).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Emulator, ONLINE, REGION, emulator_http, endpoint, repo, unique};

/// systemd's default PATH for services, which the agent passes on.
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Generous safety net for a command to end; never the assertion.
const SAFETY: Duration = Duration::from_secs(300);

/// One invocation as SSM reports it, from ListCommandInvocations (Details)
/// and GetCommandInvocation.
#[derive(Debug)]
struct Reply {
    status: String,
    details: String,
    code: i32,
    /// CommandPlugin.Output (2,500 characters).
    output: String,
    stdout: String,
    stderr: String,
    trace: String,
}

/// The real SDK pointed at the emulator, and one online instance.
struct Agent {
    runtime: tokio::runtime::Runtime,
    ssm: aws_sdk_ssm::Client,
    instance: String,
}

impl Agent {
    fn new() -> Agent {
        Agent::with_tags(&[ONLINE])
    }

    fn with_tags(tags: &[(&str, &str)]) -> Agent {
        let health = emulator_http("GET", "/_flamefire/health", None);
        assert!(health.contains("\"ok\""), "emulator unhealthy: {health}");
        let tags: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let body = serde_json::json!({"count": 1, "tags": tags}).to_string();
        let seeded: serde_json::Value =
            serde_json::from_str(&emulator_http("POST", "/_flamefire/seed", Some(&body))).unwrap();
        let instance = seeded["instance_ids"][0].as_str().unwrap().to_string();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let ssm = runtime.block_on(async {
            let credentials = aws_credential_types::Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                None,
                None,
                "flamefire-agent-contract-test",
            );
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(REGION))
                .endpoint_url(endpoint())
                .credentials_provider(credentials)
                .load()
                .await;
            aws_sdk_ssm::Client::new(&config)
        });
        Agent {
            runtime,
            ssm,
            instance,
        }
    }

    /// Registers a Command document whose one aws:runShellScript step runs
    /// `lines`, with these `parameters` and `timeoutSeconds` (when given).
    fn document(
        &self,
        lines: &[&str],
        parameters: serde_json::Value,
        timeout: Option<serde_json::Value>,
    ) -> String {
        let name = unique("agent-contract");
        let mut inputs = serde_json::json!({ "runCommand": lines });
        if let Some(t) = timeout {
            inputs["timeoutSeconds"] = t;
        }
        let content = serde_json::json!({
            "schemaVersion": "2.2",
            "description": "flamefire agent contract test",
            "parameters": parameters,
            "mainSteps": [{"action": "aws:runShellScript", "name": "probe", "inputs": inputs}],
        });
        self.runtime
            .block_on(
                self.ssm
                    .create_document()
                    .name(&name)
                    .content(content.to_string())
                    .document_type(aws_sdk_ssm::types::DocumentType::Command)
                    .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("CreateDocument {name}: {e:?}"));
        name
    }

    /// A document without parameters.
    fn script(&self, lines: &[&str]) -> String {
        self.document(lines, serde_json::json!({}), None)
    }

    /// SendCommand of `document` to the instance; returns the command id.
    fn send(&self, document: &str, parameters: &[(&str, &str)]) -> String {
        self.try_send(document, parameters)
            .unwrap_or_else(|e| panic!("SendCommand {document}: {e}"))
    }

    /// SendCommand, with the service's refusal as `Err("Code: message")`.
    fn try_send(&self, document: &str, parameters: &[(&str, &str)]) -> Result<String, String> {
        let mut request = self
            .ssm
            .send_command()
            .document_name(document)
            .instance_ids(&self.instance);
        for (name, value) in parameters {
            request = request.parameters(*name, vec![value.to_string()]);
        }
        let sent = self.runtime.block_on(request.send()).map_err(|e| {
            let e = e.into_service_error();
            format!(
                "{}: {}",
                aws_sdk_ssm::error::ProvideErrorMetadata::code(&e).unwrap_or("?"),
                aws_sdk_ssm::error::ProvideErrorMetadata::message(&e).unwrap_or("")
            )
        })?;
        Ok(sent.command().unwrap().command_id().unwrap().to_string())
    }

    /// The invocation's status now.
    fn status(&self, command_id: &str) -> String {
        self.runtime.block_on(async {
            let listed = self
                .ssm
                .list_command_invocations()
                .command_id(command_id)
                .send()
                .await
                .unwrap();
            listed
                .command_invocations()
                .first()
                .and_then(|i| i.status())
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "NotVisible".into())
        })
    }

    /// Waits for the invocation to end and returns what SSM says of it.
    fn wait(&self, command_id: &str) -> Reply {
        let start = Instant::now();
        loop {
            let status = self.status(command_id);
            if ["Success", "Failed", "TimedOut", "Cancelled"].contains(&status.as_str()) {
                break;
            }
            assert!(
                start.elapsed() < SAFETY,
                "command {command_id} still {status} after {SAFETY:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.runtime.block_on(async {
            let listed = self
                .ssm
                .list_command_invocations()
                .command_id(command_id)
                .details(true)
                .send()
                .await
                .unwrap();
            let inv = &listed.command_invocations()[0];
            let plugin = &inv.command_plugins()[0];
            let got = self
                .ssm
                .get_command_invocation()
                .command_id(command_id)
                .instance_id(&self.instance)
                .send()
                .await
                .unwrap();
            Reply {
                status: inv.status().unwrap().as_str().to_string(),
                details: inv.status_details().unwrap_or_default().to_string(),
                code: got.response_code(),
                output: plugin.output().unwrap_or_default().to_string(),
                stdout: got
                    .standard_output_content()
                    .unwrap_or_default()
                    .to_string(),
                stderr: got.standard_error_content().unwrap_or_default().to_string(),
                trace: inv.trace_output().unwrap_or_default().to_string(),
            }
        })
    }

    /// Runs a parameterless script to its end.
    fn run(&self, lines: &[&str]) -> (String, Reply) {
        let document = self.script(lines);
        let command_id = self.send(&document, &[]);
        let reply = self.wait(&command_id);
        (command_id, reply)
    }

    fn cancel(&self, command_id: &str) {
        self.runtime
            .block_on(self.ssm.cancel_command().command_id(command_id).send())
            .unwrap();
    }
}

/// `KEY=value` lines of a script's output.
fn pairs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits until `path` exists (an event the script signals).
fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < SAFETY,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until process `pid` is gone: exited and reaped by its parent.
fn wait_until_gone(pid: u32) {
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(start.elapsed() < SAFETY, "process {pid} still exists");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scratch folder the scripts may write to (never their working directory).
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------- before the script runs

#[test]
fn a_pattern_re2_refuses_fails_the_command_and_runs_nothing() {
    // Issue 16: the real agent compiles every allowedPattern with Go's
    // regexp (RE2), which refuses a repeat count over 1000, and then runs
    // nothing. The service (and Python's re) accept this pattern.
    let agent = Agent::new();
    let dir = scratch();
    let marker = dir.path().join("ran");
    let document = agent.document(
        &[&format!("echo ran > {}", marker.display())],
        serde_json::json!({"Blob": {"type": "String", "default": "x", "allowedPattern": "^.{1,8192}$"}}),
        None,
    );
    let reply = agent.wait(&agent.send(&document, &[("Blob", "abc")]));
    let expected = "all errors during param validation errors: error thrown in 'AllowedRegexParamValidator' while validating parameter /Blob/: encountered error while compiling allowed pattern - internal error: error parsing regexp: invalid repeat count: `{1,8192}`";
    assert_eq!(
        (reply.status.as_str(), reply.code),
        ("Failed", -1),
        "{reply:?}"
    );
    assert_eq!(reply.trace, expected);
    assert!(reply.output.contains(expected), "{reply:?}");
    assert_eq!(reply.stdout, "");
    assert!(!marker.exists(), "the script ran: {reply:?}");
}

#[test]
fn a_value_re2_does_not_match_fails_the_command_and_runs_nothing() {
    // Issue 16: Go's `$` matches only at the very end, where the service's
    // engine also matches before a final newline: the service accepts
    // "abc\n", the agent refuses it.
    let agent = Agent::new();
    let dir = scratch();
    let marker = dir.path().join("ran");
    let document = agent.document(
        &[&format!("echo ran > {}", marker.display())],
        serde_json::json!({"Word": {"type": "String", "default": "x", "allowedPattern": "^[a-z]+$"}}),
        None,
    );
    let reply = agent.wait(&agent.send(&document, &[("Word", "abc\n")]));
    assert_eq!(reply.status, "Failed", "{reply:?}");
    assert!(
        reply
            .trace
            .contains("parameter value /abc\n/ does not match the allowed pattern /^[a-z]+$/"),
        "{reply:?}"
    );
    assert!(!marker.exists(), "the script ran: {reply:?}");
}

#[test]
fn max_chars_is_the_services_check_at_send_command() {
    // Issue 16: with RE2's 1000 repeat limit, the document bounds its two
    // long parameters with maxChars, which the SSM service checks at
    // SendCommand (the agent checks it only for aws:runDocument's inner
    // documents, parameterstore.go ValidateSSMParameters:138-140).
    let agent = Agent::new();
    let document = agent.document(
        &["echo ran"],
        serde_json::json!({"Blob": {"type": "String", "default": "x",
            "allowedPattern": "^[A-Za-z]+$", "maxChars": 1200}}),
        None,
    );
    let refused = agent
        .try_send(&document, &[("Blob", &"A".repeat(1201))])
        .expect_err("a value over maxChars is refused");
    assert!(
        refused.starts_with("InvalidParameters") && refused.contains("maxChars 1200"),
        "{refused}"
    );
    let reply = agent.wait(&agent.send(&document, &[("Blob", &"A".repeat(1200))]));
    assert_eq!(reply.status, "Success", "{reply:?}");
}

#[test]
fn env_var_parameters_reach_new_agents_only() {
    // Issue 16: only agents >= 3.3.2746.0 set SSM_<Name>; older ones
    // substitute {{ Name }} and leave SSM_<Name> unset.
    let lines = ["echo \"env=${SSM_Word-unset}\"", "echo \"text={{ Word }}\""];
    let params = serde_json::json!({"Word": {"type": "String", "default": "x",
        "allowedPattern": "^[a-z]+$", "interpolationType": "ENV_VAR"}});
    let new = Agent::new();
    let reply = new.wait(&new.send(
        &new.document(&lines, params.clone(), None),
        &[("Word", "abc")],
    ));
    let got = pairs(&reply.stdout);
    assert_eq!(
        (got["env"].as_str(), got["text"].as_str()),
        ("abc", "abc"),
        "{reply:?}"
    );
    let old = Agent::with_tags(&[ONLINE, ("flamefire-test:agent-version", "3.3.484.0")]);
    let reply = old.wait(&old.send(&old.document(&lines, params, None), &[("Word", "abc")]));
    let got = pairs(&reply.stdout);
    assert_eq!(
        (got["env"].as_str(), got["text"].as_str()),
        ("unset", "abc"),
        "{reply:?}"
    );
}

#[test]
fn the_script_is_a_private_file_without_shebang_run_with_no_arguments() {
    // Issue 16: <orchestration>/<CommandId>/<step>/_script.sh, mode 0700,
    // the lines joined with "\n", no shebang; `sh -c <path>` and no
    // arguments.
    let agent = Agent::new();
    let (command_id, reply) = agent.run(&[
        "echo \"path=$0\"",
        "echo \"argc=$#\"",
        "echo \"mode=$(stat -c %a \"$0\")\"",
        "echo \"first=$(head -n 1 \"$0\")\"",
    ]);
    assert_eq!(reply.status, "Success", "{reply:?}");
    let got = pairs(&reply.stdout);
    assert!(
        got["path"].starts_with('/')
            && got["path"].ends_with(&format!("/{command_id}/probe/_script.sh")),
        "{reply:?}"
    );
    assert_eq!(got["argc"], "0");
    assert_eq!(got["mode"], "700");
    assert_eq!(got["first"], "echo \"path=$0\"", "no shebang added");
}

// ---------------------------------------------------------------- while it runs

#[test]
fn the_script_runs_in_the_agents_own_working_directory() {
    // Issue 16: not a per-command folder, but the agent's own working
    // directory: /usr/bin under the packaged systemd unit.
    let agent = Agent::new();
    let (_, reply) = agent.run(&["echo \"cwd=$(pwd)\""]);
    let want = std::env::var("FLAMEFIRE_EMULATOR_AGENT_CWD").unwrap_or_else(|_| "/usr/bin".into());
    assert_eq!(pairs(&reply.stdout)["cwd"], want, "{reply:?}");
}

#[test]
fn the_environment_is_systemds_plus_the_agents_variables() {
    // Issue 16: no HOME, no LANG, systemd's PATH, plus SSM_COMMAND_ID and
    // AWS_SSM_*; nothing of the emulator's own environment.
    let agent = Agent::new();
    let (command_id, reply) = agent.run(&["env"]);
    let env = pairs(&reply.stdout);
    assert_eq!(env.get("PATH").map(String::as_str), Some(SYSTEMD_PATH));
    assert_eq!(env.get("SSM_COMMAND_ID"), Some(&command_id));
    assert_eq!(env.get("AWS_SSM_INSTANCE_ID"), Some(&agent.instance));
    assert_eq!(
        env.get("AWS_SSM_REGION_NAME").map(String::as_str),
        Some(REGION)
    );
    assert!(!env["AWS_SSM_PLATFORM_NAME"].is_empty());
    assert!(!env["AWS_SSM_PLATFORM_VERSION"].is_empty());
    // What the shell adds itself, and what the emulator adds so that the
    // hosts' HTTPS upload URL reaches it (README: "The real agent's contract").
    let allowed = [
        "PATH",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "SSM_COMMAND_ID",
        "AWS_SSM_INSTANCE_ID",
        "AWS_SSM_REGION_NAME",
        "AWS_SSM_PLATFORM_NAME",
        "AWS_SSM_PLATFORM_VERSION",
        "https_proxy",
        "no_proxy",
        "CURL_CA_BUNDLE",
    ];
    let extra: Vec<&String> = env
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "unexpected variables {extra:?}: {reply:?}"
    );
}

#[test]
fn the_script_runs_as_root() {
    // Issue 16: Run Command has no run-as; the agent (and its scripts) run as root.
    let agent = Agent::new();
    let (_, reply) = agent.run(&["echo \"uid=$(id -u)\""]);
    assert_eq!(
        pairs(&reply.stdout)["uid"],
        "0",
        "the emulator must run as root, as the agent does: {reply:?}"
    );
}

#[test]
fn the_script_leads_a_new_process_group_in_the_agents_session() {
    // Issue 16: setpgid, not setsid: the `sh` the agent starts leads its own
    // group, in the same session as the agent (its parent). (dash runs the
    // shebang-less file in a second `sh` of the same group, so the leader
    // is found through the group, not `$$`.)
    let agent = Agent::new();
    let (_, reply) = agent.run(&[
        "pgid=$(ps -o pgid= -p $$ | tr -d ' ')",
        "echo \"pgid=$pgid\"",
        "echo \"sid=$(ps -o sid= -p $$ | tr -d ' ')\"",
        "echo \"leader=$(ps -o args= -p $pgid)\"",
        "agent=$(ps -o ppid= -p $pgid | tr -d ' ')",
        "echo \"agent_pgid=$(ps -o pgid= -p $agent | tr -d ' ')\"",
        "echo \"agent_sid=$(ps -o sid= -p $agent | tr -d ' ')\"",
    ]);
    let got = pairs(&reply.stdout);
    assert!(
        got["leader"].starts_with("sh -c /") && got["leader"].ends_with("/_script.sh"),
        "the group's leader is the agent's `sh -c <script>`: {reply:?}"
    );
    assert_ne!(got["pgid"], got["agent_pgid"], "{reply:?}");
    assert_eq!(got["sid"], got["agent_sid"], "{reply:?}");
    assert_ne!(got["sid"], got["pgid"], "not a new session: {reply:?}");
}

#[test]
fn stdin_is_dev_null_and_stdout_and_stderr_are_pipes() {
    // Issue 16: stdin /dev/null; stdout and stderr are pipes, not files.
    let agent = Agent::new();
    let (_, reply) = agent.run(&[
        "echo \"stdin=$(readlink /proc/$$/fd/0)\"",
        "[ -p /proc/$$/fd/1 ] && echo stdout=pipe",
        "[ -p /proc/$$/fd/2 ] && echo stderr=pipe",
    ]);
    let got = pairs(&reply.stdout);
    assert_eq!(got["stdin"], "/dev/null", "{reply:?}");
    assert_eq!(got.get("stdout").map(String::as_str), Some("pipe"));
    assert_eq!(got.get("stderr").map(String::as_str), Some("pipe"));
}

#[test]
fn a_background_child_holding_stdout_keeps_the_command_in_progress() {
    // Issue 16: the command ends only when the shell has exited AND both
    // pipes are closed.
    let agent = Agent::new();
    let dir = scratch();
    let release = dir.path().join("release");
    let shell_pid = dir.path().join("shell.pid");
    let document = agent.script(&[
        &format!(
            "(while [ ! -e {} ]; do sleep 0.05; done; echo late) &",
            release.display()
        ),
        "echo early",
        // The group's leader is the `sh` the agent started.
        &format!(
            "ps -o pgid= -p $$ | tr -d ' ' > {}.tmp && mv {0}.tmp {0}",
            shell_pid.display()
        ),
    ]);
    let command_id = agent.send(&document, &[]);
    wait_for_file(&shell_pid);
    let pid: u32 = std::fs::read_to_string(&shell_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Gone from /proc: exited and reaped, so the emulator has seen it end.
    wait_until_gone(pid);
    let mut status = agent.status(&command_id);
    while status == "NotVisible" {
        // SSM lists a new command a moment late (eventual consistency).
        std::thread::sleep(Duration::from_millis(50));
        status = agent.status(&command_id);
    }
    assert_eq!(status, "InProgress");
    std::fs::write(&release, "").unwrap();
    let reply = agent.wait(&command_id);
    assert_eq!(reply.status, "Success", "{reply:?}");
    assert_eq!(reply.stdout, "early\nlate\n");
}

// ---------------------------------------------------------------- how it ends

#[test]
fn timeout_seconds_outside_5_to_172800_becomes_3600() {
    // Issue 16: pluginutil.go ValidateExecutionTimeout: 2 is below the
    // minimum, so the script gets an hour, not 2 s.
    let agent = Agent::new();
    for timeout in [serde_json::json!(2), serde_json::json!("200000")] {
        let document = agent.document(
            &["sleep 3", "echo survived"],
            serde_json::json!({}),
            Some(timeout.clone()),
        );
        let reply = agent.wait(&agent.send(&document, &[]));
        assert_eq!(
            (reply.status.as_str(), reply.stdout.as_str()),
            ("Success", "survived\n"),
            "timeoutSeconds {timeout}: {reply:?}"
        );
    }
}

#[test]
fn a_timeout_kills_the_group_at_once_with_137() {
    // Issue 16: kill(-pgid, SIGKILL) when timeoutSeconds passes: no SIGTERM
    // first, so no trap runs, and the background children die too.
    let agent = Agent::new();
    let dir = scratch();
    let child = dir.path().join("child.pid");
    let trapped = dir.path().join("trapped");
    let document = agent.document(
        &[
            &format!("trap 'echo x > {}' TERM INT EXIT", trapped.display()),
            &format!("sleep 600 & echo $! > {}", child.display()),
            "echo before",
            "sleep 600",
        ],
        serde_json::json!({}),
        Some(serde_json::json!(5)),
    );
    let started = Instant::now();
    let reply = agent.wait(&agent.send(&document, &[]));
    assert_eq!(
        (reply.status.as_str(), reply.details.as_str(), reply.code),
        ("TimedOut", "ExecutionTimedOut", 137),
        "{reply:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "not before 5 s"
    );
    assert_eq!(reply.stdout, "before\n");
    assert!(!trapped.exists(), "a trap ran: SIGTERM was sent");
    let pid: u32 = std::fs::read_to_string(&child)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_until_gone(pid);
}

#[test]
fn a_cancel_kills_the_group_at_once_with_137() {
    // Issue 16: CancelCommand is the same SIGKILL of the group, status Cancelled.
    let agent = Agent::new();
    let dir = scratch();
    let started = dir.path().join("started");
    let trapped = dir.path().join("trapped");
    let document = agent.script(&[
        &format!("trap 'echo x > {}' TERM INT EXIT", trapped.display()),
        &format!("touch {}", started.display()),
        "sleep 600",
    ]);
    let command_id = agent.send(&document, &[]);
    wait_for_file(&started);
    agent.cancel(&command_id);
    let reply = agent.wait(&command_id);
    assert_eq!(
        (reply.status.as_str(), reply.code),
        ("Cancelled", 137),
        "{reply:?}"
    );
    assert!(!trapped.exists(), "a trap ran: SIGTERM was sent");
}

#[test]
fn a_non_zero_exit_fails_with_its_code_and_the_agents_line() {
    // Issue 16: any other code is Failed with that code, and the agent
    // appends "failed to run commands: exit status N" to stderr.
    let agent = Agent::new();
    let (_, reply) = agent.run(&["echo 'flamefire: error: boom' >&2", "exit 3"]);
    assert_eq!(
        (reply.status.as_str(), reply.code),
        ("Failed", 3),
        "{reply:?}"
    );
    assert_eq!(
        reply.stderr,
        "flamefire: error: boom\nfailed to run commands: exit status 3"
    );
    assert_eq!(
        reply.output,
        "\n----------ERROR-------\nflamefire: error: boom\nfailed to run commands: exit status 3"
    );
}

#[test]
fn a_shell_killed_by_a_signal_reports_minus_one() {
    // Issue 16: the `sh` the agent started (the group's leader) killed by a
    // signal that is not a cancel: code -1, Failed, and os/exec's words.
    let agent = Agent::new();
    let (_, reply) = agent.run(&["kill -KILL \"$(ps -o pgid= -p $$ | tr -d ' ')\"", "exit 0"]);
    assert_eq!(
        (reply.status.as_str(), reply.code),
        ("Failed", -1),
        "{reply:?}"
    );
    assert_eq!(reply.stderr, "failed to run commands: signal: killed");
}

#[test]
fn a_script_exiting_137_itself_is_timed_out() {
    // Issue 16: pluginutil_unix.go GetStatus maps 137 to TimedOut whenever
    // no cancel was asked for, so a script whose own child was SIGKILLed
    // (`sh` then exits 137, e.g. after the OOM killer) reads as a timeout.
    let agent = Agent::new();
    let (_, reply) = agent.run(&["exit 137"]);
    assert_eq!(
        (reply.status.as_str(), reply.code, reply.stderr.as_str()),
        ("TimedOut", 137, ""),
        "{reply:?}"
    );
}

#[test]
fn exit_168_is_success_and_169_failure_with_the_agents_notes() {
    // Issue 16: 168 succeeds (stderr dropped), 169 fails; both say that
    // later steps are skipped.
    let agent = Agent::new();
    let (_, ok) = agent.run(&["echo out", "echo err >&2", "exit 168"]);
    assert_eq!((ok.status.as_str(), ok.code), ("Success", 168), "{ok:?}");
    assert_eq!(
        ok.stdout,
        "out\n\nStep exited with code 168. Therefore, marking step as succeeded. Further document steps will be skipped."
    );
    assert_eq!(ok.stderr, "");
    assert_eq!(ok.output, "out\n");
    let (_, failed) = agent.run(&["echo out", "exit 169"]);
    assert_eq!(
        (failed.status.as_str(), failed.code),
        ("Failed", 169),
        "{failed:?}"
    );
    assert!(
        failed.stderr.starts_with("failed to run commands: exit status 169\nStep exited with code 169. Therefore, marking step as Failed."),
        "{failed:?}"
    );
}

#[test]
fn exit_194_reboots_and_runs_the_step_again() {
    // Issue 16: 194 is SuccessAndReboot: the agent reboots the host and runs
    // the step again; the emulator runs it again at once.
    let agent = Agent::new();
    let dir = scratch();
    let runs = dir.path().join("runs");
    let (_, reply) = agent.run(&[
        &format!("echo run >> {}", runs.display()),
        &format!(
            "if [ \"$(wc -l < {})\" -lt 2 ]; then exit 194; fi",
            runs.display()
        ),
        "echo second",
    ]);
    assert_eq!(
        (reply.status.as_str(), reply.code, reply.stdout.as_str()),
        ("Success", 0, "second\n"),
        "{reply:?}"
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\nrun\n");
}

#[test]
fn output_keeps_the_start_of_each_stream_within_2500_characters() {
    // Issue 16: iohandler.go TruncateOutput. Both streams over half of the
    // 2,476 characters left after the 24-character error title: each keeps
    // (2476 - 23 - 23) / 2 = 1215 characters, then its 23-character cut mark.
    let agent = Agent::new();
    let (_, reply) = agent.run(&[
        "head -c 3000 /dev/zero | tr '\\0' o",
        "head -c 3000 /dev/zero | tr '\\0' e >&2",
    ]);
    let want = format!(
        "{}\n---Output truncated---\n----------ERROR-------\n{}\n---Error truncated----",
        "o".repeat(1215),
        "e".repeat(1215)
    );
    assert_eq!(reply.output, want);
    assert_eq!(reply.output.len(), 2500);
    // A short stdout is kept whole; stderr fills the rest.
    let (_, reply) = agent.run(&["echo hi", "head -c 3000 /dev/zero | tr '\\0' e >&2"]);
    let want = format!(
        "hi\n\n----------ERROR-------\n{}\n---Error truncated----",
        "e".repeat(2476 - 23 - 3)
    );
    assert_eq!(reply.output, want);
}

#[test]
fn standard_output_and_error_keep_their_first_24000_characters() {
    // Issue 16: runpluginutil.go cuts both with StringPrefix(24000,
    // "--output truncated--"), stderr too (not 8,000).
    let agent = Agent::new();
    let (_, reply) = agent.run(&[
        "head -c 100000 /dev/zero | tr '\\0' o",
        "head -c 100000 /dev/zero | tr '\\0' e >&2",
    ]);
    assert_eq!(
        reply.stdout,
        format!("{}--output truncated--", "o".repeat(23980))
    );
    assert_eq!(
        reply.stderr,
        format!("{}--output truncated--", "e".repeat(23980))
    );
}

// ---------------------------------------------------------------- what flamefire shows

#[test]
fn a_document_the_agent_refuses_shows_the_agents_message_as_the_cause() {
    // Issue 16: with an allowedPattern RE2 refuses (the old `{1,8192}`), every
    // agent refused the document before running a line, and flamefire said
    // "the recorder failed (exit -1)". It must show the agent's message.
    let emu = Emulator::new();
    let agent = Agent::new();
    let yaml = std::fs::read_to_string(repo().join("ssm-documents/flamefire-record.yaml")).unwrap();
    let fixed = "'^(|[A-Za-z0-9+/]+={0,2})$'";
    assert!(
        yaml.contains(fixed),
        "UploadPolicy's pattern moved: update this test"
    );
    let refused = yaml.replace(fixed, "'^(|[A-Za-z0-9+/=]{1,8192})$'");
    agent.runtime.block_on(async {
        let updated = agent
            .ssm
            .update_document()
            .name(&emu.document)
            .content(refused)
            .document_format(aws_sdk_ssm::types::DocumentFormat::Yaml)
            .document_version("$LATEST")
            .send()
            .await
            .unwrap();
        let version = updated
            .document_description()
            .and_then(|d| d.document_version())
            .unwrap()
            .to_string();
        agent
            .ssm
            .update_document_default_version()
            .name(&emu.document)
            .document_version(version)
            .send()
            .await
            .unwrap();
    });
    let ids = emu.seed(1, &[ONLINE]);
    let out = scratch();
    let assert = emu
        .ssm()
        .arg(&ids[0])
        .args(["--duration", "1", "--json", "--out"])
        .arg(out.path())
        .assert()
        .code(2);
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let host = &report["hosts"][0];
    let cause = host["cause"].as_str().unwrap_or_default();
    assert!(
        cause.starts_with("the host's SSM agent refused the document before running it: all errors during param validation errors: error thrown in 'AllowedRegexParamValidator' while validating parameter /UploadPolicy/")
            && cause.ends_with("invalid repeat count: `{1,8192}`"),
        "{host}"
    );
    assert!(
        host["next_step"]
            .as_str()
            .unwrap_or_default()
            .contains("RE2"),
        "{host}"
    );
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr);
    assert!(!stderr.contains("exit -1"), "{stderr}");
    // No script ran: the emulated agent never started a shell.
    let all: serde_json::Value =
        serde_json::from_str(&emulator_http("GET", "/_flamefire/invocations", None)).unwrap();
    let ours: Vec<&serde_json::Value> = all["commands"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["invocations"].as_array().unwrap())
        .filter(|i| i["InstanceId"] == ids[0].as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0]["pid"].is_null(), "a script ran: {}", ours[0]);
}
