"""Unit tests for scripts/bench_peer.py's pure parts: the Chaos Toolkit experiment it
generates for the default faults (the same change, the same probes as the drill, the
scenarios' seed alerts as the scenario file names them) and the task count it reads from
a run's PLAY RECAP. The runs themselves need the lab (the benchmark's own job)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("bench_peer", REPO / "scripts" / "bench_peer.py")
bench_peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_peer)

SCENARIO_ALERTS = sorted(record["alert"]["name"] for record in yaml.safe_load(
    (REPO / "plugins" / "module_utils" / "catalog" / "scenarios.yml").read_text())["scenarios"])


def _deployment(name, image="seo/backend:1"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "ns"},
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}


@pytest.mark.parametrize("key", bench_peer.DEFAULT_FAULTS)
def test_experiment_does_the_drills_work(key):
    entry = bench_peer.catalog.lookup(*key.split("/"))
    live = {"Deployment/backend-api": _deployment("backend-api")}
    changed = copy.deepcopy(live["Deployment/backend-api"])
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "seo/backend:broken"
    doc = bench_peer.experiment(entry, "ns", live, [{"op": "replace", "object": changed}], "http://127.0.0.1:1")
    method = [a["name"] for a in doc["method"]]
    assert method == ["inject-0-replace", "symptom", "alert-firing"]
    assert doc["method"][0]["provider"]["arguments"]["body"]["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "seo/backend:broken"
    assert doc["method"][2]["provider"]["arguments"]["alertname"] == entry["alert"]
    rollbacks = {a["name"]: a for a in doc["rollbacks"]}
    restored = rollbacks["restore-0-replace"]["provider"]["arguments"]["body"]
    assert restored["spec"]["template"]["spec"]["containers"][0]["image"] == "seo/backend:1"
    assert rollbacks["alerts-cleared"]["provider"]["arguments"]["alertnames"] == SCENARIO_ALERTS
    hypothesis = [p["name"] for p in doc["steady-state-hypothesis"]["probes"]]
    assert hypothesis == ["all-pods-healthy", "backend-api-available", "health", "alert-quiet"]


def test_task_count_comes_from_the_play_recap(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("TASK [x] ***\nok: [localhost]\n\nPLAY RECAP ****\n"
                   "localhost                  : ok=70   changed=28   unreachable=0    failed=0    "
                   "skipped=14   rescued=1    ignored=0   \n")
    assert bench_peer.tasks_run(log) == 85


def test_no_recap_no_count(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("ERROR! the playbook could not be parsed\n")
    assert bench_peer.tasks_run(log) is None
