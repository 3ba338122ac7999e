# Network load balancers for otlp-gateway: a secure endpoint (TLS terminated
# by the gateway itself, so client certificates and ALPN h2 work end to end)
# and an internal-only insecure endpoint. TCP listeners, target groups of type
# ip with PROXY protocol v2 (the gateway's listeners set proxy_protocol: true)
# and HTTP health checks on the admin port's /readyz. AWS sends the PROXY
# header on health check connections too, so the config sets
# admin_proxy_protocol: true (infra/config/ecs.yaml).

locals {
  secure_ports   = { grpc = 4317, http = 4318 }
  insecure_ports = { grpc = 14317, http = 14318 }
  target_groups = merge(
    { for k, p in local.secure_ports : "secure-${k}" => { port = p, lb = "secure" } },
    { for k, p in local.insecure_ports : "insecure-${k}" => { port = p, lb = "insecure" } },
  )
}

resource "aws_security_group" "secure_lb" {
  name_prefix = "${var.name}-secure-nlb-"
  description = "otlp-gateway secure endpoint NLB"
  vpc_id      = var.vpc_id
  lifecycle { create_before_destroy = true }
}

resource "aws_vpc_security_group_ingress_rule" "secure_lb" {
  for_each          = { for pair in setproduct(var.secure_allowed_cidrs, values(local.secure_ports)) : "${pair[0]}-${pair[1]}" => pair }
  security_group_id = aws_security_group.secure_lb.id
  cidr_ipv4         = each.value[0]
  from_port         = each.value[1]
  to_port           = each.value[1]
  ip_protocol       = "tcp"
  description       = "secure OTLP (TLS by the gateway)"
}

resource "aws_security_group" "insecure_lb" {
  name_prefix = "${var.name}-insecure-nlb-"
  description = "otlp-gateway insecure endpoint NLB: only the named VPC sources"
  vpc_id      = var.vpc_id
  lifecycle { create_before_destroy = true }
}

resource "aws_vpc_security_group_ingress_rule" "insecure_lb_cidr" {
  for_each          = { for pair in setproduct(var.insecure_allowed_cidrs, values(local.insecure_ports)) : "${pair[0]}-${pair[1]}" => pair }
  security_group_id = aws_security_group.insecure_lb.id
  cidr_ipv4         = each.value[0]
  from_port         = each.value[1]
  to_port           = each.value[1]
  ip_protocol       = "tcp"
  description       = "insecure OTLP from a named VPC CIDR"
}

resource "aws_vpc_security_group_ingress_rule" "insecure_lb_sg" {
  for_each                     = { for pair in setproduct(var.insecure_allowed_security_group_ids, values(local.insecure_ports)) : "${pair[0]}-${pair[1]}" => pair }
  security_group_id            = aws_security_group.insecure_lb.id
  referenced_security_group_id = each.value[0]
  from_port                    = each.value[1]
  to_port                      = each.value[1]
  ip_protocol                  = "tcp"
  description                  = "insecure OTLP from a named security group"
}

resource "aws_vpc_security_group_egress_rule" "lb_to_vpc" {
  for_each          = { secure = aws_security_group.secure_lb.id, insecure = aws_security_group.insecure_lb.id }
  security_group_id = each.value
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 0
  to_port           = 65535
  description       = "to the gateway tasks (OTLP ports and admin /readyz)"
}

resource "aws_lb" "secure" {
  name                             = "${var.name}-secure"
  load_balancer_type               = "network"
  internal                         = var.secure_internal
  subnets                          = var.secure_internal ? var.private_subnet_ids : var.public_subnet_ids
  security_groups                  = [aws_security_group.secure_lb.id]
  enable_cross_zone_load_balancing = true
}

resource "aws_lb" "insecure" {
  name                             = "${var.name}-insecure"
  load_balancer_type               = "network"
  internal                         = true
  subnets                          = var.private_subnet_ids
  security_groups                  = [aws_security_group.insecure_lb.id]
  enable_cross_zone_load_balancing = true
}

resource "aws_lb_target_group" "this" {
  for_each             = local.target_groups
  name                 = "${var.name}-${each.key}"
  port                 = each.value.port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  proxy_protocol_v2    = true
  deregistration_delay = 30
  health_check {
    protocol            = "HTTP"
    port                = tostring(var.admin_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "this" {
  for_each          = local.target_groups
  load_balancer_arn = each.value.lb == "secure" ? aws_lb.secure.arn : aws_lb.insecure.arn
  port              = each.value.port
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }
}
