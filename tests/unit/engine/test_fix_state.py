"""fix_state: the fault's change recorded after the injection, judged before the rollback.

The objects are shaped like the API's answers for the lab's backend-api (catalog fault
outage/resources/memory_limits sets limits.memory 12Mi and strategy Recreate)."""
import copy

from ansible_collections.opsdrill.drills.plugins.module_utils import fix_state


def deployment(memory="96Mi", env=None, strategy="RollingUpdate", annotations=None, replicas=1):
    env = env or {"SEO_DB_HOST": "postgres", "SEO_PORT": "8080"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "backend-api", "namespace": "seo-tool", "resourceVersion": "41",
                     "annotations": dict(annotations or {})},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": strategy},
            "template": {
                "metadata": {"labels": {"app": "backend-api"}, "annotations": {}},
                "spec": {"containers": [{
                    "name": "backend-api", "image": "python:3.12-slim",
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "resources": {"limits": {"memory": memory}, "requests": {"memory": "32Mi"}}}]}}},
        "status": {"readyReplicas": 1},
    }


def memory_fault():
    before = deployment()
    after = deployment(memory="12Mi", strategy="Recreate",
                       annotations={"kubernetes.io/change-cause": "right-size memory"})
    after["metadata"]["resourceVersion"] = "57"
    return before, after


def test_the_fault_change_is_the_behaviour_paths_only():
    before, after = memory_fault()
    changes = fix_state.fault_paths(before, after)
    # strategy (rollout mechanics) and metadata (change-cause, resourceVersion) are not it
    assert changes == [{"path": "spec.template.spec.containers[backend-api].resources.limits.memory",
                        "before": "96Mi", "after": "12Mi"}]


def test_a_different_working_value_is_changed_not_in_place():
    before, after = memory_fault()
    recorded = fix_state.record("Deployment/backend-api", before, after)
    live = copy.deepcopy(after)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "128Mi"
    judged = fix_state.judge(recorded, live)
    assert judged["verdict"] == "changed" and judged["faulted"] is True
    assert judged["paths"][0]["live"] == "128Mi"


def test_an_exact_revert_is_reverted_and_quantities_compare_by_value():
    before, after = memory_fault()
    recorded = fix_state.record("Deployment/backend-api", before, after)
    live = copy.deepcopy(before)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "100663296"  # 96Mi
    assert fix_state.judge(recorded, live)["verdict"] == "reverted"


def test_restart_annotate_and_scale_leave_the_fault_in_place():
    before, after = memory_fault()
    recorded = fix_state.record("Deployment/backend-api", before, after)
    live = copy.deepcopy(after)
    live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2026-11-29T08:00:00Z"
    live["metadata"]["annotations"]["note"] = "looked"
    live["metadata"]["labels"] = {"fixed": "yes"}
    live["spec"]["replicas"] = 3
    judged = fix_state.judge(recorded, live)
    assert judged["verdict"] == "in_place"
    assert [p["verdict"] for p in judged["paths"]] == ["in_place"]


def test_an_added_env_var_does_not_shift_the_others():
    before = deployment(env={"SEO_DB_HOST": "postgres", "SEO_PORT": "8080"})
    after = deployment(env={"SEO_DB_HOTS": "postgres", "SEO_PORT": "8080"})  # renamed
    recorded = fix_state.record("Deployment/backend-api", before, after)
    assert sorted(c["path"].rsplit("]", 1)[0] + "]" for c in recorded["changes"]) == [
        "spec.template.spec.containers[backend-api].env[SEO_DB_HOST]",
        "spec.template.spec.containers[backend-api].env[SEO_DB_HOST]",
        "spec.template.spec.containers[backend-api].env[SEO_DB_HOTS]",
        "spec.template.spec.containers[backend-api].env[SEO_DB_HOTS]"]
    # A dummy `kubectl set env FOO=bar` in front: still the fault.
    live = deployment(env={"FOO": "bar", "SEO_DB_HOTS": "postgres", "SEO_PORT": "8080"})
    assert fix_state.judge(recorded, live)["verdict"] == "in_place"
    # The variable named right again (the misspelt one left beside it) is no fix either...
    live = deployment(env={"SEO_DB_HOTS": "postgres", "SEO_DB_HOST": "postgres", "SEO_PORT": "8080"})
    assert fix_state.judge(recorded, live)["verdict"] == "in_place"
    # ... without it, it is the snapshot again.
    assert fix_state.judge(recorded, before)["verdict"] == "reverted"


def test_secret_values_are_digests_and_an_untouched_object_changed_by_the_team_counts():
    secret = {"kind": "Secret", "metadata": {"name": "backend-api-credentials"},
              "data": {"api-key": "c2stb2xk", "db-password": "cHc="}}
    recorded = fix_state.record("Secret/backend-api-credentials", secret, secret)
    assert recorded["changes"] == []
    assert all(v.startswith("<secret sha256:") for v in recorded["injected"].values())
    assert "c2stb2xk" not in repr(recorded)
    assert fix_state.judge(recorded, secret)["verdict"] == "untouched"
    live = copy.deepcopy(secret)
    live["data"]["api-key"] = "c2stbmV3"
    judged = fix_state.judge(recorded, live)
    assert judged["verdict"] == "changed" and judged["faulted"] is False
    assert [p["path"] for p in judged["paths"]] == ["data.api-key"]
    assert "c2stbmV3" not in repr(judged)


def test_a_deleted_object():
    before, after = memory_fault()
    recorded = fix_state.record("Deployment/backend-api", before, after)
    judged = fix_state.judge(recorded, None)
    assert judged["verdict"] == "changed" and judged["paths"][0]["live"] == "<object deleted>"
