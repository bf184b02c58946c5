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

# Write rows into the warehouse dataset only. A custom role instead of bigquery.dataEditor,
# which could also delete tables and change their schema (tables.delete / tables.update):
# the pipeline reads table metadata and appends rows (streaming inserts or the Storage Write
# API), and a starting job reads the stored rows back (tables.getData, tabledata.list: the
# warm start, churnwatch/warm_start.py). Without jobs.create it cannot run DML either.
resource "google_project_iam_custom_role" "warehouse_writer" {
  role_id     = var.warehouse_writer_role_id
  title       = "Churnwatch warehouse writer"
  description = "Append rows to existing Churnwatch tables and read them back; no table create, delete or schema change."
  permissions = [
    "bigquery.datasets.get",
    "bigquery.tables.get",
    "bigquery.tables.getData",
    "bigquery.tables.list",
    "bigquery.tables.updateData",
  ]
}

resource "google_bigquery_dataset_iam_member" "warehouse_writer" {
  dataset_id = google_bigquery_dataset.warehouse.dataset_id
  role       = google_project_iam_custom_role.warehouse_writer.id
  member     = local.dataflow_member
}

# Two buckets. The template bucket holds the Flex Template spec (written by `make template`
# with your own credentials) and the code the launcher stages: the worker may read and add
# objects there, never replace or delete one (objectCreator has no storage.objects.delete,
# which overwriting needs). Temp files live in a separate bucket where the worker is admin.
resource "google_storage_bucket_iam_member" "template_reader" {
  bucket = google_storage_bucket.dataflow.name
  role   = "roles/storage.objectViewer"
  member = local.dataflow_member
}

resource "google_storage_bucket_iam_member" "staging_creator" {
  bucket = google_storage_bucket.dataflow.name
  role   = "roles/storage.objectCreator"
  member = local.dataflow_member
}

resource "google_storage_bucket_iam_member" "temp_objects" {
  bucket = google_storage_bucket.temp.name
  role   = "roles/storage.objectAdmin"
  member = local.dataflow_member
}

# storage.buckets.get on both buckets (Beam checks the temp and staging locations' buckets).
resource "google_storage_bucket_iam_member" "dataflow_bucket_reader" {
  for_each = {
    template = google_storage_bucket.dataflow.name
    temp     = google_storage_bucket.temp.name
  }

  bucket = each.value
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
