# Renders the IAM documents of flamefire from ../../policies/*.json.tftpl.
# Terraform and terraform/test/ read the very same templates; every template
# variable is a plain string (validated in variables.tf), and
# terraform/test/render_policies.py fills the same names with sample values.

locals {
  policy_dir = "${path.module}/../../policies"

  policy_vars = {
    partition     = var.partition
    region        = var.region
    account_id    = var.account_id
    bucket        = var.bucket
    prefix        = var.prefix
    document_name = var.document_name
    tag_key       = var.tag_key
    tag_value     = var.tag_value
  }

  # jsondecode() fails the plan if a template ever renders invalid JSON;
  # jsonencode() then gives a canonical, whitespace-free document.
  oncall_policy_json = jsonencode(jsondecode(templatefile("${local.policy_dir}/oncall-policy.json.tftpl", local.policy_vars)))

  bucket_policy_json = jsonencode(jsondecode(templatefile("${local.policy_dir}/bucket-policy.json.tftpl", {
    partition = var.partition
    bucket    = var.bucket
  })))

  kms_policy_json = var.kms_key_arn == null ? null : jsonencode(jsondecode(templatefile("${local.policy_dir}/oncall-kms-policy.json.tftpl", {
    kms_key_arn = var.kms_key_arn
    region      = var.region
    dns_suffix  = var.dns_suffix
  })))

  trust_with_mfa = jsondecode(templatefile("${local.policy_dir}/oncall-trust.json.tftpl", {
    trusted_principals = jsonencode(var.trusted_principal_arns)
  }))

  # The template's only Condition is the MFA requirement; require_mfa = false
  # (for SSO principals whose IdP already enforces MFA) drops exactly that.
  # Both branches are JSON strings because the two objects differ in type.
  trust_policy_json = var.require_mfa ? jsonencode(local.trust_with_mfa) : jsonencode(merge(local.trust_with_mfa, {
    Statement = [
      for statement in local.trust_with_mfa.Statement :
      { for key, value in statement : key => value if key != "Condition" }
    ]
  }))
}
