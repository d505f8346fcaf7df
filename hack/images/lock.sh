#!/usr/bin/env bash
# Pins the Python images' dependencies (with hashes) from the versions in hack/versions.env:
#   hack/images/lock.sh [name...]          storage-initializer mlserver mlflow kserve-sklearnserver
#   hack/images/lock.sh --check name...    fail if a requirements.txt misses a versions.env pin
# Writes <context>/requirements.txt, which the Dockerfiles install with --require-hashes. Run it
# after changing a version; build.sh runs --check first.
# Resolves for Python 3.11 and 3.12 (local base image and python:3.12-slim) in one universal file.
set -euo pipefail
# shellcheck source=SCRIPTDIR/catalog.sh
source "$(dirname "$0")/catalog.sh"
# shellcheck source=SCRIPTDIR/../upstream.sh
source "$REPO_ROOT/hack/upstream.sh"

# The top-level requirements of each image, one per line.
image_requirements() {
	case "$1" in
	storage-initializer) echo "kserve-storage==$KSERVE_STORAGE_VERSION" ;;
	# MLServer, devstack's predictor and a peer in the bench (.venv-mlserver); no longer an image.
	mlserver) grep -v '^#' "$REPO_ROOT/hack/mlserver-requirements.txt" ;;
	mlflow) printf '%s\n' "mlflow==$MLFLOW_VERSION" 'boto3>=1.34,<2' ;;
	# Upstream's own requirements, with its local kserve and storage trees as their PyPI releases.
	kserve-sklearnserver) upstream_sklearnserver_pins requirements ;;
	*)
		echo "lock.sh: no requirements for '$1'" >&2
		return 1
		;;
	esac
}

requirements_file() {
	case "$1" in
	mlserver) echo "$REPO_ROOT/hack/runtime/requirements.txt" ;;
	*) echo "$IMAGES_DIR/$1/requirements.txt" ;;
	esac
}

# Fails when a requirements.txt no longer pins what versions.env asks for.
check_lock() {
	local name="$1" file requirement
	file="$(requirements_file "$name")"
	while read -r requirement; do
		[[ "$requirement" == *==* ]] || continue
		# kserve[storage]==X is pinned as kserve==X.
		requirement="${requirement/\[*\]/}"
		grep -qi "^${requirement//./\\.} " "$file" || {
			echo "lock.sh: $file does not pin $requirement; run hack/images/lock.sh $name" >&2
			return 1
		}
	done < <(image_requirements "$name")
}

# kserve-sklearnserver follows upstream's python/sklearnserver: `requirements` prints its
# pyproject dependencies, `constraints` every version its uv.lock resolved for Python 3.11+.
upstream_sklearnserver_pins() {
	local project
	project="$(upstream_dir)/kserve-$KSERVE_VERSION/python/sklearnserver"
	python3 - "$1" "$project" "${KSERVE_VERSION#v}" <<'PY'
import re, sys, tomllib
from pathlib import Path
what, project, kserve = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if what == "requirements":
    for dependency in tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]:
        name = re.split(r"[ @<>=~!]", dependency, maxsplit=1)[0]
        print(f"{name}=={kserve}" if "@ file:" in dependency else dependency)
else:
    for package in tomllib.loads((project / "uv.lock").read_text())["package"]:
        markers = " ".join(package.get("resolution-markers", []))
        if "registry" in package["source"] and "python_full_version < '3.11'" not in markers:
            print(f"{package['name']}=={package['version']}")
PY
}

lock_image() {
	local name="$1" file constraints
	file="$(requirements_file "$name")"
	constraints="$(mktemp)"
	[[ "$name" == kserve-sklearnserver ]] && upstream_sklearnserver_pins constraints >"$constraints"
	images_log "locking $name -> ${file#"$REPO_ROOT"/}"
	image_requirements "$name" |
		uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
			--constraint "$constraints" \
			--custom-compile-command "hack/images/lock.sh $name" -o "$file" -
	rm -f "$constraints"
}

action=lock_image
if [[ "${1:-}" == --check ]]; then
	action=check_lock
	shift
fi
names=("$@")
((${#names[@]})) || names=(storage-initializer mlserver mlflow kserve-sklearnserver)
for name in "${names[@]}"; do "$action" "$name"; done
