# Every value here is interpolated into a JSON string by a policy template,
# so each one is validated to contain no `*`, `?`, `"` or `\`: it can neither
# break the JSON nor widen a grant.

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string

  validation {
    condition     = can(regex("^aws(-cn|-us-gov)?$", var.partition))
    error_message = "partition must be aws, aws-cn or aws-us-gov."
  }
}

variable "region" {
  description = "Region of the document and the bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "account_id" {
  description = "AWS account id."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "dns_suffix" {
  description = "DNS suffix of the partition (amazonaws.com, amazonaws.com.cn)."
  type        = string

  validation {
    condition     = can(regex("^amazonaws\\.com(\\.cn)?$", var.dns_suffix))
    error_message = "dns_suffix must be amazonaws.com or amazonaws.com.cn."
  }
}

variable "bucket" {
  description = "Stacks bucket name."
  type        = string

  validation {
    # No dots: a dotted name breaks the TLS certificate of virtual-hosted URLs,
    # which is how hosts POST their stacks.
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be 3-63 characters of a-z0-9- (no dots: hosts upload over virtual-hosted HTTPS)."
  }
}

variable "prefix" {
  description = "Key prefix for runs."
  type        = string

  validation {
    # The CLI sends UploadKeyPrefix = <prefix><run-id>/, whose allowedPattern
    # (docs/contracts.md) allows at most 8 segments: leave one for the run id.
    condition     = can(regex("^([A-Za-z0-9_-][A-Za-z0-9_.-]{0,62}/){1,7}$", var.prefix))
    error_message = "prefix must be 1-7 path segments of A-Za-z0-9_.- each ending in /, e.g. flamefire/."
  }
}

variable "document_name" {
  description = "Name of the SSM Command document."
  type        = string

  validation {
    # AWS reserves the prefixes aws, amazon and amzn for its own documents.
    condition     = can(regex("^[A-Za-z0-9_.-]{3,128}$", var.document_name)) && !can(regex("^(?i)(aws|amazon|amzn)", var.document_name))
    error_message = "document_name must be 3-128 characters of A-Za-z0-9_.- and must not start with aws, amazon or amzn."
  }
}

variable "tag_key" {
  description = "Tag key an instance must carry to be a SendCommand target."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.:/=+@-]{1,128}$", var.tag_key)) && !startswith(lower(var.tag_key), "aws:")
    error_message = "instance_tag_key must be 1-128 characters of A-Za-z0-9_.:/=+@- and must not start with aws:."
  }
}

variable "tag_value" {
  description = "Value of tag_key that opts an instance in."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.:/=+@-]{1,256}$", var.tag_value))
    error_message = "instance_tag_value must be 1-256 characters of A-Za-z0-9_.:/=+@- (no wildcards)."
  }
}

variable "trusted_principal_arns" {
  description = "IAM principals allowed to assume the on-call role."
  type        = list(string)

  validation {
    condition     = length(var.trusted_principal_arns) > 0
    error_message = "trusted_principal_arns needs at least one principal ARN."
  }

  validation {
    condition = alltrue([
      for arn in var.trusted_principal_arns :
      can(regex("^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(root|(user|role)/[A-Za-z0-9+=,.@_/-]{1,512})$", arn))
    ])
    error_message = "Each trusted principal must be an IAM user, role or account-root ARN such as arn:aws:iam::123456789012:role/oncall (no wildcards)."
  }
}

variable "require_mfa" {
  description = "Require aws:MultiFactorAuthPresent=true in the trust policy."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key of the bucket, or null for SSE-S3 (then no KMS policy is rendered)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias."
  }
}
