"""manifests/ against the real API server: OpenAPI + Gateway API schemas, strict fields, and the
restricted Pod Security profile (the namespaces warn on any violation)."""

from __future__ import annotations

import pytest
from kube_apiserver import REPO, ApiServer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("directory", ["manifests", "manifests/training"])
def test_kustomization_is_accepted_without_pod_security_warnings(
    apiserver: ApiServer, directory: str
) -> None:
    rendered = apiserver.must("kubectl", "kustomize", str(REPO / directory))
    result = apiserver.run(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=rendered
    )

    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout
    assert "would violate PodSecurity" not in result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_a_privileged_pod_template_does_raise_the_warning(apiserver: ApiServer) -> None:
    """The check above can fail: the same namespaces flag a template that is not restricted."""
    rendered = apiserver.must("kubectl", "kustomize", str(REPO / "manifests" / "training"))
    loosened = rendered.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
    assert loosened != rendered
    result = apiserver.run(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=loosened
    )

    assert result.returncode == 0, result.stderr
    assert "would violate PodSecurity" in result.stderr
    assert "allowPrivilegeEscalation != false" in result.stderr
