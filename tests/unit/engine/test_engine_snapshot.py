"""normalise / diff (incl. no false diffs) / restore bodies / drill-state encoding."""

import base64
import copy
import gzip
import json

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as snap
from ansible_collections.opsdrill.drills.plugins.module_utils import fault_handlers as fh

CTX = {"namespace": "seo-tool", "now": "2026-11-22T17:30:00Z"}


def test_normalise_drops_server_fields_and_keeps_the_rest(stack):
    dep = stack["Deployment/backend-api"]
    dep["metadata"].setdefault("annotations", {})[
        "kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    out = snap.normalise(dep)
    assert "status" not in out
    for key in ("resourceVersion", "uid", "managedFields", "generation", "creationTimestamp"):
        assert key not in out["metadata"]
    assert out["metadata"]["annotations"] == {"kubernetes.io/change-cause": "opsdrill setup: release 1.4.2"}
    assert out["spec"] == dep["spec"]
    assert out["metadata"]["labels"] == dep["metadata"]["labels"]
    assert "status" in dep  # input untouched


def test_normalise_removes_empty_annotations_and_fills_kind():
    obj = {"metadata": {"name": "x", "annotations": {"deployment.kubernetes.io/revision": "3"}},
           "data": {"a": "b"}}
    out = snap.normalise(obj, kind="ConfigMap", api_version="v1")
    assert out == {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"},
                   "data": {"a": "b"}}


def test_no_false_diffs_from_server_churn(api, stack):
    """Status updates, new resourceVersions/managedFields, a re-PUT of the same spec
    and the revision annotation bump of a rollback must not show as differences."""
    refs = list(stack)
    for ref in refs:
        api.touch(ref)
    dep = api.get("Deployment", "backend-api")
    api.replace(dep)                                   # same spec, new rv, new managedFields
    live = api.objects(refs)
    assert live["Deployment/backend-api"]["metadata"]["resourceVersion"] != \
        stack["Deployment/backend-api"]["metadata"]["resourceVersion"]
    assert snap.diff(list(stack.values()), live) == []


def test_no_false_diff_after_rollback_bumps_the_revision(api, stack):
    dep = api.get("Deployment", "backend-api")
    fault = fh.plan([{"handler": "set_env", "object": "Deployment/backend-api",
                      "params": {"env": {"SEO_LOG_LEVEL": "verbose"}}}],
                    {"Deployment/backend-api": dep}, CTX)[0]["object"]
    api.replace(fault)
    back = api.get("Deployment", "backend-api")
    back["spec"]["template"] = copy.deepcopy(stack["Deployment/backend-api"]["spec"]["template"])
    api.replace(back)                                  # what kubectl rollout undo does
    live = api.get("Deployment", "backend-api")
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert snap.diff_object(stack["Deployment/backend-api"], live) == []


def test_no_false_diff_for_a_recreated_service(api, stack):
    """Deleted and recreated from the same manifest: new uid and cluster IP, same spec."""
    api.delete("Service", "postgres")
    api.create(snap.create_body(stack["Service/postgres"]))
    live = api.get("Service", "postgres")
    assert live["spec"]["clusterIP"] != stack["Service/postgres"]["spec"]["clusterIP"]
    assert live["metadata"]["uid"] != stack["Service/postgres"]["metadata"]["uid"]
    assert snap.diff_object(stack["Service/postgres"], live) == []


def test_diff_reports_the_brief_format(stack):
    live = copy.deepcopy(stack["Deployment/backend-api"])
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "16Mi"
    assert snap.diff_object(stack["Deployment/backend-api"], live) == [
        "Deployment/backend-api: spec.template.spec.containers[0].resources.limits.memory: "
        "'96Mi' != '16Mi'"]


def test_diff_sees_added_and_removed_fields(stack):
    """The cases a 'fields present on both sides only' comparison would miss."""
    live = copy.deepcopy(stack["Deployment/api-gateway"])
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "SEO_FAULT_RACE", "value": "true"})
    removed = env.pop(7)  # SEO_UPSTREAM_TIMEOUT_S
    lines = snap.diff_object(stack["Deployment/api-gateway"], live)
    assert len(lines) == 2
    assert any(line.endswith(": <absent> != {\"name\":\"SEO_FAULT_RACE\",\"value\":\"true\"}")
               for line in lines)
    assert any("%s" % removed["name"] in line and line.endswith("!= <absent>") for line in lines)

    secret = copy.deepcopy(stack["Secret/backend-api-credentials"])
    del secret["data"]["db-password"]
    lines = snap.diff_object(stack["Secret/backend-api-credentials"], secret)
    assert len(lines) == 1
    assert lines[0].startswith("Secret/backend-api-credentials: data.db-password: "
                               "'<secret sha256:")
    assert lines[0].endswith("' != <absent>")
    assert stack["Secret/backend-api-credentials"]["data"]["db-password"] not in lines[0]


