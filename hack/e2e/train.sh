#!/usr/bin/env bash
# `make train`: one in-cluster training run (manifests/training) on the stack of stack-up.sh.
# Replaces the previous Job of that name, waits for it and prints the CLI's JSON summary
# (bundle_uri, storage_uri, model_version, metrics) on stdout; progress and logs go to stderr.
#   TRAIN_TIMEOUT   how long to wait (default 20m)
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
NAMESPACE=churn-system
JOB=churn-training

kubectl -n "$NAMESPACE" delete job "$JOB" --ignore-not-found --wait >/dev/null
kubectl apply -k "$REPO_DIR/manifests/training" >/dev/null
e2e_log "job/$JOB started; waiting (up to ${TRAIN_TIMEOUT:-20m})"
# Complete or Failed, whichever comes first; the Job's status says which.
kubectl -n "$NAMESPACE" wait "job/$JOB" --for=condition=Complete --timeout="${TRAIN_TIMEOUT:-20m}" >/dev/null &
complete=$!
kubectl -n "$NAMESPACE" wait "job/$JOB" --for=condition=Failed --timeout="${TRAIN_TIMEOUT:-20m}" >/dev/null &
failed=$!
wait -n "$complete" "$failed" || true
kill "$complete" "$failed" 2>/dev/null || true
if [[ "$(kubectl -n "$NAMESPACE" get job "$JOB" -o jsonpath='{.status.succeeded}')" != 1 ]]; then
	e2e_log "job/$JOB did not succeed:"
	kubectl -n "$NAMESPACE" logs "job/$JOB" --all-containers --tail=60 >&2 || true
	dump_namespace "$NAMESPACE"
	exit 1
fi
# The CLI writes its JSON summary to stdout and its progress to stderr; the container log holds both.
kubectl -n "$NAMESPACE" logs "job/$JOB" -c train | sed -n '/^{$/,/^}$/p'
