# A complete deployment in an existing VPC: NLBs, the gateway fleet on ECS
# Fargate, and (optionally) Keycloak. Apply order and secrets: infra/README.md.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.40" }
  }
}

provider "aws" {
  region = var.region
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  oidc_issuer = var.existing_oidc_issuer != "" ? var.existing_oidc_issuer : module.keycloak[0].issuer
}

module "nlb" {
  source                              = "../../modules/nlb"
  name                                = var.name
  vpc_id                              = var.vpc_id
  vpc_cidr                            = data.aws_vpc.this.cidr_block
  public_subnet_ids                   = var.public_subnet_ids
  private_subnet_ids                  = var.private_subnet_ids
  insecure_allowed_cidrs              = var.insecure_allowed_cidrs
  insecure_allowed_security_group_ids = var.insecure_allowed_security_group_ids
}

module "gateway" {
  source                 = "../../modules/gateway_service"
  name                   = var.name
  image                  = var.image
  vpc_id                 = var.vpc_id
  private_subnet_ids     = var.private_subnet_ids
  lb_security_group_ids  = module.nlb.lb_security_group_ids
  target_group_arns      = module.nlb.target_group_arns
  oidc_issuer            = local.oidc_issuer
  amp_workspace_arn      = var.amp_workspace_arn
  api_keys_s3_object_arn = var.api_keys_s3_object_arn
  environment            = { ELASTIC_ENDPOINT = var.elastic_endpoint }
  metrics_scraper_cidrs  = var.metrics_scraper_cidrs
}

# Keycloak only when no existing issuer is given.
module "keycloak" {
  count              = var.existing_oidc_issuer == "" ? 1 : 0
  source             = "../../modules/keycloak"
  name               = "${var.name}-keycloak"
  hostname           = var.keycloak_hostname
  image              = var.keycloak_image
  ecs_cluster_arn    = "arn:aws:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:cluster/${module.gateway.ecs_cluster_name}"
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  allowed_cidrs      = [data.aws_vpc.this.cidr_block]
  target_group_arn   = var.keycloak_target_group_arn
  realm_file         = "${path.module}/../../../../keycloak/realm-telemetry.json"
}

data "aws_caller_identity" "current" {}
