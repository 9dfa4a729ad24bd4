# A complete deployment: the module plus the instance side (the standard SSM
# instance role with AmazonSSMManagedInstanceCore, and the opt-in tag).
# Instances need no S3 permission.

terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "Region to deploy flamefire into."
  type        = string
  default     = "eu-west-1"
}

variable "oncall_principal_arns" {
  description = "Principals allowed to assume the flamefire role, e.g. the on-call engineers' IAM users (MFA required)."
  type        = list(string)
}

module "flamefire" {
  source = "../.."

  trusted_principal_arns = var.oncall_principal_arns
  require_mfa            = true
  max_session_duration   = 3600
  retention_days         = 14

  tags = {
    Project = "flamefire"
  }
}

# The instance side, for reference: a node that Run Command can reach needs
# only the AWS-managed AmazonSSMManagedInstanceCore policy...
data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "flamefire-example-node"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "node_ssm_core" {
  role       = aws_iam_role.node.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  name = "flamefire-example-node"
  role = aws_iam_role.node.name
}

# ...and the opt-in tag, on the instance itself, e.g.:
#
#   resource "aws_instance" "api" {
#     iam_instance_profile = aws_iam_instance_profile.node.name
#     tags                 = merge(module.flamefire.instance_opt_in_tag, { Name = "api" })
#     ...
#   }
