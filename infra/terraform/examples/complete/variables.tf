variable "region" {
  type = string
}

variable "name" {
  type    = string
  default = "otlp-gateway"
}

variable "image" {
  description = "The gateway image in your registry (infra/docker/Dockerfile)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "insecure_allowed_cidrs" {
  description = "VPC CIDRs of the agents that cannot send a token (ADOT): the only sources of the insecure endpoint."
  type        = list(string)
  default     = []
}

variable "insecure_allowed_security_group_ids" {
  type    = list(string)
  default = []
}

variable "existing_oidc_issuer" {
  description = "Use this Keycloak realm (https://sso.example.com/realms/telemetry) instead of deploying one."
  type        = string
  default     = ""
}

variable "keycloak_hostname" {
  type    = string
  default = ""
}

variable "keycloak_image" {
  type    = string
  default = ""
}

variable "keycloak_target_group_arn" {
  type    = string
  default = ""
}

variable "amp_workspace_arn" {
  type    = string
  default = ""
}

variable "api_keys_s3_object_arn" {
  type    = string
  default = ""
}

variable "elastic_endpoint" {
  type    = string
  default = ""
}

variable "metrics_scraper_cidrs" {
  type    = list(string)
  default = []
}
