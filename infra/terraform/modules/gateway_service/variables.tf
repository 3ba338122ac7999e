variable "name" {
  description = "Name of the ECS cluster, service, log groups and secret prefix."
  type        = string
}

variable "image" {
  description = "The otlp-gateway image (infra/docker/Dockerfile), e.g. <account>.dkr.ecr.<region>.amazonaws.com/otlp-gateway:0.1.0."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "lb_security_group_ids" {
  description = "Security groups of the NLBs (module nlb's lb_security_group_ids)."
  type        = list(string)
}

variable "target_group_arns" {
  description = "Target groups by key secure-grpc, secure-http, insecure-grpc, insecure-http (module nlb)."
  type        = map(string)
}

variable "oidc_issuer" {
  description = "Keycloak realm URL the tokens' iss must equal (module keycloak's issuer, or an existing one)."
  type        = string
}

variable "gateway_config_yaml" {
  description = "The gateway config stored in SSM; secrets only as $${file:secrets/<name>}."
  type        = string
  default     = null
  nullable    = true
}

variable "backend_secret_names" {
  description = "Secret containers created for backend credentials and the API keys file (values set out of band)."
  type        = list(string)
  default     = ["honeycomb_api_key", "elastic_api_key", "api_keys"]
}

variable "secrets_kms_key_arn" {
  description = "Customer managed KMS key of the secrets (null: the AWS managed key)."
  type        = string
  default     = null
}

variable "environment" {
  description = "More non-secret environment variables for the config (e.g. ELASTIC_ENDPOINT)."
  type        = map(string)
  default     = {}
}

variable "amp_workspace_arn" {
  description = "Amazon Managed Prometheus workspace for the remote-write backend (empty: none)."
  type        = string
  default     = ""
}

variable "api_keys_s3_object_arn" {
  description = "ARN of the fleet-wide API keys object (arn:aws:s3:::bucket/key) for auth.api_keys.s3 (empty: none)."
  type        = string
  default     = ""
}

variable "cloud_map_namespace" {
  description = "Private DNS namespace; the peers are peers.<namespace>."
  type        = string
  default     = "otlp-gateway.internal"
}

variable "admin_port" {
  type    = number
  default = 8888
}

variable "metrics_scraper_cidrs" {
  description = "CIDRs of the Prometheus that scrapes /metrics on the admin port."
  type        = list(string)
  default     = []
}

variable "task_cpu" {
  type    = number
  default = 1024
}

variable "task_memory" {
  type    = number
  default = 2048
}

variable "cpu_architecture" {
  type    = string
  default = "X86_64"
}

variable "min_tasks" {
  type    = number
  default = 2
}

variable "max_tasks" {
  type    = number
  default = 10
}

variable "cpu_target_percent" {
  description = "Target average CPU of the autoscaling policy."
  type        = number
  default     = 60
}

variable "log_retention_days" {
  type    = number
  default = 30
}
