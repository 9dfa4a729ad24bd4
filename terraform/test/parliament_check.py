#!/usr/bin/env python3
"""Run parliament on every rendered policy; fail on any finding not ignored.

    $VENV/bin/python terraform/test/parliament_check.py RENDERED_DIR

Runs the parliament CLI importable by this interpreter (scripts/lint-terraform.sh
puts the pinned one on PYTHONPATH) once per file, with every auditor on and every severity shown
(`--include-community-auditors --minimum_severity INFO --json`). A finding is
dropped only if it matches an entry of parliament-ignores.yaml on file, issue,
statement Sid and exact detail; an entry that matches nothing is an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsoncfg  # parliament's own JSON parser: same line numbers as its findings
import yaml

IGNORES = Path(__file__).resolve().parent / "parliament-ignores.yaml"
PARLIAMENT = [sys.executable, "-m", "parliament.cli"]  # whichever parliament this interpreter imports


def statement_sid_at(policy_path: Path, line: int) -> str | None:
    """Sid of the statement that opens on `line` (parliament reports statements by their opening line)."""
    config = jsoncfg.loads_config(policy_path.read_text())
    statements = config.Statement
    if not jsoncfg.node_is_array(statements):
        statements = [statements]
    for statement in statements:
        if jsoncfg.node_location(statement).line == line:
            return statement.Sid(None)
    return None


def run_parliament(policy_path: Path) -> list[dict]:
    proc = subprocess.run(
        [
            *PARLIAMENT,
            "--json",
            "--include-community-auditors",
            "--minimum_severity",
            "INFO",
            "--files",
            str(policy_path),
        ],
        # parliament refuses --files/--file when stdin is a pipe or a file it could read.
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode not in (0, 1) or proc.stderr.strip():
        raise RuntimeError(f"parliament failed on {policy_path} (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    findings = []
    for raw in proc.stdout.splitlines():
        if raw.strip():
            findings.append(json.loads(raw))
    if (proc.returncode == 0) != (not findings):
        raise RuntimeError(f"parliament exit {proc.returncode} disagrees with its output for {policy_path}")
    return findings


def matches(entry: dict, policy_path: Path, finding: dict) -> bool:
    if entry["file"] != policy_path.name or entry["issue"] != finding["issue"]:
        return False
    if entry["detail"] != finding["detail"]:
        return False
    line = finding.get("location", {}).get("line")
    return isinstance(line, int) and statement_sid_at(policy_path, line) == entry["statement"]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rendered = sorted(Path(argv[0]).glob("*.json"))
    if not rendered:
        print(f"no rendered policies in {argv[0]}", file=sys.stderr)
        return 2
    ignores = yaml.safe_load(IGNORES.read_text()) or []
    used = [0] * len(ignores)
    reported = 0
    for policy_path in rendered:
        findings = run_parliament(policy_path)
        kept = []
        for finding in findings:
            hit = next((i for i, entry in enumerate(ignores) if matches(entry, policy_path, finding)), None)
            if hit is None:
                kept.append(finding)
            else:
                used[hit] += 1
        status = "ok" if not kept else f"{len(kept)} finding(s)"
        ignored = len(findings) - len(kept)
        print(f"{policy_path.name}: {status}" + (f" ({ignored} known false positive ignored)" if ignored else ""))
        for finding in kept:
            print(f"  {finding['severity']} {finding['issue']}: {finding['detail']} at {finding['location']}")
        reported += len(kept)
    stale = [entry for entry, count in zip(ignores, used) if count == 0]
    for entry in stale:
        print(f"stale ignore in {IGNORES.name}: {entry['file']} {entry['issue']} {entry['statement']} matched nothing; remove it")
    return 1 if reported or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
