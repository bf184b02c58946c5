output "dataflow_service_account" {
  description = "Email of the Dataflow worker service account (pass to --service_account_email)."
  value       = google_service_account.dataflow.email
}

output "subscriptions" {
  description = "Full subscription paths by stream (feedback, customer, alerts)."
  value       = { for key, sub in google_pubsub_subscription.stream : key => sub.id }
}

output "topics" {
  description = "Full topic paths by stream (feedback, customer, alerts)."
  value       = { for key, topic in google_pubsub_topic.stream : key => topic.id }
}

output "dead_letter_subscriptions" {
  description = "Subscriptions that keep each stream's dead letters, by stream."
  value       = { for key, sub in google_pubsub_subscription.dead_letter : key => sub.id }
}

output "warehouse" {
  description = "The pipeline's --warehouse value."
  value       = "bigquery://${var.project}/${google_bigquery_dataset.warehouse.dataset_id}"
}

output "dataflow_bucket" {
  description = "Template and staging bucket URL; `make template TEMPLATE_BUCKET=<name>` uploads the spec here."
  value       = google_storage_bucket.dataflow.url
}

output "temp_bucket" {
  description = "Dataflow temp bucket URL (the job's temp_location)."
  value       = google_storage_bucket.temp.url
}

output "notifier_service_account" {
  description = "Email of the notifier's service account (pulls alerts, reads its secrets)."
  value       = google_service_account.notifier.email
}

output "notifier_environment" {
  description = "Environment for `churnwatch notify`: each secret variable as its Secret Manager reference."
  value       = { for env, secret in google_secret_manager_secret.notifier : env => "sm://${secret.id}/versions/latest" }
}

output "dashboard" {
  description = "Cloud Monitoring dashboard id of the pipeline."
  value       = google_monitoring_dashboard.churnwatch.id
}

output "image_repository" {
  description = "Artifact Registry path for the Flex Template image."
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.churnwatch.repository_id}"
}

output "job_id" {
  description = "Dataflow job id of the streaming pipeline (null when template_gcs_path is unset)."
  value       = one(google_dataflow_flex_template_job.streaming[*].job_id)
}