def test_diff_matches_named_list_items_by_name(stack):
    live = copy.deepcopy(stack["Deployment/backend-api"])
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != "SEO_ROLE"]   # first item removed
    lines = snap.diff_object(stack["Deployment/backend-api"], live)
    assert lines == ["Deployment/backend-api: spec.template.spec.containers[0].env[0]: "
                     "{\"name\":\"SEO_ROLE\",\"value\":\"backend-api\"} != <absent>"]


def test_diff_reports_reordering(stack):
    live = copy.deepcopy(stack["Deployment/backend-api"])
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    env[0], env[1] = env[1], env[0]
    lines = snap.diff_object(stack["Deployment/backend-api"], live)
    assert len(lines) == 1 and ": order [" in lines[0]


def test_quantities_compare_by_value(stack):
    live = copy.deepcopy(stack["Deployment/backend-api"])
    res = live["spec"]["template"]["spec"]["containers"][0]["resources"]
    res["limits"]["memory"] = "100663296"   # 96Mi in bytes
    res["limits"]["cpu"] = "0.5"            # 500m
    assert snap.diff_object(stack["Deployment/backend-api"], live) == []
    res["limits"]["cpu"] = "0.25"
    assert len(snap.diff_object(stack["Deployment/backend-api"], live)) == 1


def test_quantity_parser():
    assert snap.parse_quantity("128Mi") == 128 * 2 ** 20
    assert snap.parse_quantity("500m") == 0.5
    assert snap.parse_quantity("1e3") == 1000
    assert snap.parse_quantity(2) == 2
    for bad in ("12 Mi", "Mi", "1Zi", True):
        with pytest.raises(ValueError):
            snap.parse_quantity(bad)


def test_type_changes_are_differences(stack):
    live = copy.deepcopy(stack["Service/redis"])
    live["spec"]["ports"][0]["targetPort"] = 6379          # was the name "redis"
    assert snap.diff_object(stack["Service/redis"], live) == [
        "Service/redis: spec.ports[0].targetPort: 'redis' != 6379"]


def test_deleted_object_and_collections(stack):
    objects = [stack["Service/redis"], stack["Deployment/redis"]]
    lines = snap.diff(objects, {"Service/redis": stack["Service/redis"], "Deployment/redis": None})
    assert lines == ["Deployment/redis: deleted (exists in the snapshot, not live)"]
    assert snap.diff(objects, objects) == []
    assert snap.diff(stack["Service/redis"], [stack["Service/redis"]]) == []


