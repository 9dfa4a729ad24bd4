terraform {
  # templatefile(), optional() and validation blocks that read other variables
  # are all stable from 1.9 on.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.x: data.aws_region.current.region replaces the deprecated `.name`.
      version = ">= 6.0.0, < 7.0.0"
    }
  }
}
