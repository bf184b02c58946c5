# The template bucket (Flex Template spec and staged packages) and a separate temp bucket, so
# that the worker's objectAdmin on temp files does not cover the spec (iam.tf).

resource "google_storage_bucket" "dataflow" {
  # checkov:skip=CKV_GCP_62: access logs for a scratch bucket that only the Dataflow service account touches would be noise; Cloud Audit Logs cover it.
  name          = "${var.project}-churnwatch-dataflow"
  location      = var.region
  storage_class = "STANDARD"
  labels        = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Staged packages are per job: drop them (and old versions) after a week.
  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["staging/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket" "temp" {
  # checkov:skip=CKV_GCP_62: access logs for a scratch bucket that only the Dataflow service account touches would be noise; Cloud Audit Logs cover it.
  name          = "${var.project}-churnwatch-temp"
  location      = var.region
  storage_class = "STANDARD"
  labels        = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Temp files are scratch: drop them, and their old versions, after a week.
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
    }
    action {
      type = "Delete"
    }
  }
}

# Docker repository for the Flex Template image (`make template` pushes here).
resource "google_artifact_registry_repository" "churnwatch" {
  # checkov:skip=CKV_GCP_84: Google-managed encryption is enough for a container image without secrets; CMEK is out of scope.
  location      = var.region
  repository_id = "churnwatch"
  description   = "Churnwatch Dataflow Flex Template images."
  format        = "DOCKER"
  labels        = var.labels
}
