#!/usr/bin/env bash
# Installs the serving stack on the kind cluster of hack/k8s/kind-up.sh. Idempotent: re-running it
# on a cluster that has the stack converges and returns quickly.
# The images must be loaded first: hack/e2e/images.sh (`make stack-up` runs both).
#   1. a guard on the nodes: traffic to not-yet-programmed Service IPs must not leave the machine
#   2. CRDs: Gateway API, prometheus-operator, KServe
#   3. metrics-server, prometheus-operator + Prometheus, Traefik (GatewayClass "traefik")
#   4. KServe controller in Standard mode with self-generated webhook certificates, then its runtimes
#   5. the platform (manifests/): namespaces, MinIO + buckets, MLflow, the Gateway
# Environment: CHURN_IMAGE_SOURCE (local|upstream), KIND_CLUSTER_NAME (churn), WAIT_TIMEOUT (600s),
# CHURN_UPSTREAM_DIR (the pinned upstream YAML; default ../shared/upstream or $CHURN_CACHE/upstream).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
WEBHOOK_SECRET=kserve-webhook-server-cert
WEBHOOK_SERVICE=kserve-webhook-server-service

# A scratch copy of hack/e2e with the pinned upstream YAML linked in as ./upstream, where the
# kustomizations expect it.
prepare_workdir() {
	local upstream
	upstream="$(upstream_or_fetch)"
	WORK="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand now
	trap "rm -rf '$WORK'" EXIT
	cp -r "$E2E_DIR" "$WORK/e2e"
	mkdir -p "$WORK/e2e/upstream"
	ln -s "$upstream/kserve-$KSERVE_VERSION" "$WORK/e2e/upstream/kserve"
	ln -s "$upstream/gateway-api-$GATEWAY_API_VERSION" "$WORK/e2e/upstream/gateway-api"
	ln -s "$upstream/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" "$WORK/e2e/upstream/prometheus-operator"
	e2e_log "upstream YAML from $upstream"
}

render() { kubectl kustomize --load-restrictor LoadRestrictionsNone "$WORK/e2e/$1"; }

# Applies rendered YAML that may hold CRDs and objects of those CRDs: a first pass creates the
# CRDs (objects of kinds not yet served fail), a second pass after they are Established the rest.
apply_with_crds() {
	local manifest="$1"
	apply -f "$manifest" 2>/dev/null && return
	kubectl wait --for=condition=Established crd --all --timeout=120s >/dev/null
	apply -f "$manifest"
}

# Until kube-proxy has programmed a new Service, its ClusterIP is an unknown address that the node
# routes to its default gateway: off this machine. A connection opened in that window (a pod
# starting next to its Service, the API server probing an APIService) leaks out and, being
# keep-alive, can stay pinned there (seen here: the transformer's predictor connection and the
# aggregator's metrics-server checks were answered from outside). Drop, on every node, what is
# still addressed to the Service range after kube-proxy's DNAT: nothing legitimate is. mangle
# POSTROUTING sees forwarded and local packets after DNAT, and before any ACCEPT of the CNI's
# filter chains (kube-router keeps its jumps first in FORWARD and OUTPUT).
guard_service_range() {
	local range node
	range="$(kubectl -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' |
		sed -n 's/^ *serviceSubnet: *//p')"
	[[ -n "$range" ]] || {
		e2e_log "cannot read the Service range from kubeadm-config"
		return 1
	}
	for node in $(kind get nodes --name "$KIND_CLUSTER_NAME"); do
		docker exec "$node" iptables -t mangle -C POSTROUTING -d "$range" -j DROP 2>/dev/null ||
			docker exec "$node" iptables -t mangle -I POSTROUTING 1 -d "$range" -j DROP
	done
	e2e_log "nodes drop un-translated traffic to the Service range $range"
}

install_crds() {
	e2e_log "CRDs: Gateway API $GATEWAY_API_VERSION, prometheus-operator $PROMETHEUS_OPERATOR_VERSION"
	apply -f "$WORK/e2e/upstream/gateway-api/config/crd/standard/"
	apply -f "$WORK/e2e/upstream/prometheus-operator/example/prometheus-operator-crd/"
	kubectl wait --for=condition=Established crd --all --timeout=120s >/dev/null
}

install_addons() {
	e2e_log "metrics-server, prometheus-operator + Prometheus, Traefik"
	render metrics-server | apply -f -
	render monitoring | apply -f -
	render traefik | apply -f -
	apply -f "$WORK/e2e/traefik/gatewayclass.yaml"
}

