# The streaming job, started from the Flex Template spec that `make template` uploads.
# Without var.template_gcs_path only the infrastructure is created (count = 0).

resource "google_dataflow_flex_template_job" "streaming" {
  # checkov 3.3 has no checks for flex template jobs (CKV_GCP_90/94 cover google_dataflow_job):
  # workers still get private IPs only, as CKV_GCP_94 asks.
  provider = google-beta
  count    = var.template_gcs_path == null ? 0 : 1

  name                    = var.job_name
  region                  = var.region
  container_spec_gcs_path = var.template_gcs_path
  service_account_email   = google_service_account.dataflow.email
  enable_streaming_engine = true
  machine_type            = var.machine_type
  max_workers             = var.max_workers
  temp_location           = "${google_storage_bucket.temp.url}/temp"
  staging_location        = "${google_storage_bucket.dataflow.url}/staging"
  ip_configuration        = "WORKER_IP_PRIVATE"
  subnetwork              = var.subnetwork
  on_delete               = "drain"
  labels                  = var.labels

  # Keys are ChurnwatchOptions flags declared in infra/flex-template/metadata.json.
  parameters = {
    feedback_subscription = google_pubsub_subscription.stream["feedback"].id
    customer_subscription = google_pubsub_subscription.stream["customer"].id
    warehouse             = "bigquery://${var.project}/${google_bigquery_dataset.warehouse.dataset_id}"
    alerts_topic          = google_pubsub_topic.stream["alerts"].id
    day_seconds           = tostring(var.day_seconds)
    pubsub_read           = "native"
  }

  depends_on = [
    google_project_iam_member.dataflow_worker,
    google_pubsub_subscription_iam_member.pipeline_subscriber,
    google_pubsub_subscription_iam_member.pipeline_viewer,
    google_pubsub_topic_iam_member.alerts_publisher,
    google_bigquery_dataset_iam_member.warehouse_writer,
    google_storage_bucket_iam_member.template_reader,
    google_storage_bucket_iam_member.staging_creator,
    google_storage_bucket_iam_member.temp_objects,
    google_storage_bucket_iam_member.dataflow_bucket_reader,
    google_artifact_registry_repository_iam_member.dataflow_image_reader,
    google_bigquery_table.table,
  ]
}
