# Monitoring as code: alert policies on what pages a data engineer, and one dashboard.
# Every policy notifies var.notification_channels. Metric names are Cloud Monitoring's
# (dataflow.googleapis.com, pubsub.googleapis.com); the dead-letter counters are the
# pipeline's own Beam counters, exported by Dataflow as job/user_counter with their name in
# the metric_name label (tests/test_infra_terraform.py checks the pattern against the code).

locals {
  dataflow_job_filter = "resource.type = \"dataflow_job\" AND resource.label.job_name = \"${var.job_name}\""
  # Beam counters that count dead letters: decode.<source>_dead_<stage>, sink.<table>_dead_sink
  # and sink.dead_letters_refused_by_bigquery (transforms/decode.py, warehouse_io.py, bigquery_io.py).
  dead_letter_counters = ".*_dead_(decode|schema|semantic|sink|quality)|dead_letters_refused_by_bigquery"
}

resource "google_monitoring_alert_policy" "system_lag" {
  display_name          = "Churnwatch: Dataflow system lag"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "Elements wait longer than ${var.alert_thresholds.system_lag_seconds} s in the streaming job ${var.job_name}: workers are short or a step is stuck. See the Churnwatch dashboard."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "system_lag above ${var.alert_thresholds.system_lag_seconds} s for 5 minutes"
    condition_threshold {
      filter          = "${local.dataflow_job_filter} AND metric.type = \"dataflow.googleapis.com/job/system_lag\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_thresholds.system_lag_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "data_freshness" {
  display_name          = "Churnwatch: data freshness (watermark age)"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "The data watermark of ${var.job_name} is older than ${var.alert_thresholds.data_freshness_seconds} s: alerts and aggregates are late. A quiet producer also holds the watermark back."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "data_watermark_age above ${var.alert_thresholds.data_freshness_seconds} s for 5 minutes"
    condition_threshold {
      filter          = "${local.dataflow_job_filter} AND metric.type = \"dataflow.googleapis.com/job/data_watermark_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_thresholds.data_freshness_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "job_failed" {
  display_name          = "Churnwatch: Dataflow job failed"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "The streaming job ${var.job_name} failed: nothing is read or written until it is started again (terraform apply)."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "job/is_failed"
    condition_threshold {
      filter          = "${local.dataflow_job_filter} AND metric.type = \"dataflow.googleapis.com/job/is_failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_COUNT_TRUE"
      }
    }
  }
}

# One policy per subscription (the pipeline's two and the notifier's), two conditions each.
resource "google_monitoring_alert_policy" "subscription" {
  for_each = local.streams

  display_name          = "Churnwatch: ${each.value.subscription} backlog"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "The ${each.value.reader} falls behind on ${each.value.subscription}: more than ${var.alert_thresholds.backlog_messages} undelivered messages or one older than ${var.alert_thresholds.oldest_unacked_seconds} s."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "num_undelivered_messages above ${var.alert_thresholds.backlog_messages}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = \"${each.value.subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_thresholds.backlog_messages
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  conditions {
    display_name = "oldest_unacked_message_age above ${var.alert_thresholds.oldest_unacked_seconds} s"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = \"${each.value.subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_thresholds.oldest_unacked_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

# Dead letters: the pipeline's counters (records it could not decode, validate or write) and
# messages Pub/Sub itself gave up on (the dead-letter subscriptions of pubsub.tf).
resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "Churnwatch: dead letters"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "Records end as dead letters: more than ${var.alert_thresholds.dead_letters_per_10_minutes} in 10 minutes in ${var.job_name} (the dead_letters table says why), or messages Pub/Sub moved to a dead-letter subscription."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "pipeline dead-letter counters: more than ${var.alert_thresholds.dead_letters_per_10_minutes} per 10 minutes"
    condition_prometheus_query_language {
      query               = "sum(delta({\"__name__\"=\"dataflow.googleapis.com/job/user_counter\", \"monitored_resource\"=\"dataflow_job\", \"job_name\"=\"${var.job_name}\", \"metric_name\"=~\"${local.dead_letter_counters}\"}[10m])) > ${var.alert_thresholds.dead_letters_per_10_minutes}"
      duration            = "0s"
      evaluation_interval = "60s"
    }
  }

  conditions {
    display_name = "messages on a Pub/Sub dead-letter subscription"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = one_of(${join(", ", [for s in local.streams : "\"${s.subscription}-dead-letter\""])}) AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_dashboard" "churnwatch" {
  dashboard_json = jsonencode({
    displayName = "Churnwatch streaming pipeline"
    mosaicLayout = {
      columns = 12
      tiles = [
        for index, chart in [
          { title = "System lag (s)", filter = "${local.dataflow_job_filter} AND metric.type = \"dataflow.googleapis.com/job/system_lag\"", aligner = "ALIGN_MAX" },
          { title = "Data watermark age (s)", filter = "${local.dataflow_job_filter} AND metric.type = \"dataflow.googleapis.com/job/data_watermark_age\"", aligner = "ALIGN_MAX" },
          { title = "Undelivered messages by subscription", filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\"", aligner = "ALIGN_MAX" },
          { title = "Oldest unacked message age (s)", filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"", aligner = "ALIGN_MAX" },
          { title = "Pipeline counters (valid rows, dead letters, duplicates)", filter = "${local.dataflow_job_filter} AND metric.type = \"dataflow.googleapis.com/job/user_counter\"", aligner = "ALIGN_MEAN" },
          { title = "Elements added per PCollection", filter = "${local.dataflow_job_filter} AND metric.type = \"dataflow.googleapis.com/job/element_count\"", aligner = "ALIGN_RATE" },
          ] : {
          xPos   = (index % 2) * 6
          yPos   = floor(index / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = chart.title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = chart.filter
                    aggregation = {
                      alignmentPeriod  = "60s"
                      perSeriesAligner = chart.aligner
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })
}
