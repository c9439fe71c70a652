"""The engine's cluster steps on the in-memory API: snapshot, inject, restore, verify."""

import copy

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils import engine
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

NS = "seo-tool"
DRILL = {"drill_id": "seo-tool-20261122T173000Z", "scenario": "outage", "variant": "resources",
         "fault": "memory_limits", "namespace": NS}


def no_sleep(_seconds):
    return None


def drill_for(entry):
    return dict(DRILL, scenario=entry["scenario"], variant=entry["variant"], fault=entry["name"])


@pytest.mark.parametrize("key", catalog.load().keys())
def test_every_fault_snapshots_injects_restores_and_verifies(api, key):
    entry = catalog.lookup(*key.split("/"))
    drill = drill_for(entry)
    before = {ref: copy.deepcopy(obj) for ref, obj in api.store.items()}
    state, objects, ops = engine.take_snapshot(api, NS, entry, drill, deadline=2e9, seed=7, now=1795368600)
    assert [snapshot.ref_of(o) for o in objects] == engine.touch_refs(entry)
    assert state["armed"] is True and state["seed"] == 7 and state["key"] == key
    result = engine.inject(api, NS, entry, drill, sleep=no_sleep)
    assert result["changes"], "the fault changes something"
    assert result["visible"] >= result["started"]
    differences = engine.verify(api, NS)
    assert differences, "verify sees the fault"
    outcome = restore_plan.run_restore(api, NS, sleep=no_sleep)
    assert outcome["ok"], outcome
    assert engine.verify(api, NS) == []
    for ref, obj in before.items():
        if ref.startswith(("ConfigMap/opsdrill", "Secret/opsdrill", "Lease/")):
            continue
        assert not snapshot.diff_object(obj, api.store.get(ref)), ref


def test_prepare_refuses_a_missing_target_and_writes_nothing(api):
    entry = catalog.lookup("outage", "resources", "memory_limits", target="orders-api")
    before = api.dump()
    with pytest.raises(engine.EngineError, match="touches Deployment/orders-api, which does not exist in namespace seo-tool"):
        engine.take_snapshot(api, NS, entry, DRILL, deadline=2e9)
    assert api.dump() == before


def test_prepare_refuses_a_fault_that_cannot_apply(api):
    entry = catalog.lookup("outage", "dependencies", "database_down")
    api.scale("Deployment", "postgres", NS, 0)
    with pytest.raises(engine.EngineError, match="already has 0 replicas"):
        engine.prepare(api, NS, entry, DRILL)


def test_check_mode_plans_but_changes_nothing(api):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    before = api.dump()
    engine.take_snapshot(api, NS, entry, DRILL, deadline=2e9, check_mode=True)
    result = engine.inject(api, NS, entry, DRILL, check_mode=True)
    assert api.dump() == before
    assert "Deployment/backend-api: spec.template.spec.containers[0].resources.limits.memory: '96Mi' != '12Mi'" \
        in result["changes"]
    diffs = engine.diff_entries(result["live"], result["ops"])
    assert diffs[0]["ref"] == "Deployment/backend-api"
    assert "status" not in diffs[0]["before"]


def test_inject_needs_this_drills_snapshot(api):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    engine.take_snapshot(api, NS, entry, dict(DRILL, drill_id="other-drill"), deadline=2e9)
    with pytest.raises(engine.EngineError, match="belongs to drill other-drill"):
        engine.inject(api, NS, entry, DRILL, sleep=no_sleep)


def test_created_objects_are_recorded_and_removed(api):
    entry = catalog.lookup("error_spike", "resources", "network_issues")
    drill = drill_for(entry)
    state, _objects, _ops = engine.take_snapshot(api, NS, entry, drill, deadline=2e9)
    assert state["created"] == ["Service/backend-api-canary"]
    engine.inject(api, NS, entry, drill, sleep=no_sleep)
    assert "Service/backend-api-canary: created by the fault, still exists" in engine.verify(api, NS)
    assert restore_plan.run_restore(api, NS, sleep=no_sleep)["ok"]
    assert api.get_or_none("Service", "backend-api-canary") is None


def test_secret_values_never_show_in_changes(api):
    entry = catalog.lookup("error_spike", "configuration", "auth_issues")
    drill = drill_for(entry)
    engine.take_snapshot(api, NS, entry, drill, deadline=2e9)
    result = engine.inject(api, NS, entry, drill, check_mode=True)
    text = "\n".join(result["changes"])
    assert "<secret sha256:" in text and "sk-seo" not in text
    diff = engine.diff_entries(result["live"], result["ops"])
    secret = [d for d in diff if d["ref"] == "Secret/api-gateway-credentials"][0]
    assert set(secret["after"]["data"].values()) == {"<redacted>"}


def test_release_steps_are_in_the_state(api):
    entry = catalog.lookup("error_spike", "code", "logic_errors")
    state, _o, _ops = engine.take_snapshot(api, NS, entry, drill_for(entry), deadline=2e9)
    assert state["releases"] == [["Deployment/api-gateway",
                                  "api-gateway: release 1.5.0 (response cache v2, rank weighting)"]]
    assert state["post_restore"][0]["op"] == "redis_flush"


def test_post_restore_runs_after_the_rollout(api):
    """A poisoned cache is flushed only once no pod of the faulty release is left."""
    entry = catalog.lookup("error_spike", "code", "logic_errors")
    drill = drill_for(entry)
    engine.take_snapshot(api, NS, entry, drill, deadline=2e9)
    engine.inject(api, NS, entry, drill, sleep=no_sleep)
    lagging = {"reads": 0, "at_flush": None}
    real_get, real_create = api.get, api.create

    def get(kind, name, namespace=None):
        obj = real_get(kind, name, namespace)
        if kind == "Deployment" and name == "api-gateway" and lagging["reads"] < 3:
            lagging["reads"] += 1
            obj["status"]["updatedReplicas"] = 1     # the rollout back is still going on
        return obj

    def create(obj, namespace=None):
        if obj["kind"] == "Pod":
            lagging["at_flush"] = lagging["reads"]
        return real_create(obj, namespace)

    api.get, api.create = get, create
    outcome = restore_plan.run_restore(api, NS, sleep=no_sleep)
    assert outcome["ok"] and outcome["actions"][-1] == "redis FLUSHDB on redis:6379"
    assert lagging["at_flush"] == 3, "the flush waited for the rollout"
    assert restore_plan.rollouts_pending(api, NS, [api.get("Deployment", "api-gateway")]) == []
