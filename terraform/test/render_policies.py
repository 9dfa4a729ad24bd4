#!/usr/bin/env python3
"""Render terraform/policies/*.json.tftpl with sample values, for the linters.

The templates are what Terraform feeds to templatefile(); every variable in them
is a plain `${name}`, so plain string replacement gives the same text. Two uses:

    python3 terraform/test/render_policies.py --out DIR
        writes DIR/<name>.json for every template (parliament reads these);
    python3 terraform/test/render_policies.py --check-terraform
        renders every template again with Terraform's own templatefile() (in
        `terraform console`, which needs no provider and no network) and fails
        unless both renderings decode to the same JSON.

Standard library only: test_policy_intent.py imports this with plain python3.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"

# The sample deployment every check renders.
SAMPLE = {
    "partition": "aws",
    "region": "eu-west-1",
    "account_id": "123456789012",
    "bucket": "flamefire-stacks-example",
    "prefix": "flamefire/",
    "document_name": "flamefire-record",
    "tag_key": "flamefire",
    "tag_value": "enabled",
    # JSON list, spliced in unquoted (main.tf passes jsonencode(var.trusted_principal_arns)).
    "trusted_principals": '["arn:aws:iam::123456789012:role/oncall"]',
    "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "dns_suffix": "amazonaws.com",
}

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    pass


def templates() -> list[Path]:
    found = sorted(POLICY_DIR.glob("*.json.tftpl"))
    if not found:
        raise TemplateError(f"no *.json.tftpl under {POLICY_DIR}")
    return found


def rendered_name(template: Path) -> str:
    return template.name.removesuffix(".tftpl")


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render_text(text: str, values: dict[str, str] = SAMPLE) -> str:
    """Plain replacement of `${name}`; refuses anything plain replacement cannot mirror."""
    if "%{" in text:
        raise TemplateError("template directives (%{...}) are not allowed: keep ${name} only")
    names = placeholders(text)
    bad = sorted(n for n in names if not re.fullmatch(r"[a-z_]+", n))
    if bad:
        raise TemplateError(f"only plain ${{name}} variables are allowed, found: {bad}")
    unknown = sorted(names - values.keys())
    if unknown:
        raise TemplateError(f"no sample value for: {unknown}")
    for name in names:
        text = text.replace("${" + name + "}", values[name])
    return text


def render(template: Path, values: dict[str, str] = SAMPLE) -> str:
    try:
        return render_text(template.read_text(), values)
    except TemplateError as err:
        raise TemplateError(f"{template}: {err}") from None


def render_all(values: dict[str, str] = SAMPLE) -> dict[str, str]:
    """{rendered file name: text}; each text is checked to be valid JSON."""
    out = {}
    for template in templates():
        text = render(template, values)
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise TemplateError(f"{template}: not valid JSON after rendering: {err}") from None
        out[rendered_name(template)] = text
    return out


VARIABLES_TF = POLICY_DIR.parent / "variables.tf"
VARIABLE_BLOCK = re.compile(r'^variable "([a-z_]+)" \{(.*?)^\}', re.S | re.M)


def module_defaults(path: Path = VARIABLES_TF) -> dict:
    """The root module's variable defaults that are plain literals (strings,
    numbers, booleans), read from variables.tf: what `terraform apply` uses
    when the user sets nothing."""
    out = {}
    for name, body in VARIABLE_BLOCK.findall(path.read_text()):
        m = re.search(r"^\s*default\s*=\s*(.+?)\s*$", body, re.M)
        if not m:
            continue
        raw = m.group(1)
        if raw.startswith('"') and raw.endswith('"'):
            out[name] = json.loads(raw)
        elif raw in ("true", "false"):
            out[name] = raw == "true"
        elif re.fullmatch(r"\d+", raw):
            out[name] = int(raw)
    return out


def module_role(overrides: dict) -> dict:
    """The on-call role exactly as terraform/main.tf and modules/iam-policies
    build it from the root module's variables: defaults from variables.tf, then
    `overrides` (root variable names, plus the values Terraform reads from the
    account: partition, region, account_id; bucket stands for the resolved
    bucket name). Returns {role_name, policy, trust_policy, max_session_duration}."""
    v = {**module_defaults(), **overrides}
    for needed in ("bucket", "region", "account_id"):
        if needed not in v:
            raise TemplateError(f"module_role needs {needed!r}")
    values = {
        "partition": v.get("partition", "aws"),
        "region": v["region"],
        "account_id": v["account_id"],
        "bucket": v["bucket"],
        "prefix": v["prefix"],
        "document_name": v["document_name"],
        "tag_key": v["instance_tag_key"],
        "tag_value": v["instance_tag_value"],
        "trusted_principals": json.dumps(list(v.get("trusted_principal_arns", []))),
    }
    policy = json.loads(render(POLICY_DIR / "oncall-policy.json.tftpl", values))
    trust = json.loads(render(POLICY_DIR / "oncall-trust.json.tftpl", values))
    if not v["require_mfa"]:
        # modules/iam-policies/main.tf: require_mfa = false drops each statement's Condition.
        trust["Statement"] = [{k: x for k, x in st.items() if k != "Condition"} for st in trust["Statement"]]
    return {"role_name": v["role_name"], "policy": policy, "trust_policy": trust,
            "max_session_duration": int(v["max_session_duration"])}


def write_rendered(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def terraform_expression(paths: list[Path]) -> str:
    """One HCL expression rendering every template with Terraform's templatefile().

    One line: a non-interactive `terraform console` prints only its last result.
    """
    parts = []
    for path in paths:
        names = sorted(placeholders(path.read_text()))
        # json.dumps gives a valid HCL string literal for these values (no `${`, no `%{`).
        hcl_map = ", ".join(f"{n} = {json.dumps(SAMPLE[n])}" for n in names)
        parts.append(f"{json.dumps(path.name)} = jsondecode(templatefile({json.dumps(str(path))}, {{ {hcl_map} }}))")
    return "jsonencode({ " + ", ".join(parts) + " })"


def check_terraform() -> int:
    """Render through `terraform console` and compare with the plain replacement."""
    paths = templates()
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE=os.devnull, TF_IN_AUTOMATION="1")
    # An empty working directory: console then needs no provider and no init.
    with tempfile.TemporaryDirectory(prefix="flamefire-tfconsole-") as workdir:
        proc = subprocess.run(
            ["terraform", "console"],
            input=terraform_expression(paths) + "\n",
            capture_output=True,
            text=True,
            cwd=workdir,
            env=env,
            timeout=120,
        )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        print("terraform console failed to render the templates (see above)", file=sys.stderr)
        return 1
    # console prints the JSON as one quoted string; its escapes are JSON-compatible here.
    from_terraform = json.loads(json.loads(proc.stdout.strip()))
    failed = 0
    for path in paths:
        if from_terraform.get(path.name) != json.loads(render(path)):
            failed += 1
            print(f"MISMATCH {path.name}: templatefile() and plain replacement differ", file=sys.stderr)
        else:
            print(f"ok  {path.name}: templatefile() == plain replacement")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write rendered policies into this directory")
    group.add_argument("--check-terraform", action="store_true", help="compare with terraform's templatefile()")
    args = parser.parse_args(argv)
    try:
        if args.check_terraform:
            return check_terraform()
        for path in write_rendered(args.out):
            print(path)
        return 0
    except TemplateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
