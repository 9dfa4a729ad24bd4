# `terraform test` for the provider-free policy module: runs offline
# (scripts/lint-terraform.sh step "terraform validate + test").
# The sample deployment matches terraform/test/render_policies.py.

variables {
  partition              = "aws"
  region                 = "eu-west-1"
  account_id             = "123456789012"
  dns_suffix             = "amazonaws.com"
  bucket                 = "flamefire-stacks-example"
  prefix                 = "flamefire/"
  document_name          = "flamefire-record"
  tag_key                = "flamefire"
  tag_value              = "enabled"
  trusted_principal_arns = ["arn:aws:iam::123456789012:role/oncall"]
}

run "send_command_is_scoped_to_the_document_and_tagged_instances" {
  command = plan

  assert {
    condition = [
      for s in jsondecode(output.oncall_policy_json).Statement : s.Resource if s.Action == "ssm:SendCommand"
    ] == ["arn:aws:ssm:eu-west-1:123456789012:document/flamefire-record", "arn:aws:ec2:eu-west-1:123456789012:instance/*"]
    error_message = "ssm:SendCommand must be allowed on exactly the flamefire document and this region's instances."
  }

  assert {
    condition = [
      for s in jsondecode(output.oncall_policy_json).Statement : s.Condition
      if s.Action == "ssm:SendCommand" && s.Resource == "arn:aws:ec2:eu-west-1:123456789012:instance/*"
    ][0] == { StringEquals = { "ssm:resourceTag/flamefire" = "enabled" } }
    error_message = "Instances must be gated by ssm:resourceTag/flamefire = enabled."
  }
}

run "trust_requires_mfa_by_default" {
  command = plan

  assert {
    condition     = jsondecode(output.trust_policy_json).Statement[0].Condition == { Bool = { "aws:MultiFactorAuthPresent" = "true" } }
    error_message = "The trust policy must require MFA by default."
  }

  assert {
    condition     = jsondecode(output.trust_policy_json).Statement[0].Principal == { AWS = ["arn:aws:iam::123456789012:role/oncall"] }
    error_message = "The trust policy must name exactly the configured principals."
  }
}

run "mfa_can_be_turned_off_and_only_mfa_goes" {
  command = plan

  variables {
    require_mfa            = false
    trusted_principal_arns = ["arn:aws:iam::123456789012:role/oncall", "arn:aws:iam::210987654321:root"]
  }

  assert {
    condition     = !contains(keys(jsondecode(output.trust_policy_json).Statement[0]), "Condition")
    error_message = "require_mfa = false must drop the MFA condition."
  }

  assert {
    condition = jsondecode(output.trust_policy_json).Statement[0] == {
      Sid       = "OnCallEngineersWithMfa"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { AWS = ["arn:aws:iam::123456789012:role/oncall", "arn:aws:iam::210987654321:root"] }
    }
    error_message = "Dropping MFA must leave the rest of the trust statement untouched."
  }
}

run "no_kms_policy_without_a_key" {
  command = plan

  assert {
    condition     = output.kms_policy_json == null
    error_message = "SSE-S3 needs no KMS grant."
  }
}

run "kms_policy_names_the_key_and_s3_only" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition = jsondecode(output.kms_policy_json).Statement[0].Resource == "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" && (
      jsondecode(output.kms_policy_json).Statement[0].Condition.StringEquals["kms:ViaService"] == "s3.eu-west-1.amazonaws.com"
    )
    error_message = "KMS use must be limited to the bucket key, through S3."
  }
}

run "bucket_policy_denies_plain_http" {
  command = plan

  assert {
    condition = alltrue([for s in jsondecode(output.bucket_policy_json).Statement : s.Effect == "Deny"]) && (
      jsondecode(output.bucket_policy_json).Statement[0].Condition == { Bool = { "aws:SecureTransport" = "false" } }
    )
    error_message = "The bucket policy must only deny, starting with requests without TLS."
  }
}

run "rejects_a_wildcard_principal" {
  command = plan

  variables {
    trusted_principal_arns = ["*"]
  }

  expect_failures = [var.trusted_principal_arns]
}

run "rejects_an_aws_owned_document_name" {
  command = plan

  variables {
    document_name = "AWS-RunShellScript"
  }

  expect_failures = [var.document_name]
}

run "rejects_a_wildcard_prefix" {
  command = plan

  variables {
    prefix = "flame*/"
  }

  expect_failures = [var.prefix]
}

run "rejects_a_wildcard_tag_value" {
  command = plan

  variables {
    tag_value = "*"
  }

  expect_failures = [var.tag_value]
}

run "rejects_a_json_breaking_bucket_name" {
  command = plan

  variables {
    bucket = "evil\",\"arn:aws:s3:::other"
  }

  expect_failures = [var.bucket]
}

run "rejects_a_kms_alias" {
  command = plan

  variables {
    kms_key_arn = "alias/aws/s3"
  }

  expect_failures = [var.kms_key_arn]
}
