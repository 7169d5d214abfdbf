#!/usr/bin/env bash
# Creates the two instance profiles cluster.yaml names, once per AWS account (idempotent):
#   orchestrate-head    EC2 rights for Ray's autoscaler (AWS managed AmazonEC2FullAccess, as
#                       Ray's own default head role), ssm:GetParameters for the image alias,
#                       iam:PassRole for the worker role only, read/write on the bucket only.
#   orchestrate-worker  read/write on the bucket only (checkpoints, results, --data-dir s3://).
# Usage: bash cluster/aws-iam.sh BUCKET        (the bucket of ORCHESTRATE_STORAGE; needs the aws CLI)
set -euo pipefail
BUCKET=${1:?usage: bash cluster/aws-iam.sh BUCKET}
TRUST='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
BUCKET_RIGHTS='{"Effect":"Allow","Action":["s3:ListBucket","s3:GetBucketLocation"],"Resource":"arn:aws:s3:::'$BUCKET'"},
  {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:AbortMultipartUpload"],"Resource":"arn:aws:s3:::'$BUCKET'/*"}'

make_profile() {  # name, inline policy document
  aws iam get-role --role-name "$1" >/dev/null 2>&1 ||
    aws iam create-role --role-name "$1" --assume-role-policy-document "$TRUST" >/dev/null
  aws iam put-role-policy --role-name "$1" --policy-name "$1" --policy-document "$2"
  aws iam get-instance-profile --instance-profile-name "$1" >/dev/null 2>&1 || {
    aws iam create-instance-profile --instance-profile-name "$1" >/dev/null
    aws iam add-role-to-instance-profile --instance-profile-name "$1" --role-name "$1"; }
}

make_profile orchestrate-worker '{"Version":"2012-10-17","Statement":['"$BUCKET_RIGHTS"']}'
make_profile orchestrate-head '{"Version":"2012-10-17","Statement":['"$BUCKET_RIGHTS"',
  {"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::*:role/orchestrate-worker"},
  {"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:*::parameter/aws/service/deeplearning/*"}]}'
aws iam attach-role-policy --role-name orchestrate-head --policy-arn arn:aws:iam::aws:policy/AmazonEC2FullAccess
echo "instance profiles orchestrate-head and orchestrate-worker ready for bucket $BUCKET"