# A CA and a serving certificate for the webhook Service, kept in the Secret the manager mounts.
# An existing Secret is reused, so re-runs keep the CA the webhook configurations already trust.
ensure_webhook_certificate() {
	local dir="$WORK/certs" dns="$WEBHOOK_SERVICE.kserve.svc"
	if kubectl -n kserve get secret "$WEBHOOK_SECRET" >/dev/null 2>&1; then
		return
	fi
	e2e_log "generating the KServe webhook CA and serving certificate"
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=churn-e2e-kserve-webhook-ca" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$dns" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
	printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
		"$dns" "$dns" >"$dir/ext.cnf"
	openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 3650 -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null
	kubectl -n kserve create secret tls "$WEBHOOK_SECRET" --cert "$dir/tls.crt" --key "$dir/tls.key" \
		--dry-run=client -o json |
		jq --arg ca "$(base64 -w0 <"$dir/ca.crt")" '.data["ca.crt"] = $ca' | apply -f -
}

# Every webhook of KServe's webhook configurations trusts the CA in the Secret.
inject_ca_bundle() {
	local ca kind name
	ca="$(kubectl -n kserve get secret "$WEBHOOK_SECRET" -o jsonpath='{.data.ca\.crt}')"
	for kind in mutatingwebhookconfiguration validatingwebhookconfiguration; do
		for name in $(kubectl get "$kind" -l app.kubernetes.io/name=kserve -o name); do
			kubectl get "$name" -o json |
				jq --arg ca "$ca" '[.webhooks | keys[] | {op: "add", path: "/webhooks/\(.)/clientConfig/caBundle", value: $ca}]' |
				kubectl patch "$name" --type json --patch-file /dev/stdin >/dev/null
		done
	done
}

install_kserve() {
	e2e_log "KServe $KSERVE_VERSION controller (Standard mode, Gateway API)"
	render kserve/controller >"$WORK/kserve.yaml"
	apply_with_crds "$WORK/kserve.yaml"
	ensure_webhook_certificate
	inject_ca_bundle
	wait_deployments kserve kserve-controller-manager
	# The runtimes go through the controller's validating webhook: retry until it answers.
	e2e_log "KServe ClusterServingRuntimes"
	render kserve/runtimes >"$WORK/runtimes.yaml"
	local attempt
	for attempt in $(seq 1 30); do
		apply -f "$WORK/runtimes.yaml" 2>"$WORK/runtimes.err" && return
		((attempt % 5)) || e2e_log "  webhook not answering yet: $(tail -n 1 "$WORK/runtimes.err")"
		sleep 4
	done
	cat "$WORK/runtimes.err" >&2
	return 1
}

install_platform() {
	e2e_log "platform: namespaces, MinIO, MLflow, Gateway (manifests/)"
	kubectl kustomize "$REPO_DIR/manifests" | apply -f -
}

wait_stack() {
	wait_deployments kube-system metrics-server
	wait_deployments monitoring prometheus-operator
	wait_deployments traefik traefik
	wait_deployments churn-system minio mlflow
	e2e_log "waiting for the minio-buckets Job"
	kubectl -n churn-system wait --for=condition=Complete job/minio-buckets --timeout="${WAIT_TIMEOUT:-600s}" >/dev/null ||
		{
			dump_namespace churn-system
			return 1
		}
	e2e_log "waiting for the Gateway to be Programmed"
	kubectl -n churn-system wait --for=condition=Programmed gateway/churn-gateway --timeout=300s >/dev/null ||
		{
			kubectl -n churn-system get gateway churn-gateway -o yaml >&2
			kubectl -n traefik logs deployment/traefik --tail=40 >&2
			return 1
		}
	e2e_log "waiting for Prometheus (created by the operator)"
	until kubectl -n monitoring get statefulset prometheus-churn >/dev/null 2>&1; do sleep 3; done
	kubectl -n monitoring rollout status statefulset/prometheus-churn --timeout="${WAIT_TIMEOUT:-600s}" >/dev/null ||
		{
			dump_namespace monitoring
			return 1
		}
	e2e_log "waiting for the resource metrics API (metrics-server)"
	kubectl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=300s >/dev/null
}

main() {
	local started=$SECONDS
	kubectl get --raw /readyz >/dev/null || {
		e2e_log "cluster $KUBE_CONTEXT is not reachable: run hack/k8s/kind-up.sh (make kind-up) first"
		exit 1
	}
	prepare_workdir
	guard_service_range
	install_crds
	install_addons
	install_kserve
	install_platform
	wait_stack
	e2e_log "stack installed in $((SECONDS - started))s"
}

main "$@"
