variable "name" {
  type    = string
  default = "keycloak"
}

variable "hostname" {
  description = "Public host name of Keycloak behind your TLS-terminating load balancer (sso.example.com)."
  type        = string
}

variable "image" {
  description = "A Keycloak image built with --db=postgres (kc.sh build) so that start --optimized works."
  type        = string
}

variable "ecs_cluster_arn" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "allowed_cidrs" {
  description = "Who reaches Keycloak on 8080 (its load balancer's subnets)."
  type        = list(string)
}

variable "target_group_arn" {
  description = "Target group of your HTTPS load balancer for Keycloak (empty: none)."
  type        = string
  default     = ""
}

variable "realm_file" {
  description = "Realm export imported at start."
  type        = string
}

variable "instances" {
  type    = number
  default = 2
}

variable "postgres_version" {
  type    = string
  default = "16"
}

variable "db_instance_class" {
  type    = string
  default = "db.t4g.small"
}

variable "db_multi_az" {
  type    = bool
  default = true
}
