output "target_group_arns" {
  description = "Target group ARN by key: secure-grpc, secure-http, insecure-grpc, insecure-http."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.arn }
}

output "target_group_ports" {
  value = { for k, v in local.target_groups : k => v.port }
}

output "lb_security_group_ids" {
  description = "Security groups of the two NLBs; the tasks admit traffic from these only."
  value       = [aws_security_group.secure_lb.id, aws_security_group.insecure_lb.id]
}

output "secure_dns_name" {
  value = aws_lb.secure.dns_name
}

output "insecure_dns_name" {
  value = aws_lb.insecure.dns_name
}
