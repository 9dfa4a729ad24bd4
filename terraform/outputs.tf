output "role_arn" {
  description = "ARN of the on-call role that engineers assume to run flamefire."
  value       = aws_iam_role.oncall.arn
}

output "role_name" {
  description = "Name of the on-call role."
  value       = aws_iam_role.oncall.name
}

output "bucket_name" {
  description = "Name of the stacks bucket."
  value       = aws_s3_bucket.stacks.id
}

output "bucket_arn" {
  description = "ARN of the stacks bucket."
  value       = aws_s3_bucket.stacks.arn
}

output "prefix" {
  description = "Key prefix under which runs are stored."
  value       = var.prefix
}

output "document_name" {
  description = "Name of the SSM Command document."
  value       = aws_ssm_document.flamefire_record.name
}

output "document_arn" {
  description = "ARN of the SSM Command document."
  value       = aws_ssm_document.flamefire_record.arn
}

output "region" {
  description = "Region holding the document and the bucket."
  value       = local.region
}

output "instance_opt_in_tag" {
  description = "Tag an instance needs (besides AmazonSSMManagedInstanceCore on its role) before flamefire may run on it."
  value       = { (var.instance_tag_key) = var.instance_tag_value }
}

output "environment" {
  description = "Shell lines for the on-call engineer's environment."
  value       = <<-EOT
    export AWS_PROFILE=${var.cli_profile_name}
    export AWS_REGION=${local.region}
    export FLAMEFIRE_BUCKET=${aws_s3_bucket.stacks.id}
    export FLAMEFIRE_PREFIX=${var.prefix}
    export FLAMEFIRE_OPT_IN_TAG=${var.instance_tag_key}=${var.instance_tag_value}
  EOT
}

output "aws_cli_profile" {
  description = "Commands that create the AWS CLI/SDK profile assuming the on-call role."
  value = join("\n", concat(
    [
      "aws configure set role_arn ${aws_iam_role.oncall.arn} --profile ${var.cli_profile_name}",
      "aws configure set source_profile ${var.cli_source_profile} --profile ${var.cli_profile_name}",
      "aws configure set region ${local.region} --profile ${var.cli_profile_name}",
      "aws configure set duration_seconds ${var.max_session_duration} --profile ${var.cli_profile_name}",
    ],
    var.require_mfa ? [
      "# the role requires MFA: use your own device's ARN",
      "aws configure set mfa_serial arn:${local.partition}:iam::<YOUR-ACCOUNT-ID>:mfa/<YOUR-MFA-DEVICE> --profile ${var.cli_profile_name}",
    ] : [],
  ))
}

output "flamefire_config" {
  description = "flamefire's config.toml with this deployment's defaults: terraform output -raw flamefire_config > ~/.config/flamefire/config.toml (or below an [env.NAME] header, for `flamefire --env NAME`)."
  value       = <<-EOT
    # flamefire defaults, from `terraform output -raw flamefire_config`.
    # Flags and FLAMEFIRE_*/AWS_* variables override these (README: "Config file").
    bucket     = ${jsonencode(aws_s3_bucket.stacks.id)}
    prefix     = ${jsonencode(var.prefix)}
    region     = ${jsonencode(local.region)}
    profile    = ${jsonencode(var.cli_profile_name)}
    document   = ${jsonencode(aws_ssm_document.flamefire_record.name)}
    opt-in-tag = ${jsonencode("${var.instance_tag_key}=${var.instance_tag_value}")}
  EOT
}
