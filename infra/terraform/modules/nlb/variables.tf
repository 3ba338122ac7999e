variable "name" {
  description = "Prefix of every resource name (short: NLB names are at most 32 characters)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  description = "The VPC's CIDR: the NLBs reach the tasks in it."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of an internet-facing secure NLB (unused when secure_internal)."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "secure_internal" {
  description = "Make the secure endpoint internal too (agents reach it over peering/VPN)."
  type        = bool
  default     = false
}

variable "secure_allowed_cidrs" {
  description = "Sources allowed on the secure endpoint (it authenticates every request)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "insecure_allowed_cidrs" {
  description = "The only CIDRs that may reach the insecure (token-less) endpoint."
  type        = list(string)
  default     = []
}

variable "insecure_allowed_security_group_ids" {
  description = "The only security groups whose members may reach the insecure endpoint."
  type        = list(string)
  default     = []
}

variable "admin_port" {
  description = "The gateway's admin port (health checks on /readyz)."
  type        = number
  default     = 8888
}
