#!/usr/bin/env bash
# Fetches the upstream YAML the chart is validated against, at the versions pinned in
# hack/versions.env, into $CHURN_CACHE/upstream (the layout CI reads from ../shared/upstream):
#   kserve-<v>/config, gateway-api-<v>/config/crd/standard, prometheus-operator-<v>/example/{prometheus-operator-crd,rbac}
# The chart tests use it when ../shared/upstream is absent (or set CHURN_UPSTREAM_DIR).
set -euo pipefail
HACK_DIR="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=SCRIPTDIR/../versions.env
source "$HACK_DIR/versions.env"
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
dest="${CHURN_UPSTREAM_DIR:-$CHURN_CACHE/upstream}"
# Overridable so the script can be exercised against local archives (file://...).
ARCHIVE_BASE_URL="${ARCHIVE_BASE_URL:-https://github.com}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# fetch OWNER/REPO TAG TARGET_DIR PATH_IN_REPO...
fetch() {
	local repo="$1" tag="$2" target="$3" archive="$work/${1//\//_}.tar.gz" top
	shift 3
	if [[ -d "$target" ]]; then
		echo "fetch-schemas: $target exists, skipping" >&2
		return
	fi
	echo "fetch-schemas: $repo $tag" >&2
	curl --fail --silent --show-error --location --retry 3 -o "$archive" \
		"$ARCHIVE_BASE_URL/$repo/archive/refs/tags/$tag.tar.gz"
	# Listing to a file: `tar | head` would die of SIGPIPE under pipefail.
	tar -tzf "$archive" >"$work/listing"
	top="$(head -n 1 "$work/listing" | cut -d/ -f1)"
	mkdir -p "$work/x" "$target.tmp"
	tar -xzf "$archive" -C "$work/x" "${@/#/$top/}"
	for path in "$@"; do
		mkdir -p "$target.tmp/$(dirname "$path")"
		mv "$work/x/$top/$path" "$target.tmp/$path"
	done
	mv "$target.tmp" "$target"
}

fetch kserve/kserve "$KSERVE_VERSION" "$dest/kserve-$KSERVE_VERSION" config
fetch kubernetes-sigs/gateway-api "$GATEWAY_API_VERSION" "$dest/gateway-api-$GATEWAY_API_VERSION" \
	config/crd/standard
fetch prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" \
	"$dest/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" \
	example/prometheus-operator-crd example/rbac
echo "fetch-schemas: done; tests read $dest (export CHURN_UPSTREAM_DIR=$dest to force it)" >&2
