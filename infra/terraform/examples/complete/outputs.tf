output "secure_endpoint" {
  description = "Agents with a Keycloak token or gateway API key: <this>:4317 (gRPC) / https://<this>:4318."
  value       = module.nlb.secure_dns_name
}

output "insecure_endpoint" {
  description = "Internal, token-less: <this>:14317 / http://<this>:14318, from the named sources only."
  value       = module.nlb.insecure_dns_name
}

output "secret_arns" {
  description = "Put a value into each (aws secretsmanager put-secret-value), then deploy."
  value       = module.gateway.secret_arns
}

output "oidc_issuer" {
  value = local.oidc_issuer
}

output "api_keys_admin_policy_json" {
  description = "Attach to the role of whoever runs `otlp-gateway keys create|revoke` (empty without an S3 keys object)."
  value       = module.gateway.api_keys_admin_policy_json
}
