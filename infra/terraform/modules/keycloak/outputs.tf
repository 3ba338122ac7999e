output "issuer" {
  description = "The realm's issuer URL (the gateway's auth.oidc issuer)."
  value       = local.issuer
}

output "admin_password_secret_arn" {
  value = aws_secretsmanager_secret.admin_password.arn
}

output "db_master_secret_arn" {
  description = "RDS-managed secret of the database password (rotated by RDS)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "client_secret_arns" {
  description = "Secret containers of the confidential clients' secrets, by client id: set their values out of band (infra/README.md)."
  value       = { for id, s in aws_secretsmanager_secret.client : id => s.arn }
}
