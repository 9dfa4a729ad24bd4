# Every value that ends up inside an IAM policy (principals, document name,
# tag, bucket, prefix, KMS key) is validated once, by modules/iam-policies,
# where `terraform test` checks the validations offline: no `*`, `?`, `"` or
# `\` can reach a policy template.

variable "trusted_principal_arns" {
  description = "IAM principals (users, roles, or account roots) allowed to assume the on-call role. Never \"*\"."
  type        = list(string)
}

variable "require_mfa" {
  description = "Require aws:MultiFactorAuthPresent=true to assume the role. Turn off only for federated (SSO) principals whose IdP enforces MFA."
  type        = bool
  default     = true
}

variable "role_name" {
  description = "Name of the on-call IAM role."
  type        = string
  default     = "flamefire-oncall"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be a valid IAM role name (1-64 characters of A-Za-z0-9+=,.@_-)."
  }
}

variable "max_session_duration" {
  description = "Maximum session duration of the on-call role, in seconds (3600-43200)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary for the on-call role."
  type        = string
  default     = null
}

variable "document_name" {
  description = "Name of the SSM Command document. The CLI sends this name."
  type        = string
  default     = "flamefire-record"
}

variable "instance_tag_key" {
  description = "Tag key an instance must carry before the on-call role may send the document to it."
  type        = string
  default     = "flamefire"
}

variable "instance_tag_value" {
  description = "Value of instance_tag_key that opts an instance in."
  type        = string
  default     = "enabled"
}

variable "bucket_name" {
  description = "Name of the stacks bucket. Default: flamefire-stacks-<account-id>-<region>."
  type        = string
  default     = null
}

variable "prefix" {
  description = "Key prefix for runs (docs/contracts.md: `prefix`, default flamefire/). Lifecycle and IAM grants are scoped to it."
  type        = string
  default     = "flamefire/"
}

variable "retention_days" {
  description = "Days after which objects under the prefix expire."
  type        = number
  default     = 14

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 3650 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number between 1 and 3650."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for SSE-KMS. null (default) uses SSE-S3 (AES256). When set, the on-call role also gets kms:GenerateDataKey/kms:Decrypt on this key, via S3 only."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete the bucket while it still holds stacks."
  type        = bool
  default     = false
}

variable "access_log_bucket" {
  description = "Optional existing bucket that receives S3 server access logs for the stacks bucket."
  type        = string
  default     = null
}

variable "access_log_prefix" {
  description = "Key prefix for access logs in access_log_bucket."
  type        = string
  default     = "s3-access-logs/flamefire/"
}

variable "cli_profile_name" {
  description = "AWS CLI profile name used in the generated configuration snippet."
  type        = string
  default     = "flamefire"
}

variable "cli_source_profile" {
  description = "Profile holding the engineer's own credentials, used as source_profile in the snippet."
  type        = string
  default     = "default"
}

variable "tags" {
  description = "Tags applied to every resource that supports them."
  type        = map(string)
  default     = {}
}