def test_restore_body_keeps_live_rv_allocations_and_last_applied(api, stack):
    api.delete("Service", "postgres")
    recreated = api.create(snap.create_body(stack["Service/postgres"]))
    live = api.get("Service", "postgres")
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
    live["spec"]["ports"][0]["targetPort"] = 5433
    body = snap.restore_body(snap.normalise(stack["Service/postgres"]), live)
    assert body["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert body["spec"]["clusterIP"] == recreated["spec"]["clusterIP"]
    assert body["spec"]["clusterIPs"] == recreated["spec"]["clusterIPs"]
    assert body["spec"]["ports"][0]["targetPort"] == "postgres"
    assert body["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}"}


def test_create_body_strips_allocations(stack):
    body = snap.create_body(stack["Service/redis"])
    assert "clusterIP" not in body["spec"] and "clusterIPs" not in body["spec"]
    assert "resourceVersion" not in body["metadata"] and "status" not in body


def test_encode_is_stable():
    a = snap.encode({"b": [1, {"y": 1, "x": "é"}], "a": None})
    assert a == '{"a":null,"b":[1,{"x":"é","y":1}]}'
    assert snap.decode(a) == {"a": None, "b": [1, {"x": "é", "y": 1}]}


def state():
    return {"drill_id": "seo-tool-1", "scenario": "outage", "variant": "resources",
            "fault": "memory_limits", "started": 1.0, "deadline": 2.0, "armed": True,
            "phase": "injected", "created": []}


def test_state_objects_round_trip_and_keep_secrets_out_of_the_configmap(stack):
    objects = list(stack.values())
    cm, secret = snap.build_state_objects("seo-tool", state(), objects)
    assert cm["metadata"]["name"] == "opsdrill-drill-state" and cm["kind"] == "ConfigMap"
    text = json.dumps(cm)
    assert "opsdrill-demo" not in text and base64.b64encode(b"opsdrill-demo-db").decode() not in text
    assert json.loads(cm["data"]["state.json"])["secret_snapshot"] == "opsdrill-drill-state"
    assert secret["kind"] == "Secret" and "secrets.json" in secret["data"]
    got_state, got = snap.read_state_objects(cm, secret)
    assert got_state["fault"] == "memory_limits"
    assert sorted(snap.ref_of(o) for o in got) == sorted(stack)
    assert snap.diff(objects, got) == []


def test_state_without_secrets_needs_no_secret(stack):
    cm, secret = snap.build_state_objects("seo-tool", state(), [stack["Deployment/redis"]])
    assert secret is None
    got_state, got = snap.read_state_objects(cm)
    assert got_state["secret_snapshot"] is None and len(got) == 1


def test_missing_secret_snapshot_is_an_error(stack):
    cm, _secret = snap.build_state_objects("seo-tool", state(), list(stack.values()))
    with pytest.raises(snap.SnapshotError, match="Secret opsdrill-drill-state, which is missing"):
        snap.read_state_objects(cm, None)


def test_large_snapshot_is_gzipped_and_too_large_refused(stack):
    big = copy.deepcopy(stack["Deployment/backend-api"])
    big["metadata"]["annotations"]["filler"] = "x" * 400000
    cm, _secret = snap.build_state_objects("seo-tool", state(), [big], limit=200000)
    assert "snapshot.json" not in cm["data"] and "snapshot.json.gz" in cm["binaryData"]
    assert gzip.decompress(base64.b64decode(cm["binaryData"]["snapshot.json.gz"]))
    _state, got = snap.read_state_objects(cm)
    assert got[0]["metadata"]["annotations"]["filler"] == "x" * 400000
    import os
    noisy = copy.deepcopy(big)
    noisy["metadata"]["annotations"]["filler"] = base64.b64encode(os.urandom(300000)).decode()
    with pytest.raises(snap.SnapshotError, match="over the ConfigMap budget.*Deployment/backend-api"):
        snap.build_state_objects("seo-tool", state(), [noisy], limit=200000)


def test_real_stack_fits_the_budget(stack):
    cm, secret = snap.build_state_objects("seo-tool", state(), list(stack.values()))
    size = sum(len(v) for v in cm["data"].values())
    assert size < 64 * 1024, size


def test_redact_secrets_keeps_digests_that_tell_values_apart():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"a": "cGFzcw==", "b": "eA=="}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "cGFzcw=="}}
    out = snap.redact_secrets([secret, other])
    assert out[1] == other and secret["data"]["a"] == "cGFzcw=="     # only Secrets, copies
    assert all(v.startswith("<secret sha256:") for v in out[0]["data"].values())
    assert out[0]["data"]["a"] != out[0]["data"]["b"]
    assert snap.diff(out, {"Secret/db": snap.redact_secrets([secret])[0], "ConfigMap/c": other}) == []


def test_inventory_changes_report_what_changed_beyond_the_touched_objects(stack):
    objects = [stack["Deployment/redis"], stack["Deployment/backend-api"], stack["Service/redis"]]
    before = snap.inventory(objects)
    touched = copy.deepcopy(stack["Deployment/backend-api"])
    touched["spec"]["replicas"] = 7                      # the fault's own object: skipped here
    relabelled = copy.deepcopy(stack["Deployment/redis"])
    relabelled["metadata"].setdefault("labels", {})["tier"] = "gone"
    notes = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "notes"}, "data": {"a": "b"}}
    live = copy.deepcopy(relabelled)
    live["status"] = {"readyReplicas": 1}                # status alone is no change
    after = snap.inventory([live, touched, notes])
    assert snap.inventory_changes(before, after, skip=["Deployment/backend-api"]) == [
        "ConfigMap/notes: appeared", "Deployment/redis: changed", "Service/redis: vanished"]
    assert snap.inventory_changes(before, snap.inventory(objects)) == []
