#!/usr/bin/env bash
# Deletes the kind cluster created by hack/k8s/kind-up.sh (no-op if it does not exist).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-churn}"
KIND="$K8S_BIN_DIR/kind"
[[ -x "$KIND" ]] || KIND="$(command -v kind)" || { k8s_log "no kind binary: nothing to delete"; exit 0; }
"$KIND" delete cluster --name "$KIND_CLUSTER_NAME"
