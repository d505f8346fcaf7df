#!/usr/bin/env bash
# Fetches the pinned upstream sources (hack/versions.env) from their GitHub release tags into
# $CHURN_CACHE/upstream, the layout offline machines read from ../shared/upstream:
#   kserve-<v>/config                       install YAML, CRDs and runtimes (chart tests, e2e stack)
#   kserve-<v>/python/sklearnserver         KServe's sklearn runtime (hack/images/build.sh kserve-sklearnserver)
#   kserve-<v>/python/{sklearn.Dockerfile,LICENSE}
#   gateway-api-<v>/config/crd/standard
#   prometheus-operator-<v>/example/{prometheus-operator-crd,rbac}
# Paths already present are skipped. Set CHURN_UPSTREAM_DIR to write elsewhere.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$HACK_DIR/versions.env"
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
dest="${CHURN_UPSTREAM_DIR:-$CHURN_CACHE/upstream}"
# Overridable so the script can be exercised against local archives (file://...).
ARCHIVE_BASE_URL="${ARCHIVE_BASE_URL:-https://github.com}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# fetch OWNER/REPO TAG TARGET_DIR "PATH_IN_REPO[=PATH_IN_TARGET]"...
fetch() {
	local repo="$1" tag="$2" target="$3" archive="$work/${1//\//_}.tar.gz" top spec from to
	shift 3
	local -a wanted=() members=()
	for spec in "$@"; do
		[[ -e "$target/${spec#*=}" ]] && continue
		wanted+=("$spec")
		members+=("${spec%%=*}")
	done
	if ((${#wanted[@]} == 0)); then
		echo "fetch-upstream: $repo $tag already in $target" >&2
		return
	fi
	echo "fetch-upstream: $repo $tag: ${members[*]}" >&2
	curl --fail --silent --show-error --location --retry 3 -o "$archive" \
		"$ARCHIVE_BASE_URL/$repo/archive/refs/tags/$tag.tar.gz"
	# Listing to a file: `tar | head` would die of SIGPIPE under pipefail.
	tar -tzf "$archive" >"$work/listing"
	top="$(head -n 1 "$work/listing" | cut -d/ -f1)"
	rm -rf "$work/x" && mkdir -p "$work/x"
	tar -xzf "$archive" -C "$work/x" "${members[@]/#/$top/}"
	for spec in "${wanted[@]}"; do
		from="${spec%%=*}" to="${spec#*=}"
		mkdir -p "$target/$(dirname "$to")"
		rm -rf "$target/$to.tmp"
		mv "$work/x/$top/$from" "$target/$to.tmp"
		mv "$target/$to.tmp" "$target/$to"
	done
}

fetch kserve/kserve "$KSERVE_VERSION" "$dest/kserve-$KSERVE_VERSION" config \
	python/sklearnserver python/sklearn.Dockerfile LICENSE=python/LICENSE
fetch kubernetes-sigs/gateway-api "$GATEWAY_API_VERSION" "$dest/gateway-api-$GATEWAY_API_VERSION" \
	config/crd/standard
fetch prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" \
	"$dest/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" \
	example/prometheus-operator-crd example/rbac
echo "fetch-upstream: done; tests and image builds read $dest (export CHURN_UPSTREAM_DIR=$dest to force it)" >&2
