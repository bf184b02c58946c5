# Warehouse dataset and tables. The table list, schemas, partitioning, clustering and primary keys
# come from generated/bigquery_tables.json, written from schemas/*.avsc by `churnwatch
# infra-tables` (checked in; a test keeps it current). Nothing here restates a column.

locals {
  bigquery_tables = jsondecode(file("${path.module}/generated/bigquery_tables.json"))
}

resource "google_bigquery_dataset" "warehouse" {
  # checkov:skip=CKV_GCP_81: Google-managed encryption is enough for this warehouse; CMEK is out of scope.
  dataset_id  = var.dataset
  location    = var.dataset_location
  description = "Churnwatch warehouse: events, dead letters, churn alerts and feedback aggregates."
  labels      = var.labels

  delete_contents_on_destroy = false
}

resource "google_bigquery_table" "table" {
  # checkov:skip=CKV_GCP_80: Google-managed encryption is enough for these tables; CMEK is out of scope.
  for_each = local.bigquery_tables

  dataset_id          = google_bigquery_dataset.warehouse.dataset_id
  table_id            = each.key
  description         = each.value.description
  schema              = jsonencode(each.value.schema)
  clustering          = length(each.value.clustering) > 0 ? each.value.clustering : null
  deletion_protection = true
  labels              = var.labels

  dynamic "time_partitioning" {
    for_each = each.value.time_partitioning == null ? [] : [each.value.time_partitioning]
    content {
      type  = time_partitioning.value.type
      field = time_partitioning.value.field
    }
  }

  # Informational (BigQuery does not enforce it); lets the optimizer and readers know the key.
  dynamic "table_constraints" {
    for_each = length(each.value.primary_key) > 0 ? [each.value.primary_key] : []
    content {
      primary_key {
        columns = table_constraints.value
      }
    }
  }
}
