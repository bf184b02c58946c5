# Secrets of the notifier (`churnwatch notify`): one Secret Manager secret per webhook variable
# of the routing policy, plus the SMTP password. The list is read from
# churnwatch/policy/routing.yaml, never restated here. Terraform creates the secrets, not their
# values: add a version out of band (`gcloud secrets versions add ID --data-file=-`), so no
# secret ever sits in Terraform state. The notifier gets each variable as a reference,
# sm://projects/P/secrets/ID/versions/latest (output notifier_environment; churnwatch/secrets.py).
# The Dataflow pipeline holds no secrets: it reaches Pub/Sub and BigQuery as its service account.

locals {
  routing_policy = yamldecode(file("${path.module}/../../churnwatch/policy/routing.yaml"))
  notifier_secrets = merge(
    {
      for owner in values(local.routing_policy.owners) :
      owner.channel.webhook_env => lower(replace(owner.channel.webhook_env, "_", "-"))
      if can(owner.channel.webhook_env)
    },
    { CHURNWATCH_SMTP_PASSWORD = "churnwatch-smtp-password" },
  )
  notifier_member = "serviceAccount:${google_service_account.notifier.email}"
}

resource "google_service_account" "notifier" {
  account_id   = var.notifier_service_account_name
  display_name = "Churnwatch notifier"
  description  = "Runs churnwatch notify: pulls churn alerts and reads the delivery secrets."
}

resource "google_secret_manager_secret" "notifier" {
  for_each = local.notifier_secrets

  secret_id = each.value
  labels    = var.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }
}

resource "google_secret_manager_secret_iam_member" "notifier_accessor" {
  for_each = local.notifier_secrets

  secret_id = google_secret_manager_secret.notifier[each.key].id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.notifier_member
}

# The notifier pulls, acks and extends leases on the alerts subscription only.
resource "google_pubsub_subscription_iam_member" "notifier_subscriber" {
  subscription = google_pubsub_subscription.stream["alerts"].name
  role         = "roles/pubsub.subscriber"
  member       = local.notifier_member
}
