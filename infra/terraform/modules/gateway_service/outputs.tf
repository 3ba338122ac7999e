output "secret_arns" {
  description = "Secret containers by name: put their values out of band (infra/README.md)."
  value       = { for n, s in aws_secretsmanager_secret.this : n => s.arn }
}

output "cluster_dns" {
  description = "Cloud Map name whose A records are the cluster members (cluster.members_dns)."
  value       = local.cluster_dns
}

output "task_role_arn" {
  value = aws_iam_role.task.arn
}

output "service_name" {
  value = aws_ecs_service.gateway.name
}

output "ecs_cluster_name" {
  value = aws_ecs_cluster.this.name
}

output "task_security_group_id" {
  value = aws_security_group.tasks.id
}

output "api_keys_admin_policy_json" {
  description = "IAM policy (JSON) for the operators who run `otlp-gateway keys create|revoke` against the S3 keys object; empty without one."
  value       = var.api_keys_s3_object_arn == "" ? "" : data.aws_iam_policy_document.api_keys_admin[0].json
}
