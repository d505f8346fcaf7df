# shellcheck shell=bash
# Where the pinned upstream sources live: KServe's config/ and its sklearnserver package, the
# Gateway API CRDs and prometheus-operator's CRDs and RBAC. $CHURN_UPSTREAM_DIR, else
# ../shared/upstream beside the checkout (offline machines), else $CHURN_CACHE/upstream, written
# by `make fetch-upstream`. Sourced after versions.env.
UPSTREAM_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
upstream_dir() {
	local candidate
	for candidate in "${CHURN_UPSTREAM_DIR:-}" "$UPSTREAM_REPO_ROOT/../shared/upstream" \
		"${CHURN_CACHE:-$HOME/.cache/churn-serving}/upstream"; do
		if [[ -n "$candidate" && -d "$candidate/kserve-$KSERVE_VERSION" ]]; then
			(cd "$candidate" && pwd)
			return
		fi
	done
	echo "no upstream sources for KServe $KSERVE_VERSION: set CHURN_UPSTREAM_DIR or run make fetch-upstream" >&2
	return 1
}
