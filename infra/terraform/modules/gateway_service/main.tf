# otlp-gateway on ECS Fargate: task definition, service behind the NLB target
# groups, Cloud Map service discovery for the cluster peers, CPU autoscaling,
# logs to CloudWatch Logs, and least-privilege IAM.
#
# Secrets: this module creates the Secrets Manager secret *containers* only
# (no aws_secretsmanager_secret_version), so no secret value is ever in a
# Terraform variable or in state. Values are set out of band
# (`aws secretsmanager put-secret-value`, infra/README.md). ECS injects them
# through the task definition's `secrets` as SECRET_FILE_<name>; the image's
# entrypoint writes each to secrets/<name> and the config reads it with
# ${file:secrets/<name>}.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # Secret containers: the gateway TLS pair, the cluster secret, the API keys
  # file, and one per backend credential the config reads.
  secret_names = toset(concat(["tls_crt", "tls_key", "cluster_secret"], var.backend_secret_names))
  cluster_dns  = "${aws_service_discovery_service.peers.name}.${aws_service_discovery_private_dns_namespace.this.name}"
  container_ports = {
    secure-grpc   = 4317
    secure-http   = 4318
    insecure-grpc = 14317
    insecure-http = 14318
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "gateway" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
}

# Where the aws_cloudwatch_logs backend writes (CW_LOG_GROUP/CW_LOG_STREAM).
resource "aws_cloudwatch_log_group" "otlp_logs" {
  name              = "/otlp/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_stream" "otlp_logs" {
  name           = "gateway"
  log_group_name = aws_cloudwatch_log_group.otlp_logs.name
}

resource "aws_secretsmanager_secret" "this" {
  for_each                = local.secret_names
  name                    = "${var.name}/${each.key}"
  description             = "otlp-gateway ${each.key}: value set out of band (infra/README.md)"
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = 7
}

# The config (no secret in it: only ${file:...} references) for the entrypoint.
resource "aws_ssm_parameter" "config" {
  name  = "/${var.name}/gateway.yaml"
  type  = "String"
  tier  = "Advanced"
  value = coalesce(var.gateway_config_yaml, file("${path.module}/../../../config/ecs.yaml"))
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name = var.cloud_map_namespace
  vpc  = var.vpc_id
}

resource "aws_service_discovery_service" "peers" {
  name = "peers"
  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 5
    }
  }
  health_check_custom_config {
    failure_threshold = 1
  }
}

resource "aws_security_group" "tasks" {
  name_prefix = "${var.name}-tasks-"
  description = "otlp-gateway tasks: OTLP and admin from the NLBs, peers from each other"
  vpc_id      = var.vpc_id
  lifecycle { create_before_destroy = true }
}

resource "aws_vpc_security_group_ingress_rule" "from_lb" {
  for_each                     = { for pair in setproduct(var.lb_security_group_ids, concat(values(local.container_ports), [var.admin_port])) : "${pair[0]}-${pair[1]}" => pair }
  security_group_id            = aws_security_group.tasks.id
  referenced_security_group_id = each.value[0]
  from_port                    = each.value[1]
  to_port                      = each.value[1]
  ip_protocol                  = "tcp"
  description                  = "OTLP and /readyz from the NLBs"
}

resource "aws_vpc_security_group_ingress_rule" "peers" {
  security_group_id            = aws_security_group.tasks.id
  referenced_security_group_id = aws_security_group.tasks.id
  from_port                    = 4319
  to_port                      = 4319
  ip_protocol                  = "tcp"
  description                  = "cluster peer listener"
}

resource "aws_vpc_security_group_ingress_rule" "scrape" {
  for_each          = toset(var.metrics_scraper_cidrs)
  security_group_id = aws_security_group.tasks.id
  cidr_ipv4         = each.value
  from_port         = var.admin_port
  to_port           = var.admin_port
  ip_protocol       = "tcp"
  description       = "Prometheus scraping /metrics"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.tasks.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "backends (HTTPS), Keycloak JWKS, AWS APIs, peers"
}

resource "aws_ecs_task_definition" "gateway" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
  # Task storage for the state volume (secrets, API keys, disk queues); the
  # root filesystem is read-only.
  volume {
    name = "state"
  }
  container_definitions = jsonencode([{
    name                   = "gateway"
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    stopTimeout            = 60
    portMappings = concat(
      [for k, p in local.container_ports : { name = k, containerPort = p, protocol = "tcp" }],
      [{ name = "peer", containerPort = 4319, protocol = "tcp" }, { name = "admin", containerPort = var.admin_port, protocol = "tcp" }],
    )
    mountPoints = [{ sourceVolume = "state", containerPath = "/var/lib/otlp-gateway", readOnly = false }]
    environment = [for k, v in merge(var.environment, {
      OIDC_ISSUER = var.oidc_issuer
      AWS_REGION  = local.region
      CLUSTER_DNS = "${local.cluster_dns}:4319"
      CW_LOG_GROUP  = aws_cloudwatch_log_group.otlp_logs.name
      CW_LOG_STREAM = aws_cloudwatch_log_stream.otlp_logs.name
      AMP_REMOTE_WRITE_URL = var.amp_workspace_arn == "" ? "" : "https://aps-workspaces.${local.region}.amazonaws.com/workspaces/${element(split("/", var.amp_workspace_arn), 1)}/api/v1/remote_write"
    }) : { name = k, value = v }]
    secrets = concat(
      [{ name = "OTLP_GATEWAY_CONFIG_YAML", valueFrom = aws_ssm_parameter.config.arn }],
      [for n, s in aws_secretsmanager_secret.this : { name = "SECRET_FILE_${n}", valueFrom = s.arn }],
    )
    healthCheck = {
      command     = ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${var.admin_port} && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
      interval    = 10
      timeout     = 3
      retries     = 3
      startPeriod = 15
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.gateway.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "gateway"
      }
    }
  }])
}

resource "aws_ecs_service" "gateway" {
  name                               = var.name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.gateway.arn
  launch_type                        = "FARGATE"
  desired_count                      = var.min_tasks
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  enable_execute_command             = false
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  dynamic "load_balancer" {
    for_each = var.target_group_arns
    content {
      target_group_arn = load_balancer.value
      container_name   = "gateway"
      container_port   = local.container_ports[load_balancer.key]
    }
  }
  service_registries {
    registry_arn = aws_service_discovery_service.peers.arn
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it
  }
}

resource "aws_appautoscaling_target" "gateway" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.gateway.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.gateway.service_namespace
  resource_id        = aws_appautoscaling_target.gateway.resource_id
  scalable_dimension = aws_appautoscaling_target.gateway.scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
