terraform {
  # No provider: this module only renders JSON, so `terraform validate` and
  # `terraform test` run on it offline (scripts/lint-terraform.sh).
  required_version = ">= 1.9.0"
}
