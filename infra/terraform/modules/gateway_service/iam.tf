# IAM: two roles, each with only what it needs.
#
# Actions as documented (looked up for this module):
# - ECS `secrets` from Secrets Manager / SSM: the *execution* role needs
#   secretsmanager:GetSecretValue (and ssm:GetParameters), plus kms:Decrypt
#   only with a customer managed key (AWS docs, "Required IAM permissions for
#   Amazon ECS secrets"; "Amazon ECS task execution IAM role").
# - Amazon Managed Prometheus remote write: aps:RemoteWrite (AWS managed
#   policy AmazonPrometheusRemoteWriteAccess), here scoped to one workspace.
# - X-Ray OTLP endpoint (https://xray.<region>.amazonaws.com/v1/traces):
#   "authorized as xray:PutTraceSegments" (X-Ray developer guide, "Setting
#   up bearer token authentication for traces"), granted on "*" as every
#   AWS-documented policy for it is. Transaction Search's own permissions belong to the
#   account's one-time setup, not to the sender.
# - CloudWatch Logs OTLP endpoint (/v1/logs into an existing group and
#   stream): logs:PutLogEvents on that log stream.
# - S3 fleet-wide API keys object (auth.api_keys.s3): s3:GetObject on that
#   object only. The gateway only reads it; `otlp-gateway keys create|revoke`
#   writes it, run by an operator whose own role gets the
#   api_keys_admin_policy_json output (GetObject and PutObject on the object).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# ---- execution role: pull the image, write container logs, read the secrets ----

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution_managed" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "InjectSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for s in aws_secretsmanager_secret.this : s.arn]
  }
  statement {
    sid       = "InjectConfig"
    actions   = ["ssm:GetParameters"]
    resources = [aws_ssm_parameter.config.arn]
  }
  dynamic "statement" {
    for_each = var.secrets_kms_key_arn == null ? [] : [var.secrets_kms_key_arn]
    content {
      sid       = "DecryptSecrets"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "inject-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- task role: what the gateway's backends call ----

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "XRayOtlpTraces"
    actions   = ["xray:PutTraceSegments"]
    resources = ["*"]
  }
  statement {
    sid       = "CloudWatchLogsOtlp"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.otlp_logs.arn}:log-stream:${aws_cloudwatch_log_stream.otlp_logs.name}"]
  }
  dynamic "statement" {
    for_each = var.amp_workspace_arn == "" ? [] : [var.amp_workspace_arn]
    content {
      sid       = "AmpRemoteWrite"
      actions   = ["aps:RemoteWrite"]
      resources = [statement.value]
    }
  }
  dynamic "statement" {
    for_each = var.api_keys_s3_object_arn == "" ? [] : [var.api_keys_s3_object_arn]
    content {
      sid       = "FleetApiKeysObject"
      actions   = ["s3:GetObject"]
      resources = [statement.value]
    }
  }
}

# For the operators who run `otlp-gateway keys create|revoke` (a conditional
# PUT of the same object); attach it to their role, not to the task.
data "aws_iam_policy_document" "api_keys_admin" {
  count = var.api_keys_s3_object_arn == "" ? 0 : 1
  statement {
    sid       = "FleetApiKeysAdmin"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [var.api_keys_s3_object_arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "backends"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
