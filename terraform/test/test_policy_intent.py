#!/usr/bin/env python3
"""Policy intent: what the flamefire on-call role may do, and nothing more.

    python3 terraform/test/test_policy_intent.py

Renders terraform/policies/*.json.tftpl with the sample values of
render_policies.py and checks the intent that linters cannot know:
  * ssm:SendCommand: only the flamefire document, and only EC2 instances gated
    by ssm:resourceTag/<key> = <value> (AWS's documented pattern:
    https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html);
  * AWS-RunShellScript or any AWS-* document is never allowed;
  * no wildcard actions, no iam:, no ssm:StartSession, no SendCommand on "*";
  * Resource "*" only for actions without resource-level permissions;
  * S3 only under the prefix; KMS only through S3; MFA on the trust policy;
  * the bucket policy only denies.
Negative self-tests mutate the policies in memory and assert the checker
catches each mutation, so the checker is shown able to fail.

Standard library only. Prints "N passed, M failed"; exits non-zero on failure.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # leave no __pycache__ in the work tree

import render_policies as rp  # noqa: E402

TERRAFORM_DIR = HERE.parent
POLICIES_MODULE = TERRAFORM_DIR / "modules" / "iam-policies"
S = rp.SAMPLE
PARTITION, REGION, ACCOUNT = S["partition"], S["region"], S["account_id"]
BUCKET, PREFIX = S["bucket"], S["prefix"]

DOCUMENT_ARN = f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:document/{S['document_name']}"
INSTANCE_ARN = f"arn:{PARTITION}:ec2:{REGION}:{ACCOUNT}:instance/*"
TAG_CONDITION = {"StringEquals": {f"ssm:resourceTag/{S['tag_key']}": S["tag_value"]}}
BUCKET_ARN = f"arn:{PARTITION}:s3:::{BUCKET}"
OBJECTS_ARN = f"{BUCKET_ARN}/{PREFIX}*"
LIST_CONDITION = {"StringLike": {"s3:prefix": f"{PREFIX}*"}}
PRINCIPALS = json.loads(S["trusted_principals"])
KMS_KEY_ARN = S["kms_key_arn"]

# Actions for which the Service Authorization Reference lists no resource type:
# Resource "*" is the only possible value, so it is allowed for these alone.
NO_RESOURCE_LEVEL = {
    "ec2:DescribeInstances",
    "ssm:CancelCommand",
    "ssm:DescribeInstanceInformation",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:ListCommands",
}

# The complete set of actions the on-call role needs; anything else is a regression.
EXPECTED_ACTIONS = NO_RESOURCE_LEVEL | {
    "ssm:SendCommand",
    "ssm:GetDocument",
    "ssm:DescribeDocument",
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
}

# Documents that must never be sendable, in every ARN shape IAM would see.
# AWS-owned documents have an empty account field.
FORBIDDEN_DOCUMENTS = [
    f"arn:{PARTITION}:ssm:{REGION}::document/AWS-RunShellScript",
    f"arn:{PARTITION}:ssm:{REGION}::document/AWS-RunPowerShellScript",
    f"arn:{PARTITION}:ssm:{REGION}::document/AWS-StartInteractiveCommand",
    f"arn:{PARTITION}:ssm:{REGION}::document/AWS-RunRemoteScript",
    f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:document/AWS-RunShellScript",
    f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:document/some-other-document",
]

# Actions that must never be granted, whatever the resource.
FORBIDDEN_ACTIONS = ["ssm:StartSession", "ssm:ResumeSession", "iam:PassRole", "iam:CreateRole", "sts:AssumeRole"]


# ----------------------------------------------------------------------------
# The checkers: each returns a list of violations (empty = policy is fine).
# ----------------------------------------------------------------------------


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(policy: dict) -> list[dict]:
    return as_list(policy.get("Statement"))


def grants(action_patterns: list[str], action: str) -> bool:
    """Does any (possibly wildcarded) action pattern cover `action`? IAM actions are case-insensitive."""
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in action_patterns)


def covers(resource_patterns: list[str], arn: str) -> bool:
    return any(fnmatch.fnmatchcase(arn, pattern) for pattern in resource_patterns)


def oncall_violations(policy: dict) -> list[str]:
    out = []
    allowed_actions: set[str] = set()
    document_statement = instance_statement = False

    for index, st in enumerate(statements(policy)):
        sid = st.get("Sid", f"statement #{index}")
        if st.get("Effect") != "Allow":
            out.append(f"{sid}: unexpected Effect {st.get('Effect')!r} in the on-call policy")
            continue
        for element in ("NotAction", "NotResource", "NotPrincipal"):
            if element in st:
                out.append(f"{sid}: {element} in an Allow statement grants everything not listed")
        actions = as_list(st.get("Action"))
        resources = as_list(st.get("Resource"))
        condition = st.get("Condition")

        for action in actions:
            allowed_actions.add(action)
            if "*" in action or "?" in action:
                out.append(f"{sid}: wildcard action {action!r}")
            if action.lower().startswith("iam:"):
                out.append(f"{sid}: IAM action {action!r}")
        for forbidden in FORBIDDEN_ACTIONS:
            if grants(actions, forbidden):
                out.append(f"{sid}: grants {forbidden}")

        if "*" in resources:
            for action in actions:
                if action not in NO_RESOURCE_LEVEL:
                    out.append(f"{sid}: {action} on Resource '*' although it supports resource-level permissions")

        if grants(actions, "ssm:SendCommand"):
            for forbidden in FORBIDDEN_DOCUMENTS:
                if covers(resources, forbidden):
                    out.append(f"{sid}: ssm:SendCommand allowed on {forbidden}")
            for resource in resources:
                if resource == "*":
                    out.append(f"{sid}: ssm:SendCommand on Resource '*'")
                elif resource == DOCUMENT_ARN:
                    document_statement = True
                elif resource == INSTANCE_ARN:
                    if condition != TAG_CONDITION:
                        out.append(f"{sid}: instances are not gated by exactly {TAG_CONDITION} (got {condition})")
                    else:
                        instance_statement = True
                else:
                    out.append(f"{sid}: ssm:SendCommand on unexpected resource {resource!r}")
            if DOCUMENT_ARN in resources and INSTANCE_ARN in resources:
                out.append(f"{sid}: document and instances in one statement (the tag condition would apply to both)")

        if grants(actions, "ssm:GetDocument") or grants(actions, "ssm:DescribeDocument"):
            if resources != [DOCUMENT_ARN]:
                out.append(f"{sid}: document reads on {resources}, not only {DOCUMENT_ARN}")

        for action in actions:
            if not action.lower().startswith("s3:"):
                continue
            if action in ("s3:GetObject", "s3:PutObject"):
                if resources != [OBJECTS_ARN]:
                    out.append(f"{sid}: {action} on {resources}, not only {OBJECTS_ARN}")
            elif action == "s3:ListBucket":
                if resources != [BUCKET_ARN] or condition != LIST_CONDITION:
                    out.append(f"{sid}: s3:ListBucket must be on {BUCKET_ARN} with {LIST_CONDITION}")
            else:
                out.append(f"{sid}: S3 action {action!r} is not needed")
        # Objects outside the prefix must never be reachable.
        if any(grants(actions, a) for a in ("s3:GetObject", "s3:PutObject")):
            for outside in (f"{BUCKET_ARN}/other/x", f"{BUCKET_ARN}/{PREFIX.rstrip('/')}-evil/x", f"{BUCKET_ARN}/x"):
                if covers(resources, outside):
                    out.append(f"{sid}: object access reaches {outside}, outside the prefix")

    if not document_statement:
        out.append(f"no statement allows ssm:SendCommand on {DOCUMENT_ARN}")
    if not instance_statement:
        out.append(f"no statement allows ssm:SendCommand on {INSTANCE_ARN} gated by {TAG_CONDITION}")
    extra = sorted(allowed_actions - EXPECTED_ACTIONS)
    missing = sorted(EXPECTED_ACTIONS - allowed_actions)
    if extra:
        out.append(f"actions beyond what flamefire needs: {extra}")
    if missing:
        out.append(f"actions flamefire needs are missing: {missing}")
    return out


def trust_violations(policy: dict) -> list[str]:
    out = []
    sts = statements(policy)
    if len(sts) != 1:
        out.append(f"expected exactly one trust statement, got {len(sts)}")
    for index, st in enumerate(sts):
        sid = st.get("Sid", f"statement #{index}")
        if st.get("Effect") != "Allow":
            out.append(f"{sid}: Effect must be Allow")
        if as_list(st.get("Action")) != ["sts:AssumeRole"]:
            out.append(f"{sid}: actions must be exactly sts:AssumeRole, got {st.get('Action')}")
        if "NotPrincipal" in st:
            out.append(f"{sid}: NotPrincipal")
        principal = st.get("Principal")
        if not isinstance(principal, dict) or set(principal) != {"AWS"}:
            out.append(f"{sid}: Principal must be {{'AWS': [...]}}, got {principal!r}")
        else:
            arns = as_list(principal["AWS"])
            if any("*" in arn or "?" in arn for arn in arns):
                out.append(f"{sid}: wildcard principal in {arns}")
            if arns != PRINCIPALS:
                out.append(f"{sid}: principals {arns} are not the configured {PRINCIPALS}")
        mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        if st.get("Condition") != mfa:
            out.append(f"{sid}: Condition must be exactly {mfa} (MFA on by default), got {st.get('Condition')}")
    return out


def kms_violations(policy: dict) -> list[str]:
    out = []
    for index, st in enumerate(statements(policy)):
        sid = st.get("Sid", f"statement #{index}")
        actions = as_list(st.get("Action"))
        if st.get("Effect") != "Allow" or sorted(actions) != ["kms:Decrypt", "kms:GenerateDataKey"]:
            out.append(f"{sid}: KMS statement must allow exactly kms:Decrypt and kms:GenerateDataKey, got {actions}")
        if as_list(st.get("Resource")) != [KMS_KEY_ARN]:
            out.append(f"{sid}: KMS grants must name the bucket key only, got {st.get('Resource')}")
        via = (st.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService")
        if via != f"s3.{REGION}.{S['dns_suffix']}":
            out.append(f"{sid}: KMS use must be limited to S3 via kms:ViaService, got {via!r}")
    if not statements(policy):
        out.append("KMS policy has no statement")
    return out


def bucket_policy_violations(policy: dict) -> list[str]:
    out = []
    tls_denied = False
    for index, st in enumerate(statements(policy)):
        sid = st.get("Sid", f"statement #{index}")
        if st.get("Effect") != "Deny":
            out.append(f"{sid}: the bucket policy may only deny (grants belong on the on-call role)")
        if st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
            if (
                st.get("Principal") == "*"
                and grants(as_list(st.get("Action")), "s3:PutObject")
                and grants(as_list(st.get("Action")), "s3:GetObject")
                and sorted(as_list(st.get("Resource"))) == sorted([BUCKET_ARN, f"{BUCKET_ARN}/*"])
            ):
                tls_denied = True
    if not tls_denied:
        out.append("no statement denies every principal all S3 actions on the bucket and its objects without TLS")
    return out


def template_violations(name: str, text: str) -> list[str]:
    """Template hygiene: only plain ${name} variables, each validated in variables.tf or computed in main.tf."""
    out = []
    if "%{" in text:
        out.append(f"{name}: template directive (%{{...}}) breaks plain-replacement rendering")
    for var in sorted(rp.placeholders(text)):
        if not re.fullmatch(r"[a-z_]+", var):
            out.append(f"{name}: ${{{var}}} is not a plain variable name")
        elif var not in S:
            out.append(f"{name}: ${{{var}}} has no sample value in render_policies.py")
    return out


# ----------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------

RENDERED = {name: json.loads(text) for name, text in rp.render_all().items()}
ONCALL = RENDERED["oncall-policy.json"]
TRUST = RENDERED["oncall-trust.json"]
KMS = RENDERED["oncall-kms-policy.json"]
BUCKET_POLICY = RENDERED["bucket-policy.json"]


def statement(policy: dict, sid: str) -> dict:
    for st in statements(policy):
        if st.get("Sid") == sid:
            return st
    raise KeyError(sid)


def mutated(policy: dict, change) -> dict:
    clone = copy.deepcopy(policy)
    change(clone)
    return clone


def assert_no_violations(violations: list[str]) -> None:
    assert not violations, "unexpected violations:\n  " + "\n  ".join(violations)


def assert_caught(violations: list[str], needle: str) -> None:
    assert violations, "the checker accepted a policy it must reject"
    assert any(needle.lower() in v.lower() for v in violations), f"no violation mentions {needle!r}: {violations}"


# ----------------------------------------------------------------------------
# Tests on the real templates
# ----------------------------------------------------------------------------


def test_templates_use_plain_variables_only():
    for template in rp.templates():
        assert_no_violations(template_violations(template.name, template.read_text()))


def test_every_policy_renders_to_json():
    expected = {"oncall-policy.json", "oncall-trust.json", "oncall-kms-policy.json", "bucket-policy.json"}
    assert set(RENDERED) == expected, f"rendered {sorted(RENDERED)}, expected {sorted(expected)}"


def test_oncall_policy_meets_intent():
    assert_no_violations(oncall_violations(ONCALL))


def test_flamefire_document_is_the_only_sendable_document():
    send = [st for st in statements(ONCALL) if grants(as_list(st.get("Action")), "ssm:SendCommand")]
    documents = [r for st in send for r in as_list(st.get("Resource")) if ":document/" in r]
    assert documents == [DOCUMENT_ARN], documents


def test_instances_are_gated_by_the_opt_in_tag():
    st = statement(ONCALL, "SendToOptedInInstancesOnly")
    assert as_list(st["Resource"]) == [INSTANCE_ARN]
    assert st["Condition"] == TAG_CONDITION, st.get("Condition")


def test_no_aws_document_appears_anywhere():
    for name, policy in RENDERED.items():
        for st in statements(policy):
            for resource in as_list(st.get("Resource")):
                assert "document/AWS-" not in resource and "document/aws-" not in resource, (name, resource)


def test_resource_star_only_for_actions_without_resource_level_permissions():
    for st in statements(ONCALL):
        if "*" in as_list(st.get("Resource")):
            assert set(as_list(st["Action"])) <= NO_RESOURCE_LEVEL, st


def test_trust_policy_requires_mfa_and_named_principals():
    assert_no_violations(trust_violations(TRUST))


def test_kms_policy_only_through_s3():
    assert_no_violations(kms_violations(KMS))


def test_bucket_policy_denies_insecure_transport():
    assert_no_violations(bucket_policy_violations(BUCKET_POLICY))


def test_terraform_reads_the_templates_and_the_document_file():
    policies_tf = (POLICIES_MODULE / "main.tf").read_text()
    assert 'policy_dir = "${path.module}/../../policies"' in policies_tf, "modules/iam-policies reads another folder"
    for template in rp.templates():
        needle = f'templatefile("${{local.policy_dir}}/{template.name}"'
        assert needle in policies_tf, f"modules/iam-policies/main.tf does not render {template.name} with templatefile()"

    main_tf = (TERRAFORM_DIR / "main.tf").read_text()
    for pattern in (
        r'source\s*=\s*"\./modules/iam-policies"',
        r'\n\s*assume_role_policy\s*=\s*module\.iam_policies\.trust_policy_json\n',
        r'\n\s*policy\s*=\s*module\.iam_policies\.oncall_policy_json\n',
        r'\n\s*policy\s*=\s*module\.iam_policies\.kms_policy_json\n',
        r'\n\s*policy\s*=\s*module\.iam_policies\.bucket_policy_json\n',
    ):
        assert re.search(pattern, main_tf), f"main.tf does not match {pattern}"

    document = re.search(r'resource "aws_ssm_document" "\w+" \{(.*?)\n\}', main_tf, re.S)
    assert document, "main.tf: no aws_ssm_document resource"
    body = document.group(1)
    for pattern in (
        r'\n\s*content\s*=\s*file\("\$\{path\.module\}/\.\./ssm-documents/flamefire-record\.yaml"\)\n',
        r'\n\s*document_type\s*=\s*"Command"\n',
        r'\n\s*document_format\s*=\s*"YAML"\n',
    ):
        assert re.search(pattern, body), f"aws_ssm_document does not match {pattern}"


def test_document_file_exists_for_file_function():
    document = TERRAFORM_DIR.parent / "ssm-documents" / "flamefire-record.yaml"
    assert document.is_file(), f"{document} is missing: main.tf reads it with file(), so every plan would fail"
    assert "schemaVersion" in document.read_text(), f"{document} does not look like an SSM document"


def test_document_is_not_pasted_into_hcl():
    for tf in TERRAFORM_DIR.rglob("*.tf"):
        text = tf.read_text()
        for marker in ("schemaVersion", "aws:runShellScript", "mainSteps", "SSM_"):
            assert marker not in text, f"{tf}: contains {marker!r}; the document lives only in ssm-documents/"


def test_policy_vars_match_the_policy_template():
    policies_tf = (POLICIES_MODULE / "main.tf").read_text()
    block = re.search(r"policy_vars\s*=\s*\{(.*?)\n  \}", policies_tf, re.S)
    assert block, "modules/iam-policies/main.tf: locals.policy_vars not found"
    keys = set(re.findall(r"^\s*([a-z_]+)\s*=", block.group(1), re.M))
    wanted = rp.placeholders((rp.POLICY_DIR / "oncall-policy.json.tftpl").read_text())
    assert keys == wanted, f"policy_vars keys {sorted(keys)} != template variables {sorted(wanted)}"


# ----------------------------------------------------------------------------
# Negative self-tests: the checker must catch each of these mutations.
# ----------------------------------------------------------------------------


def test_catches_aws_run_shell_script_added_to_send_command():
    bad = mutated(
        ONCALL,
        lambda p: statement(p, "SendFlamefireDocumentOnly").update(
            Resource=[DOCUMENT_ARN, f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript"]
        ),
    )
    assert_caught(oncall_violations(bad), "AWS-RunShellScript")


def test_catches_wildcard_document():
    bad = mutated(
        ONCALL,
        lambda p: statement(p, "SendFlamefireDocumentOnly").update(Resource=f"arn:aws:ssm:{REGION}:*:document/*"),
    )
    assert_caught(oncall_violations(bad), "AWS-RunShellScript")


def test_catches_ssm_star_action():
    bad = mutated(
        ONCALL, lambda p: statement(p, "TrackCommandsNoResourceLevelPermissions")["Action"].append("ssm:*")
    )
    violations = oncall_violations(bad)
    assert_caught(violations, "wildcard action 'ssm:*'")
    assert_caught(violations, "ssm:StartSession")


def test_catches_star_action():
    bad = mutated(ONCALL, lambda p: statement(p, "TrackCommandsNoResourceLevelPermissions").update(Action="*"))
    assert_caught(oncall_violations(bad), "wildcard action '*'")


def test_catches_partial_wildcard_action():
    bad = mutated(ONCALL, lambda p: statement(p, "SendFlamefireDocumentOnly").update(Action="ssm:Send*"))
    assert_caught(oncall_violations(bad), "wildcard action 'ssm:Send*'")


def test_catches_send_command_on_star():
    bad = mutated(
        ONCALL,
        lambda p: p["Statement"].append({"Sid": "Oops", "Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*"}),
    )
    violations = oncall_violations(bad)
    assert_caught(violations, "ssm:SendCommand on Resource '*'")
    assert_caught(violations, "AWS-RunShellScript")


def test_catches_instance_statement_without_tag_condition():
    bad = mutated(ONCALL, lambda p: statement(p, "SendToOptedInInstancesOnly").pop("Condition"))
    assert_caught(oncall_violations(bad), "not gated")


def test_catches_wildcard_tag_value():
    bad = mutated(
        ONCALL,
        lambda p: statement(p, "SendToOptedInInstancesOnly").update(
            Condition={"StringLike": {f"ssm:resourceTag/{S['tag_key']}": "*"}}
        ),
    )
    assert_caught(oncall_violations(bad), "not gated")


def test_catches_document_and_instances_merged_under_the_tag_condition():
    def merge(p):
        st = statement(p, "SendToOptedInInstancesOnly")
        st["Resource"] = [INSTANCE_ARN, DOCUMENT_ARN]
        p["Statement"].remove(statement(p, "SendFlamefireDocumentOnly"))

    assert_caught(oncall_violations(mutated(ONCALL, merge)), "one statement")


def test_catches_start_session():
    bad = mutated(
        ONCALL,
        lambda p: p["Statement"].append(
            {"Sid": "Shell", "Effect": "Allow", "Action": "ssm:StartSession", "Resource": INSTANCE_ARN}
        ),
    )
    assert_caught(oncall_violations(bad), "ssm:StartSession")


def test_catches_iam_action():
    bad = mutated(
        ONCALL, lambda p: statement(p, "TrackCommandsNoResourceLevelPermissions")["Action"].append("iam:PassRole")
    )
    assert_caught(oncall_violations(bad), "IAM action")


def test_catches_resource_star_on_restrictable_action():
    bad = mutated(
        ONCALL, lambda p: statement(p, "TrackCommandsNoResourceLevelPermissions")["Action"].append("ssm:GetDocument")
    )
    assert_caught(oncall_violations(bad), "supports resource-level permissions")


def test_catches_s3_outside_the_prefix():
    bad = mutated(ONCALL, lambda p: statement(p, "ReadWriteStacksUnderPrefix").update(Resource=f"{BUCKET_ARN}/*"))
    assert_caught(oncall_violations(bad), "outside the prefix")


def test_catches_s3_prefix_without_trailing_slash_boundary():
    bad = mutated(
        ONCALL,
        lambda p: statement(p, "ReadWriteStacksUnderPrefix").update(Resource=f"{BUCKET_ARN}/{PREFIX.rstrip('/')}*"),
    )
    assert_caught(oncall_violations(bad), "outside the prefix")


def test_catches_extra_s3_action():
    bad = mutated(ONCALL, lambda p: statement(p, "ReadWriteStacksUnderPrefix")["Action"].append("s3:DeleteObject"))
    violations = oncall_violations(bad)
    assert_caught(violations, "s3:DeleteObject")
    assert_caught(violations, "beyond what flamefire needs")


def test_catches_list_bucket_without_prefix_condition():
    bad = mutated(ONCALL, lambda p: statement(p, "ListStacksUnderPrefix").pop("Condition"))
    assert_caught(oncall_violations(bad), "s3:ListBucket")


def test_catches_not_resource():
    def swap(p):
        st = statement(p, "ReadFlamefireDocument")
        st["NotResource"] = st.pop("Resource")

    assert_caught(oncall_violations(mutated(ONCALL, swap)), "NotResource")


def test_catches_missing_send_command_grant():
    bad = mutated(ONCALL, lambda p: p["Statement"].remove(statement(p, "SendToOptedInInstancesOnly")))
    assert_caught(oncall_violations(bad), "no statement allows ssm:SendCommand")


def test_catches_wildcard_trust_principal():
    bad = mutated(TRUST, lambda p: p["Statement"][0]["Principal"].update(AWS="*"))
    assert_caught(trust_violations(bad), "wildcard principal")


def test_catches_trust_without_mfa():
    bad = mutated(TRUST, lambda p: p["Statement"][0].pop("Condition"))
    assert_caught(trust_violations(bad), "MFA")


def test_catches_extra_trust_action():
    bad = mutated(TRUST, lambda p: p["Statement"][0].update(Action=["sts:AssumeRole", "sts:TagSession"]))
    assert_caught(trust_violations(bad), "exactly sts:AssumeRole")


def test_catches_kms_key_wildcard():
    bad = mutated(KMS, lambda p: p["Statement"][0].update(Resource="*"))
    assert_caught(kms_violations(bad), "bucket key only")


def test_catches_kms_without_via_service():
    bad = mutated(KMS, lambda p: p["Statement"][0].pop("Condition"))
    assert_caught(kms_violations(bad), "kms:ViaService")


def test_catches_bucket_policy_allow():
    bad = mutated(
        BUCKET_POLICY,
        lambda p: p["Statement"].append(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{BUCKET_ARN}/*"}
        ),
    )
    assert_caught(bucket_policy_violations(bad), "may only deny")


def test_catches_bucket_policy_without_tls_deny():
    bad = mutated(BUCKET_POLICY, lambda p: p["Statement"][0].update(Condition={}))
    assert_caught(bucket_policy_violations(bad), "without TLS")


def test_catches_template_directive():
    assert_caught(template_violations("x", '{"a": "%{ if x }y%{ endif }"}'), "directive")


def test_catches_unknown_template_variable():
    assert_caught(template_violations("x", '{"a": "${upper(bucket)}"}'), "not a plain variable")


# ----------------------------------------------------------------------------


def main() -> int:
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print(f"FAIL {name}")
            print("     " + traceback.format_exc().strip().replace("\n", "\n     "))
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
