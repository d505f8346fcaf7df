#!/usr/bin/env bash
# `make e2e`: a kind cluster (hack/k8s/kind-up.sh), the stack's images (hack/e2e/images.sh), the
# stack (hack/e2e/stack-up.sh), the e2e suite (tests/e2e), then the cluster is deleted, also on
# failure. Prints the time of every phase.
#   CHURN_IMAGE_SOURCE=local|upstream   where images come from (lib.sh; docs/e2e.md)
#   E2E_KEEP_CLUSTER=1                  keep the cluster afterwards (`make kind-down` deletes it)
#   PYTEST_ARGS="-k canary -x"          extra pytest arguments
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
E2E_KEEP_CLUSTER="${E2E_KEEP_CLUSTER:-0}"
PYTEST="${PYTEST:-$REPO_DIR/.venv/bin/pytest}"
timings=()
cd "$REPO_DIR"

phase() {
	local name="$1" started=$SECONDS status=0
	shift
	e2e_log "=== $name ==="
	"$@" || status=$?
	timings+=("$(printf '%-8s %5ss  %s' "$name" "$((SECONDS - started))" "$([[ $status == 0 ]] && echo ok || echo "FAILED ($status)")")")
	return "$status"
}

finish() {
	local status=$?
	if [[ "$E2E_KEEP_CLUSTER" == 1 ]]; then
		e2e_log "keeping cluster $KIND_CLUSTER_NAME (E2E_KEEP_CLUSTER=1)"
	else
		phase teardown bash "$REPO_DIR/hack/k8s/kind-down.sh" || true
	fi
	e2e_log "phases (source: $CHURN_IMAGE_SOURCE):"
	printf '  %s\n' "${timings[@]}" >&2
	exit "$status"
}
trap finish EXIT

phase cluster bash "$REPO_DIR/hack/k8s/kind-up.sh"
phase images bash "$E2E_DIR/images.sh"
phase stack bash "$E2E_DIR/stack-up.sh"
# shellcheck disable=SC2086 # PYTEST_ARGS is a list of arguments
phase suite "$PYTEST" "$REPO_DIR/tests/e2e" -v -p no:cacheprovider \
	-o log_cli=true --log-cli-level=INFO ${PYTEST_ARGS:-}
