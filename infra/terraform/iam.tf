# Least privilege: the Dataflow worker service account gets project-level roles/dataflow.worker
# (Dataflow requires it) and everything else on single resources only.

resource "google_service_account" "dataflow" {
  account_id   = var.service_account_name
  display_name = "Churnwatch Dataflow worker"
  description  = "Runs the Churnwatch Flex Template launcher and streaming workers."
}

locals {
  dataflow_member = "serviceAccount:${google_service_account.dataflow.email}"
}

resource "google_project_iam_member" "dataflow_worker" {
  project = var.project
  role    = "roles/dataflow.worker"
  member  = local.dataflow_member
}

# Read the two input subscriptions. Viewer adds subscriptions.get, which the Dataflow
# Pub/Sub source uses for the subscription's metadata and backlog.
resource "google_pubsub_subscription_iam_member" "pipeline_subscriber" {
  for_each = local.pipeline_streams

  subscription = google_pubsub_subscription.stream[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.dataflow_member
}

resource "google_pubsub_subscription_iam_member" "pipeline_viewer" {
  for_each = local.pipeline_streams

  subscription = google_pubsub_subscription.stream[each.key].name
  role         = "roles/pubsub.viewer"
  member       = local.dataflow_member
}

# Publish churn alerts (--alerts_topic) and nothing else.
resource "google_pubsub_topic_iam_member" "alerts_publisher" {
  topic  = google_pubsub_topic.stream["alerts"].name
  role   = "roles/pubsub.publisher"
  member = local.dataflow_member
}

# Write rows into the warehouse dataset only.
resource "google_bigquery_dataset_iam_member" "warehouse_editor" {
  dataset_id = google_bigquery_dataset.warehouse.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.dataflow_member
}

# Temp/staging files and the template spec live in this bucket only.
resource "google_storage_bucket_iam_member" "dataflow_objects" {
  bucket = google_storage_bucket.dataflow.name
  role   = "roles/storage.objectAdmin"
  member = local.dataflow_member
}

# storage.buckets.get on this bucket (Beam checks the temp location's bucket).
resource "google_storage_bucket_iam_member" "dataflow_bucket_reader" {
  bucket = google_storage_bucket.dataflow.name
  role   = "roles/storage.legacyBucketReader"
  member = local.dataflow_member
}

# The launcher VM pulls the Flex Template image.
resource "google_artifact_registry_repository_iam_member" "dataflow_image_reader" {
  location   = google_artifact_registry_repository.churnwatch.location
  repository = google_artifact_registry_repository.churnwatch.name
  role       = "roles/artifactregistry.reader"
  member     = local.dataflow_member
}

# Dead lettering is done by the Pub/Sub service agent: it publishes to the dead-letter topic
# and acks the message on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.streams

  topic  = google_pubsub_topic.dead_letter[each.key].name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_source_subscriber" {
  for_each = local.streams

  subscription = google_pubsub_subscription.stream[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
