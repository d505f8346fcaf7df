#!/usr/bin/env bash
# Generates helm/churn-predictor/README.md from the `# --` comments in values.yaml with helm-docs.
#   usage: hack/chart/docs.sh [CHART_DIR]
# helm-docs is built from its Go module (pinned) into $CHURN_CACHE/bin on first use.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=SCRIPTDIR/../versions.env
source "$HACK_DIR/versions.env"
HELM_DOCS_VERSION="${HELM_DOCS_VERSION:-v1.14.2}"
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
chart_dir="$(realpath "${1:-$HACK_DIR/../helm/churn-predictor}")"
helm_docs="$CHURN_CACHE/bin/helm-docs-$HELM_DOCS_VERSION"

if [[ ! -x "$helm_docs" ]]; then
	echo "chart-docs: building helm-docs $HELM_DOCS_VERSION from the Go module proxy (about a minute, once)" >&2
	gobin="$(mktemp -d)"
	trap 'rm -rf "$gobin"' EXIT
	GOBIN="$gobin" GOMODCACHE="$CHURN_CACHE/go/mod" GOCACHE="$CHURN_CACHE/go/build" CGO_ENABLED=0 \
		go install "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
	mkdir -p "$CHURN_CACHE/bin"
	install -m 0755 "$gobin/helm-docs" "$helm_docs"
fi

# helm-docs only warns when it skips a chart, so start from no README and insist on one.
readme="$chart_dir/README.md"
rm -f "$readme"
# helm-docs walks a directory for charts; point it at exactly this one.
"$helm_docs" --log-level warning --chart-search-root "$(dirname "$chart_dir")" \
	--chart-to-generate "$chart_dir" --template-files README.md.gotmpl --sort-values-order file \
	--skip-version-footer
if [[ ! -s "$readme" ]]; then
	echo "chart-docs: helm-docs wrote no $readme (see its warnings above)" >&2
	exit 1
fi
echo "chart-docs: wrote $readme" >&2
