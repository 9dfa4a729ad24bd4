output "role_arn" {
  description = "Role the on-call engineers assume."
  value       = module.flamefire.role_arn
}

output "bucket_name" {
  description = "Stacks bucket."
  value       = module.flamefire.bucket_name
}

output "document_name" {
  description = "SSM Command document the CLI sends."
  value       = module.flamefire.document_name
}

output "instance_opt_in_tag" {
  description = "Tag to put on instances that flamefire may profile."
  value       = module.flamefire.instance_opt_in_tag
}

output "instance_profile_name" {
  description = "Instance profile with AmazonSSMManagedInstanceCore only."
  value       = aws_iam_instance_profile.node.name
}

output "environment" {
  description = "Paste into the on-call engineer's shell."
  value       = module.flamefire.environment
}

output "aws_cli_profile" {
  description = "Run once on the engineer's machine to create the profile."
  value       = module.flamefire.aws_cli_profile
}
