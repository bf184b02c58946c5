variable "project" {
  type        = string
  description = "GCP project id that holds every Churnwatch resource."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a GCP project id: 6-30 chars, lowercase letters, digits, hyphens."
  }
}

variable "region" {
  type        = string
  description = "Region for the Dataflow job, the bucket, the image repository and Pub/Sub message storage."
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like europe-west1 or us-central1."
  }
}

variable "dataset" {
  type        = string
  description = "BigQuery dataset id for the warehouse tables (the pipeline's --warehouse bigquery://PROJECT/DATASET)."
  default     = "churnwatch"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]{0,1023}$", var.dataset))
    error_message = "dataset must be letters, digits and underscores (max 1024), not starting with a digit."
  }
}

variable "dataset_location" {
  type        = string
  description = "BigQuery dataset location (a multi-region such as EU, or a region; keep it near var.region)."
  default     = "EU"
}

variable "service_account_name" {
  type        = string
  description = "Account id (the part before @) of the Dataflow worker service account."
  default     = "churnwatch-dataflow"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.service_account_name))
    error_message = "service_account_name must be 6-30 chars: lowercase letters, digits, hyphens."
  }
}

variable "machine_type" {
  type        = string
  description = "Compute Engine machine type of the Dataflow workers."
  default     = "n2-standard-2"

  validation {
    condition     = can(regex("^[a-z0-9]+-[a-z]+(-[0-9]+)?$", var.machine_type))
    error_message = "machine_type must be a machine type name such as n2-standard-2."
  }
}

variable "max_workers" {
  type        = number
  description = "Upper bound for Dataflow autoscaling (1-1000)."
  default     = 5

  validation {
    condition     = var.max_workers >= 1 && var.max_workers <= 1000 && floor(var.max_workers) == var.max_workers
    error_message = "max_workers must be a whole number within 1..1000."
  }
}

variable "template_gcs_path" {
  type        = string
  description = "gs:// path of the Flex Template spec that `make template` uploads; null to create the infrastructure without starting the job."
  default     = null

  validation {
    condition     = var.template_gcs_path == null || can(regex("^gs://[a-z0-9][-_.a-z0-9]{1,221}[a-z0-9]/.+\\.json$", var.template_gcs_path))
    error_message = "template_gcs_path must be gs://BUCKET/path/to/spec.json."
  }
}

variable "job_name" {
  type        = string
  description = "Dataflow job name of the streaming pipeline."
  default     = "churnwatch-streaming"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,62}[a-z0-9])?$", var.job_name))
    error_message = "job_name must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "subnetwork" {
  type        = string
  description = "Subnetwork for the workers (regions/REGION/subnetworks/NAME). Workers have no public IP, so it needs Private Google Access; null uses the default network."
  default     = null
}

variable "day_seconds" {
  type        = number
  description = "Pipeline flag --day_seconds: length of one customer day in event-time seconds (86400 in production)."
  default     = 86400

  validation {
    condition     = var.day_seconds > 0
    error_message = "day_seconds must be positive."
  }
}

variable "message_retention_duration" {
  type        = string
  description = "How long subscriptions keep unacknowledged messages (seconds with an s suffix, max 604800s = 7 days)."
  default     = "604800s"

  validation {
    # && does not short-circuit in Terraform: try() keeps a malformed value from erroring here.
    condition = try(
      tonumber(regex("^([0-9]+)s$", var.message_retention_duration)[0]) >= 600 &&
      tonumber(regex("^([0-9]+)s$", var.message_retention_duration)[0]) <= 604800,
      false
    )
    error_message = "message_retention_duration must be between 600s and 604800s."
  }
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of one message before Pub/Sub moves it to the subscription's dead-letter topic (5-100)."
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be within 5..100 (Pub/Sub's limits)."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default     = { app = "churnwatch" }
}

variable "warehouse_writer_role_id" {
  type        = string
  description = "Id of the custom role that lets the pipeline append rows to the warehouse tables (iam.tf)."
  default     = "churnwatchWarehouseWriter"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.]{3,64}$", var.warehouse_writer_role_id))
    error_message = "warehouse_writer_role_id must be 3-64 letters, digits, underscores or dots."
  }
}

variable "notifier_service_account_name" {
  type        = string
  description = "Account id of the notifier's service account (`churnwatch notify`)."
  default     = "churnwatch-notifier"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.notifier_service_account_name))
    error_message = "notifier_service_account_name must be 6-30 chars: lowercase letters, digits, hyphens."
  }
}

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/ID) that every alert policy pages; empty: incidents only show in the console."
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "notification_channels must be ids like projects/P/notificationChannels/123."
  }
}

variable "alert_thresholds" {
  type = object({
    system_lag_seconds          = number
    data_freshness_seconds      = number
    backlog_messages            = number
    oldest_unacked_seconds      = number
    dead_letters_per_10_minutes = number
  })
  description = "When monitoring.tf pages: Dataflow system lag and data watermark age, subscription backlog and oldest unacked message age, pipeline dead letters per 10 minutes."
  default = {
    system_lag_seconds          = 300
    data_freshness_seconds      = 900
    backlog_messages            = 10000
    oldest_unacked_seconds      = 900
    dead_letters_per_10_minutes = 10
  }

  validation {
    condition     = alltrue([for v in values(var.alert_thresholds) : v > 0])
    error_message = "every alert threshold must be positive."
  }
}
