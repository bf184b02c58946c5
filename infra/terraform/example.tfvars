# Example values: copy to terraform.tfvars and edit. The tests run checkov with this file so the
# Dataflow job (created only when template_gcs_path is set) is checked too.
project           = "churnwatch-example"
region            = "europe-west1"
dataset           = "churnwatch"
template_gcs_path = "gs://churnwatch-example-churnwatch-dataflow/templates/churnwatch.json"
