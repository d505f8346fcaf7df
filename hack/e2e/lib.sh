# Shared by the hack/e2e scripts (sourced, not run): versions, paths, the one switch between a
# cluster built from local images and one from registry images, and small wait helpers.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this file.
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$E2E_DIR/../.." && pwd)"
# shellcheck source=SCRIPTDIR/../versions.env
source "$REPO_DIR/hack/versions.env"
export CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
export PATH="$CHURN_CACHE/bin:$PATH"
export CHURN_IMAGE_SOURCE="${CHURN_IMAGE_SOURCE:-local}"
export KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-churn}"
KUBE_CONTEXT="kind-$KIND_CLUSTER_NAME"

case "$CHURN_IMAGE_SOURCE" in
local | upstream) ;;
*)
	echo "CHURN_IMAGE_SOURCE must be local or upstream, not '$CHURN_IMAGE_SOURCE'" >&2
	exit 2
	;;
esac

e2e_log() { printf '[%s %s] %s\n' "$(basename "$0" .sh)" "$(date -u +%H:%M:%S)" "$*" >&2; }

kubectl() { command kubectl --context "$KUBE_CONTEXT" "$@"; }

# Server-side apply: the upstream CRDs are too large for the client-side last-applied annotation,
# and re-running the install must converge instead of conflicting with our own earlier apply.
apply() { kubectl apply --server-side --force-conflicts --field-manager churn-e2e "$@" >/dev/null; }

# shellcheck source=SCRIPTDIR/../upstream.sh
source "$REPO_DIR/hack/upstream.sh"
# Registry users may fetch the pinned sources on demand; offline machines must have them already.
upstream_or_fetch() {
	if [[ "$CHURN_IMAGE_SOURCE" == upstream ]] && ! upstream_dir >/dev/null 2>&1; then
		bash "$REPO_DIR/hack/fetch-upstream.sh"
	fi
	upstream_dir
}

# Waits until the named Deployments in NAMESPACE (default: all of them) are Available.
wait_deployments() {
	local namespace="$1"
	shift
	local -a targets=(deployment --all)
	(($#)) && targets=("${@/#/deployment/}")
	e2e_log "waiting for ${targets[*]} in $namespace to be Available"
	kubectl -n "$namespace" wait --for=condition=Available "${targets[@]}" --timeout="${WAIT_TIMEOUT:-600s}" >/dev/null ||
		{
			dump_namespace "$namespace"
			return 1
		}
}

# Diagnostics for a namespace that did not come up: what runs, recent events, unready pods' state and logs.
dump_namespace() {
	local namespace="$1" pod
	e2e_log "--- diagnostics for namespace $namespace ---"
	kubectl -n "$namespace" get pods,deployments,jobs -o wide >&2 || true
	kubectl -n "$namespace" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 30 >&2 || true
	for pod in $(kubectl -n "$namespace" get pods -o json | jq -r '.items[]
			| select(.status.phase != "Succeeded")
			| select(any(.status.conditions[]?; .type == "Ready" and .status == "True") | not)
			| .metadata.name'); do
		kubectl -n "$namespace" describe pod "$pod" | tail -n 25 >&2 || true
		kubectl -n "$namespace" logs "$pod" --all-containers --tail=40 >&2 || true
	done
}
