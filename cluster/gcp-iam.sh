#!/usr/bin/env bash
# Creates the worker service account cluster-gcp.yaml names, once per GCP project (idempotent):
#   orchestrate-worker@PROJECT.iam.gserviceaccount.com  with roles/storage.objectUser on the
#   bucket only (checkpoints, results, --data-dir gs://). Ray's own head account
#   (ray-autoscaler-sa-v1) gets roles/iam.serviceAccountUser on the project from `ray up`, which
#   lets the head start workers under this account.
# Usage: bash cluster/gcp-iam.sh PROJECT BUCKET      (needs gcloud, logged in)
set -euo pipefail
PROJECT=${1:?usage: bash cluster/gcp-iam.sh PROJECT BUCKET}
BUCKET=${2:?usage: bash cluster/gcp-iam.sh PROJECT BUCKET}
ACCOUNT=orchestrate-worker@$PROJECT.iam.gserviceaccount.com
gcloud iam service-accounts describe "$ACCOUNT" --project "$PROJECT" >/dev/null 2>&1 ||
  gcloud iam service-accounts create orchestrate-worker --project "$PROJECT" \
    --display-name "orchestrate sweep workers: storage bucket only"
gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
  --member "serviceAccount:$ACCOUNT" --role roles/storage.objectUser >/dev/null
echo "service account $ACCOUNT can read and write gs://$BUCKET"
