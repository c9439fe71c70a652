"""Fixtures for tests that run on a real cluster (the lab unless OPSDRILL_KUBECONFIG says otherwise).

These tests are slow and need a cluster: they live apart from tests/unit. Without a lab they
are skipped, unless OPSDRILL_REQUIRE_LAB=1 (as in CI), where a missing lab is a failure.
"""
import json
import os
import uuid
from pathlib import Path

import pytest

from kubectl import Kube

LAB_DIR = Path(os.environ.get("OPSDRILL_LAB_DIR", "/var/lib/opsdrill-lab"))


@pytest.fixture(scope="session")
def lab():
    info_path = LAB_DIR / "lab.json"
    if not info_path.exists():
        if os.environ.get("OPSDRILL_REQUIRE_LAB") == "1":
            pytest.fail(f"no running lab ({info_path} missing): bring it up with `make lab`")
        pytest.skip(f"no running lab ({info_path} missing)")
    return json.loads(info_path.read_text())


@pytest.fixture(scope="session")
def admin(lab):
    return Kube(lab["kubectl"], os.environ.get("OPSDRILL_KUBECONFIG", lab["admin_kubeconfig"]))


@pytest.fixture()
def scratch_namespace(admin):
    """A throw-away namespace, opted in to drills, deleted afterwards."""
    name = f"opsdrill-smoke-{uuid.uuid4().hex[:6]}"
    admin.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": name, "labels": {"opsdrill.io/drill-target": "true"}}}))
    admin.wait_for(f"default ServiceAccount in {name}",
                   lambda: admin.run("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0)
    yield name
    admin.run("delete", "namespace", name, "--wait=false", check=False)
