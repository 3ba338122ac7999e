# Keycloak that survives restarts: an ECS Fargate service (on-demand, not
# Spot) whose state is in a managed PostgreSQL (RDS, Multi-AZ optional), with
# the realm imported from keycloak/realm-telemetry.json at start (an existing
# realm is left alone, so a restart never resets it).
#
# No secret value in state: RDS manages the database password in Secrets
# Manager (manage_master_user_password), and the bootstrap admin password and
# each confidential client's secret are secret containers whose values are set
# out of band. The realm stored in SSM carries a placeholder
# (${KC_CLIENT_SECRET_<CLIENT>}) where the file has a client secret; Keycloak
# resolves such placeholders from the environment when it imports a realm at
# start, and the task injects each one from its secret. Keycloak keeps its
# realm signing keys in the database, so they survive restarts too.

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.name
  issuer = "https://${var.hostname}/realms/telemetry"
  realm  = jsondecode(file(var.realm_file))
  # client id => the environment variable its secret is injected as
  client_secret_env = {
    for c in local.realm.clients : c.clientId => "KC_CLIENT_SECRET_${upper(replace(c.clientId, "-", "_"))}"
    if try(c.secret, null) != null
  }
  # The realm as imported: no client secret in it, a placeholder instead (a
  # for expression with a filter, so that clients without a secret keep their
  # shape: a conditional between objects of different attributes is a type
  # error).
  realm_json = jsonencode(merge(local.realm, {
    clients = [
      for c in local.realm.clients :
      merge(c, { for id, env in local.client_secret_env : "secret" => "$${${env}}" if id == c.clientId })
    ]
  }))
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-db"
  subnet_ids = var.private_subnet_ids
}

resource "aws_security_group" "db" {
  name_prefix = "${var.name}-db-"
  vpc_id      = var.vpc_id
  description = "Keycloak database: only from the Keycloak tasks"
  lifecycle { create_before_destroy = true }
}

resource "aws_vpc_security_group_ingress_rule" "db" {
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.keycloak.id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
}

resource "aws_db_instance" "this" {
  identifier                  = "${var.name}-db"
  engine                      = "postgres"
  engine_version              = var.postgres_version
  instance_class              = var.db_instance_class
  allocated_storage           = 20
  storage_encrypted           = true
  db_name                     = "keycloak"
  username                    = "keycloak"
  manage_master_user_password = true
  db_subnet_group_name        = aws_db_subnet_group.this.name
  vpc_security_group_ids      = [aws_security_group.db.id]
  multi_az                    = var.db_multi_az
  backup_retention_period     = 7
  deletion_protection         = true
  skip_final_snapshot         = false
  final_snapshot_identifier   = "${var.name}-db-final"
}

resource "aws_secretsmanager_secret" "admin_password" {
  name        = "${var.name}/bootstrap-admin-password"
  description = "Keycloak bootstrap admin password: set out of band (infra/README.md)"
}

resource "aws_secretsmanager_secret" "client" {
  for_each    = local.client_secret_env
  name        = "${var.name}/client-secret/${each.key}"
  description = "Keycloak client ${each.key}'s secret: set out of band (infra/README.md)"
}

resource "aws_ssm_parameter" "realm" {
  name  = "/${var.name}/realm-telemetry.json"
  type  = "String"
  tier  = "Advanced"
  value = local.realm_json
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = 30
}

resource "aws_security_group" "keycloak" {
  name_prefix = "${var.name}-"
  vpc_id      = var.vpc_id
  description = "Keycloak tasks"
  lifecycle { create_before_destroy = true }
}

resource "aws_vpc_security_group_ingress_rule" "keycloak" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.keycloak.id
  cidr_ipv4         = each.value
  from_port         = 8080
  to_port           = 8080
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "keycloak" {
  security_group_id = aws_security_group.keycloak.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat([aws_db_instance.this.master_user_secret[0].secret_arn, aws_secretsmanager_secret.admin_password.arn],
    [for c in aws_secretsmanager_secret.client : c.arn])
  }
  statement {
    actions   = ["ssm:GetParameters"]
    resources = [aws_ssm_parameter.realm.arn]
  }
}

resource "aws_iam_role_policy" "secrets" {
  name   = "inject-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.secrets.json
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 1024
  memory                   = 2048
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name       = "keycloak"
    image      = var.image
    essential  = true
    entryPoint = ["/bin/sh", "-c"]
    # The realm JSON comes from SSM as REALM_JSON; --import-realm skips a
    # realm that already exists in the database.
    command = ["printf '%s' \"$REALM_JSON\" > /opt/keycloak/data/import/realm-telemetry.json && unset REALM_JSON && exec /opt/keycloak/bin/kc.sh start --optimized --import-realm"]
    portMappings = [{ containerPort = 8080, protocol = "tcp" }]
    environment = [
      { name = "KC_DB", value = "postgres" },
      { name = "KC_DB_URL", value = "jdbc:postgresql://${aws_db_instance.this.endpoint}/keycloak" },
      { name = "KC_DB_USERNAME", value = "keycloak" },
      { name = "KC_HOSTNAME", value = "https://${var.hostname}" },
      { name = "KC_HTTP_ENABLED", value = "true" },
      { name = "KC_PROXY_HEADERS", value = "xforwarded" },
      { name = "KC_HEALTH_ENABLED", value = "true" },
      { name = "KC_BOOTSTRAP_ADMIN_USERNAME", value = "admin" },
    ]
    secrets = concat([
      { name = "KC_DB_PASSWORD", valueFrom = "${aws_db_instance.this.master_user_secret[0].secret_arn}:password::" },
      { name = "KC_BOOTSTRAP_ADMIN_PASSWORD", valueFrom = aws_secretsmanager_secret.admin_password.arn },
      { name = "REALM_JSON", valueFrom = aws_ssm_parameter.realm.arn },
      ], [for id, env in local.client_secret_env : { name = env, valueFrom = aws_secretsmanager_secret.client[id].arn }]
    )
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "keycloak"
      }
    }
  }])
}

resource "aws_ecs_service" "this" {
  name            = var.name
  cluster         = var.ecs_cluster_arn
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = var.instances
  # On-demand capacity: never Spot for the token issuer.
  launch_type = "FARGATE"
  network_configuration {
    subnets         = var.private_subnet_ids
    security_groups = [aws_security_group.keycloak.id]
  }
  dynamic "load_balancer" {
    for_each = var.target_group_arn == "" ? [] : [var.target_group_arn]
    content {
      target_group_arn = load_balancer.value
      container_name   = "keycloak"
      container_port   = 8080
    }
  }
}
