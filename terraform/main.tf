# flamefire: the stacks bucket, the `flamefire-record` Command document, and
# the on-call role that may send that document (and nothing else) to opted-in
# instances. Instances need no S3 permission: they upload through a presigned
# POST that the CLI signs with the on-call role's credentials.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  bucket     = coalesce(var.bucket_name, "flamefire-stacks-${local.account_id}-${local.region}")
}

# The IAM documents live in policies/*.json.tftpl so that Terraform and
# terraform/test/ read the very same text. This provider-free submodule renders
# them and validates every value that goes into them; having no provider, it is
# validated and tested offline (`terraform test`, see README).
module "iam_policies" {
  source = "./modules/iam-policies"

  partition              = local.partition
  region                 = local.region
  account_id             = local.account_id
  dns_suffix             = data.aws_partition.current.dns_suffix
  bucket                 = local.bucket
  prefix                 = var.prefix
  document_name          = var.document_name
  tag_key                = var.instance_tag_key
  tag_value              = var.instance_tag_value
  trusted_principal_arns = var.trusted_principal_arns
  require_mfa            = var.require_mfa
  kms_key_arn            = var.kms_key_arn
}

################################################################################
# Stacks bucket
################################################################################

resource "aws_s3_bucket" "stacks" {
  #checkov:skip=CKV_AWS_21:Versioning is deliberately off: stacks are short-lived diagnostics that must really disappear after retention_days; a re-run regenerates them, and old versions would outlive the retention promise.
  #checkov:skip=CKV_AWS_144:Cross-region replication is not wanted: the data is ephemeral, regenerable and subject to retention_days; a replica would double its exposure.
  #checkov:skip=CKV2_AWS_62:No event notifications: nothing consumes upload events; the CLI polls Run Command status and reads meta.json.
  bucket        = local.bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "stacks" {
  bucket = aws_s3_bucket.stacks.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "stacks" {
  bucket                  = aws_s3_bucket.stacks.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "stacks" {
  bucket = aws_s3_bucket.stacks.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # Bucket keys cut KMS calls (and cost) for SSE-KMS; meaningless for AES256.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "stacks" {
  bucket = aws_s3_bucket.stacks.id

  versioning_configuration {
    # Explicitly never enabled (see the CKV_AWS_21 skip on the bucket).
    status = "Disabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "stacks" {
  bucket = aws_s3_bucket.stacks.id

  rule {
    id     = "expire-stacks"
    status = "Enabled"

    filter {
      prefix = var.prefix
    }

    expiration {
      days = var.retention_days
    }
  }

  # Hosts upload with single POSTs, so a multipart upload here is an anomaly:
  # never keep its parts, under the prefix or anywhere else.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.stacks]
}

resource "aws_s3_bucket_policy" "stacks" {
  bucket = aws_s3_bucket.stacks.id
  policy = module.iam_policies.bucket_policy_json

  # S3 rejects a bucket policy while the public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.stacks]
}

resource "aws_s3_bucket_logging" "stacks" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.stacks.id
  target_bucket = var.access_log_bucket
  target_prefix = var.access_log_prefix
}

################################################################################
# The Command document: ssm-documents/flamefire-record.yaml is the single source.
################################################################################

resource "aws_ssm_document" "flamefire_record" {
  name            = var.document_name
  document_type   = "Command"
  document_format = "YAML"
  # The IAM policy only allows EC2 instances as targets; say so on the document too.
  target_type = "/AWS::EC2::Instance"
  content     = file("${path.module}/../ssm-documents/flamefire-record.yaml")
  tags        = var.tags
}

################################################################################
# On-call role
################################################################################

resource "aws_iam_role" "oncall" {
  name                 = var.role_name
  description          = "flamefire on-call: send ${var.document_name} to instances tagged ${var.instance_tag_key}=${var.instance_tag_value}, read and write s3://${local.bucket}/${var.prefix}"
  assume_role_policy   = module.iam_policies.trust_policy_json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

# Least privilege, statement by statement (policies/oncall-policy.json.tftpl):
# - ssm:SendCommand on the flamefire document ARN only, and on this region's
#   EC2 instances only where ssm:resourceTag/<key> = <value>. SendCommand is
#   authorized against the document and every target instance, so both
#   statements are needed; this is AWS's documented pattern
#   (https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html).
# - ssm:GetDocument / ssm:DescribeDocument on the flamefire document only
#   (`flamefire doctor` compares its content with the local file).
# - Resource "*" only for actions that have no resource-level permissions
#   (Service Authorization Reference lists no resource type for them):
#   ec2:DescribeInstances, ssm:CancelCommand, ssm:DescribeInstanceInformation,
#   ssm:GetCommandInvocation, ssm:ListCommandInvocations, ssm:ListCommands.
# - s3:PutObject (the CLI signs the hosts' presigned POST with it) and
#   s3:GetObject under <bucket>/<prefix>*, s3:ListBucket with s3:prefix <prefix>*.
# sts:GetCallerIdentity needs no permission.
resource "aws_iam_role_policy" "oncall" {
  name   = "flamefire-oncall"
  role   = aws_iam_role.oncall.id
  policy = module.iam_policies.oncall_policy_json
}

# With SSE-KMS, signing the upload and reading stacks also need the key; only
# through S3 in this region.
resource "aws_iam_role_policy" "oncall_kms" {
  count = var.kms_key_arn == null ? 0 : 1

  name   = "flamefire-oncall-kms"
  role   = aws_iam_role.oncall.id
  policy = module.iam_policies.kms_policy_json
}
