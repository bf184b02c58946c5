# Pub/Sub: one topic per stream with its Avro schema (read straight from schemas/*.avsc, never a
# copy), the subscription its reader uses, and a dead-letter topic + subscription per reader.
# Names mirror churnwatch/topology.py TOPICS; tests/test_infra_terraform.py checks they agree.

locals {
  streams = {
    feedback = {
      topic        = "feedback-events"
      subscription = "feedback-events-churnwatch"
      avsc         = "feedback_event.avsc"
      record       = "FeedbackEvent"
      reader       = "pipeline"
    }
    customer = {
      topic        = "customer-events"
      subscription = "customer-events-churnwatch"
      avsc         = "customer_event.avsc"
      record       = "CustomerEvent"
      reader       = "pipeline"
    }
    alerts = {
      topic        = "churn-alerts"
      subscription = "churn-alerts-notifier"
      avsc         = "churn_alert.avsc"
      record       = "ChurnAlert"
      reader       = "notifier"
    }
  }

  # The subscriptions the Dataflow pipeline reads (the notifier reads the alerts one).
  pipeline_streams = { for key, s in local.streams : key => s if s.reader == "pipeline" }

  # The Pub/Sub service agent moves undeliverable messages to dead-letter topics.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_schema" "stream" {
  for_each = local.streams

  name       = each.value.record
  type       = "AVRO"
  definition = file("${path.module}/../../schemas/${each.value.avsc}")
}

resource "google_pubsub_topic" "stream" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption is enough for these event streams; CMEK is out of scope.
  for_each = local.streams

  name   = each.value.topic
  labels = var.labels

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }

  # Producers publish Avro binary datums (churnwatch/wire.py); Pub/Sub rejects anything else.
  schema_settings {
    schema   = google_pubsub_schema.stream[each.key].id
    encoding = "BINARY"
  }
}

resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption is enough for dead letters of these streams; CMEK is out of scope.
  for_each = local.streams

  name   = "${each.value.subscription}-dead-letter"
  labels = var.labels

  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }
}

resource "google_pubsub_subscription" "stream" {
  for_each = local.streams

  name   = each.value.subscription
  topic  = google_pubsub_topic.stream[each.key].id
  labels = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = var.message_retention_duration
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expires, even while the reader is stopped
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # The service agent must be able to forward and ack before the first dead letter.
  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# Messages published to a topic without subscriptions are lost: keep every dead letter.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.streams

  name   = "${each.value.subscription}-dead-letter"
  topic  = google_pubsub_topic.dead_letter[each.key].id
  labels = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}
