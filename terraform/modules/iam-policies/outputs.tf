output "oncall_policy_json" {
  description = "Inline policy of the on-call role."
  value       = local.oncall_policy_json
}

output "trust_policy_json" {
  description = "Trust policy of the on-call role."
  value       = local.trust_policy_json
}

output "kms_policy_json" {
  description = "Extra inline policy for SSE-KMS, or null when kms_key_arn is null."
  value       = local.kms_policy_json
}

output "bucket_policy_json" {
  description = "Bucket policy of the stacks bucket."
  value       = local.bucket_policy_json
}
