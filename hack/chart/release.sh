#!/usr/bin/env bash
# The chart's release operations (docs/runbook-canary.md), as thin wrappers around helm:
#   hack/chart/release.sh deploy   BUNDLE_URI [helm args...]   install or upgrade the stable model
#   hack/chart/release.sh canary   BUNDLE_URI WEIGHT           start a canary, or shift its weight
#   hack/chart/release.sh promote                              make the candidate the stable model
#   hack/chart/release.sh rollback [REVISION]                  helm rollback (default: previous)
# RELEASE (default churn) and NAMESPACE (default churn) select the release.
set -euo pipefail
CHART_DIR="$(cd "$(dirname "$0")/../../helm/churn-predictor" && pwd)"
RELEASE="${RELEASE:-churn}"
NAMESPACE="${NAMESPACE:-churn}"
helm_release=(--namespace "$NAMESPACE")

usage() {
	sed -n '2,7p' "$0" >&2
	exit 2
}

current_value() {
	helm get values "$RELEASE" "${helm_release[@]}" --all --output json |
		python3 -c "import json, sys; v = json.load(sys.stdin); print(v$1)"
}

# Waits for the InferenceService(s) of the release to report Ready and for KServe's Deployments to
# run only pods of the current bundle: Ready stays True through a rolling update while pods of the
# previous bundle still answer, and `promote` would move traffic back to them. An arm the upgrade
# removes (canary off) is skipped: it is being deleted, or gone while we wait.
wait_ready() {
	local timeout="${READY_TIMEOUT:-10m}" name deleting isvc bundle deployment
	while read -r name deleting; do
		[[ -n "$name" && -z "$deleting" ]] || continue
		isvc="inferenceservice/$name"
		if ! kubectl wait "${helm_release[@]}" "$isvc" --for=condition=Ready --timeout="$timeout"; then
			kubectl get "${helm_release[@]}" "$isvc" >/dev/null 2>&1 || continue
			return 1
		fi
		bundle="$(kubectl get "${helm_release[@]}" "$isvc" -o jsonpath='{.metadata.annotations.churn-predictor/bundle-uri}')"
		# One Deployment per arm, runtime and transformer in each pod. KServe copies the
		# InferenceService's annotations onto the pod template it rolls out.
		deployment="deployment/$name-predictor"
		kubectl wait "${helm_release[@]}" "$deployment" --timeout="$timeout" \
			--for="jsonpath={.spec.template.metadata.annotations.churn-predictor/bundle-uri}=$bundle"
		kubectl rollout status "${helm_release[@]}" "$deployment" --timeout="$timeout"
		wait_old_pods_gone "$name" "$bundle"
	done < <(kubectl get "${helm_release[@]}" inferenceservice -l "app.kubernetes.io/instance=$RELEASE" \
		-o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.deletionTimestamp}{"\n"}{end}')
}

# A rollout is complete before the pods it replaced have terminated, and a terminating pod can
# still answer through the Gateway: wait until no pod of the arm runs another bundle.
wait_old_pods_gone() {
	local name="$1" bundle="$2" deadline=$((SECONDS + ${OLD_PODS_TIMEOUT_SECONDS:-300})) others
	while :; do
		others="$(kubectl get pods "${helm_release[@]}" -l "serving.kserve.io/inferenceservice=$name" \
			-o jsonpath='{range .items[*]}{.metadata.annotations.churn-predictor/bundle-uri}{"\n"}{end}' |
			{ grep -v -x -F "$bundle" || true; })"
		[[ -n "$others" ]] || return 0
		if ((SECONDS >= deadline)); then
			echo "release.sh: pods of another bundle of $name still exist: $others" >&2
			return 1
		fi
		sleep 2
	done
}

command="${1:-}"
shift || true
case "$command" in
deploy)
	(($# >= 1)) || usage
	bundle="$1"
	shift
	helm upgrade --install "$RELEASE" "$CHART_DIR" "${helm_release[@]}" --reuse-values \
		--set-string "stable.bundleUri=$bundle" "$@"
	wait_ready
	;;
canary)
	(($# == 2)) || usage
	helm upgrade "$RELEASE" "$CHART_DIR" "${helm_release[@]}" --reuse-values \
		--set canary.enabled=true --set-string "canary.bundleUri=$1" --set "canary.weight=$2"
	wait_ready
	;;
promote)
	(($# == 0)) || usage
	candidate="$(current_value "['canary']['bundleUri']")"
	[[ "$(current_value "['canary']['enabled']")" == "True" && -n "$candidate" ]] || {
		echo "promote: release $RELEASE has no canary running" >&2
		exit 1
	}
	echo "promote: stable arm rolls to $candidate while the candidate takes all traffic" >&2
	helm upgrade "$RELEASE" "$CHART_DIR" "${helm_release[@]}" --reuse-values \
		--set canary.weight=100 --set-string "stable.bundleUri=$candidate"
	wait_ready
	echo "promote: traffic back on the stable arm; removing the candidate" >&2
	helm upgrade "$RELEASE" "$CHART_DIR" "${helm_release[@]}" --reuse-values --set canary.enabled=false
	wait_ready
	;;
rollback)
	(($# <= 1)) || usage
	helm rollback "$RELEASE" "$@" "${helm_release[@]}"
	wait_ready
	;;
*) usage ;;
esac
