"""Starts a real etcd + kube-apiserver on loopback and installs the upstream CRDs.

No kubelet, scheduler or controllers: objects are validated and stored, never run. KServe's own
admission webhooks need its controller and are exercised by the cluster e2e suite, not here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CHURN_CACHE = Path(os.environ.get("CHURN_CACHE", Path.home() / ".cache" / "churn-serving"))
# The apiserver answers /readyz within seconds once etcd is up; this only bounds a broken start.
STARTUP_LIMIT_SECONDS = 120
NAMESPACES = ("churn", "churn-system", "monitoring")


def pinned_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            versions[key.strip()] = value.strip()
    return versions


def upstream_dir() -> Path:
    """$CHURN_UPSTREAM_DIR, else ../shared/upstream (CI), else what `make fetch-upstream` wrote."""
    candidates = [Path(p) for p in [os.environ.get("CHURN_UPSTREAM_DIR", "")] if p] + [
        REPO.parent / "shared" / "upstream",
        CHURN_CACHE / "upstream",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    pytest.fail(f"no upstream CRDs in {[str(c) for c in candidates]}: run `make fetch-upstream`")


def find_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(CHURN_CACHE / "bin"))
    if found is None:
        pytest.fail(f"{name} not found on PATH or in {CHURN_CACHE / 'bin'}: run `make tools`")
    return found


def kubernetes_binaries() -> dict[str, Path]:
    """etcd and kube-apiserver from hack/k8s/build.sh, building them on a cold cache."""
    version = pinned_versions()["KUBERNETES_VERSION"]
    bin_dir = CHURN_CACHE / "k8s" / version / "bin"
    wanted = {name: bin_dir / name for name in ("etcd", "kube-apiserver")}
    missing = [name for name, path in wanted.items() if not os.access(path, os.X_OK)]
    if missing:
        print(f"building {missing} with hack/k8s/build.sh (slow once, cached after)", flush=True)
        subprocess.run(["bash", str(REPO / "hack" / "k8s" / "build.sh"), *missing], check=True)
    return wanted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def write_pki(pki: Path) -> None:
    """A throwaway CA, an apiserver serving cert for 127.0.0.1, and a service-account key pair."""
    pki.mkdir()
    ca_key, ca_crt = str(pki / "ca.key"), str(pki / "ca.crt")
    key, csr, crt = (str(pki / f"apiserver.{ext}") for ext in ("key", "csr", "crt"))
    new_key = ["-newkey", "rsa:2048", "-nodes", "-days", "2"]
    openssl(
        "req", "-x509", *new_key, "-subj", "/CN=churn-test-ca", "-keyout", ca_key, "-out", ca_crt
    )
    openssl("req", *new_key, "-subj", "/CN=kube-apiserver", "-keyout", key, "-out", csr)
    (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    sign = ["-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-days", "2"]
    openssl("x509", "-req", "-in", csr, *sign, "-extfile", str(pki / "san.ext"), "-out", crt)
    openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


@dataclass(frozen=True)
class ApiServer:
    """A running API server and the kubeconfig that reaches it as cluster-admin."""

    url: str
    kubeconfig: Path
    kubectl: str
    helm: str
    upstream: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl or helm (first arg) against this server; never raises on failure."""
        tool = {"kubectl": self.kubectl, "helm": self.helm}[args[0]]
        return subprocess.run(
            [tool, *args[1:]],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )

    def must(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stderr}"
        return result.stdout


class Process:
    """A child process whose output goes to a log file; stopped (and only it) on close."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("w") as log:
            self.popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            pytest.fail(
                f"{self.name} exited ({self.popen.returncode}):\n{self.log.read_text()[-4000:]}"
            )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def wait_ready(url: str, token: str, ca: Path, apiserver: Process) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while True:
        apiserver.check_alive()
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"kube-apiserver not ready:\n{apiserver.log.read_text()[-4000:]}")
        time.sleep(0.5)


def upstream_crd_sources(upstream: Path) -> list[Path]:
    versions = pinned_versions()
    gateway = (
        upstream / f"gateway-api-{versions['GATEWAY_API_VERSION']}" / "config" / "crd" / "standard"
    )
    prometheus = (
        upstream
        / f"prometheus-operator-{versions['PROMETHEUS_OPERATOR_VERSION']}"
        / "example"
        / "prometheus-operator-crd"
    )
    return [gateway, prometheus]


def install_crds(server: ApiServer) -> None:
    versions = pinned_versions()
    # KServe's CRDs go through its kustomization (it patches the InferenceService CRD).
    kserve = server.upstream / f"kserve-{versions['KSERVE_VERSION']}" / "config" / "crd"
    kserve_crds = server.must("kubectl", "kustomize", str(kserve))
    server.must("kubectl", "apply", "--server-side", "-f", "-", stdin=kserve_crds)
    for source in upstream_crd_sources(server.upstream):
        # Server-side: the prometheus-operator CRDs are too big for the last-applied annotation.
        server.must("kubectl", "apply", "--server-side", "-f", str(source))
    server.must("kubectl", "wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")


@contextmanager
def running_apiserver(work: Path) -> Iterator[ApiServer]:
    """etcd + kube-apiserver with the CRDs and namespaces installed, stopped on exit."""
    kubectl, helm = find_tool("kubectl"), find_tool("helm")
    binaries = kubernetes_binaries()
    upstream = upstream_dir()
    write_pki(work / "pki")
    pki = work / "pki"
    token = os.urandom(24).hex()
    (work / "tokens.csv").write_text(f"{token},churn-admin,churn-admin,system:masters\n")
    etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{etcd_peer_port}"
    url = f"https://127.0.0.1:{api_port}"

    processes: list[Process] = []
    try:
        processes.append(
            Process(
                "etcd",
                [
                    str(binaries["etcd"]),
                    "--name=churn-test",
                    f"--data-dir={work / 'etcd'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=churn-test={peer_url}",
                    "--unsafe-no-fsync",  # a throwaway store: durability buys nothing here
                ],
                work,
            )
        )
        apiserver_process = Process(
            "kube-apiserver",
            [
                str(binaries["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={work / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--profiling=false",
            ],
            work,
        )
        processes.append(apiserver_process)
        wait_ready(url, token, pki / "ca.crt", apiserver_process)

        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(
            f"""apiVersion: v1
kind: Config
clusters:
  - name: churn-test
    cluster: {{server: "{url}", certificate-authority: "{pki / "ca.crt"}"}}
users:
  - name: churn-admin
    user: {{token: "{token}"}}
contexts:
  - name: churn-test
    context: {{cluster: churn-test, user: churn-admin}}
current-context: churn-test
"""
        )
        kubeconfig.chmod(0o600)
        server = ApiServer(url, kubeconfig, kubectl, helm, upstream)
        print(f"kube-apiserver ready at {url}; installing upstream CRDs", flush=True)
        install_crds(server)
        # Warn (never enforce: nothing runs) when a pod template breaks the restricted profile.
        namespaces = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {"pod-security.kubernetes.io/warn": "restricted"},
                },
            }
            for name in NAMESPACES
        ]
        server.must(
            "kubectl",
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"kind": "List", "apiVersion": "v1", "items": namespaces}),
        )
        yield server
    finally:
        for process in reversed(processes):
            process.stop()
