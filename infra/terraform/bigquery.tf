# Warehouse dataset and tables. The table list, schemas, partitioning, clustering and primary keys
# come from generated/bigquery_tables.json, written from schemas/*.avsc by `churnwatch
# infra-tables` (checked in; a test keeps it current). Nothing here restates a column.

locals {
  bigquery_tables = jsondecode(file("${path.module}/generated/bigquery_tables.json"))
  # One view per keyed table: one row per primary key (the latest pane per window).
  current_views = {
    for name, table in local.bigquery_tables : table.current_view.name => table.current_view
    if table.current_view != null
  }
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

# Append-only tables keep every pane and every redelivery; BI reads these views instead
# (docs/deploy.md). The SQL is generated with the tables; Terraform fills in where they live.
resource "google_bigquery_table" "current_view" {
  # checkov:skip=CKV_GCP_80: a view stores no data; the tables it reads are covered above.
  for_each = local.current_views

  dataset_id          = google_bigquery_dataset.warehouse.dataset_id
  table_id            = each.key
  description         = each.value.description
  deletion_protection = true
  labels              = var.labels

  view {
    query          = replace(replace(each.value.query, "{project}", var.project), "{dataset}", google_bigquery_dataset.warehouse.dataset_id)
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.table]
}
