"""FixJudgement: the catalog's cause parts judged on a fix_state, attributed by the audit log.

Pure logic on small inputs; the real drills are tests/integration/drills/test_fix_judgement.py
and the recorded fixtures (test_recorded.py)."""
import datetime

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import ScoringInputError
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.evidence import EvidenceItem
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.fixes import FixJudgement, check_parts

T0 = datetime.datetime(2026, 11, 29, 8, 0, tzinfo=datetime.timezone.utc)


def item(seconds, action, verb="patch", resource="deployments", name="api-gateway", changed=None, ok=True):
    details = {"verb": verb, "resource": resource, "name": name, "namespace": "seo-tool"}
    if changed is not None:
        details["changed"] = changed
    return EvidenceItem(T0 + datetime.timedelta(seconds=seconds), "audit", action, action, actor="trainee-1",
                        details=details, ok=ok, mutating=verb in ("patch", "update", "create", "delete"))


def state(**verdicts):
    objects = []
    for ref, verdict in verdicts.items():
        kind_name = ref.replace("__", "/")
        faulted = verdict in ("in_place", "reverted", "changed_fault")
        path = {"path": "spec.template.spec.containers[api-gateway].env[SEO_RELEASE].value",
                "verdict": "changed" if verdict == "changed_fault" else verdict, "before": "1.4.2",
                "after": "1.5.0", "live": "x"}
        if not faulted:
            path = {"path": "data.api-key", "verdict": "changed", "before": "a", "after": "a", "live": "b"}
        objects.append({"ref": kind_name, "faulted": faulted,
                        "verdict": "changed" if verdict == "changed_fault" else verdict,
                        "paths": [] if verdict == "untouched" else [path]})
    return {"objects": objects}


LOGIC = {"name": "logic_errors", "target": {"kind": "Deployment", "name": "api-gateway"},
         "cause_parts": [{"object": "{target_ref}", "paths": ["spec.template.spec.*"]}, {"action": "cache_flush"}]}


def test_both_halves_are_needed():
    undo = item(10, "rollout_undo")
    flush = EvidenceItem(T0 + datetime.timedelta(seconds=20), "audit", "cache_flush", "flush", actor="trainee-1",
                         details={"verb": "create", "resource": "pods", "subresource": "exec", "name": "redis-1"},
                         aliases=("exec",), mutating=True)
    fix = FixJudgement(LOGIC, state(Deployment__api_gateway="reverted"), [undo, flush], True)
    # the object part names Deployment/api-gateway: the state above uses another ref
    assert fix.cause_fixed is False
    fix = FixJudgement(LOGIC, {"objects": [dict(state(x="reverted")["objects"][0], ref="Deployment/api-gateway")]},
                       [undo, flush], True)
    assert fix.cause_fixed is True and fix.cause_items() == [undo, flush]
    only_flush = FixJudgement(LOGIC, {"objects": [dict(state(x="in_place")["objects"][0], ref="Deployment/api-gateway")]},
                              [flush], True)
    assert only_flush.cause_fixed is False and only_flush.cause_items() == [flush]
    only_undo = FixJudgement(LOGIC, {"objects": [dict(state(x="reverted")["objects"][0], ref="Deployment/api-gateway")]},
                             [undo], True)
    assert only_undo.cause_fixed is False


def test_missing_evidence_is_unknown_not_false():
    flush = EvidenceItem(T0, "audit", "cache_flush", "flush", actor="trainee-1", aliases=("exec",), mutating=True,
                         details={"verb": "create", "resource": "pods", "subresource": "exec", "name": "redis-1"})
    no_state = FixJudgement(LOGIC, None, [flush], True)
    assert no_state.cause_fixed is None
    # ... unless a part the evidence does judge is not done: then the cause is not gone
    assert FixJudgement(LOGIC, None, [], True).cause_fixed is False
    no_audit = FixJudgement(LOGIC, {"objects": [dict(state(x="reverted")["objects"][0], ref="Deployment/api-gateway")]},
                            [], False)
    assert no_audit.cause_fixed is None


def test_any_of_and_an_object_the_fault_left_alone():
    entry = {"name": "auth_issues", "target": {"kind": "Deployment", "name": "api-gateway"},
             "cause_parts": [{"any_of": [{"object": "Secret/api-gateway-credentials"},
                                         {"object": "Secret/backend-api-credentials"}]}]}
    fault_in_place = {"objects": [
        {"ref": "Secret/api-gateway-credentials", "faulted": True, "verdict": "in_place",
         "paths": [{"path": "data.backend-api-key", "verdict": "in_place", "before": "a", "after": "b", "live": "b"}]},
        {"ref": "Secret/backend-api-credentials", "faulted": False, "verdict": "untouched", "paths": []}]}
    write = item(5, "edit_secret", resource="secrets", name="backend-api-credentials")
    assert FixJudgement(entry, fault_in_place, [write], True).cause_fixed is False
    backend_changed = {"objects": [fault_in_place["objects"][0], {
        "ref": "Secret/backend-api-credentials", "faulted": False, "verdict": "changed",
        "paths": [{"path": "data.api-key", "verdict": "changed", "before": "a", "after": "a", "live": "c"}]}]}
    fix = FixJudgement(entry, backend_changed, [write], True)
    assert fix.cause_fixed is True and fix.cause_items() == [write]


def test_default_parts_are_the_objects_the_fault_changed_and_metadata_writes_are_not_the_fix():
    entry = {"name": "memory_limits", "target": {"kind": "Deployment", "name": "backend-api"}}
    fixed = {"objects": [{"ref": "Deployment/backend-api", "faulted": True, "verdict": "changed", "paths": [
        {"path": "spec.template.spec.containers[backend-api].resources.limits.memory", "verdict": "changed",
         "before": "96Mi", "after": "12Mi", "live": "128Mi"}]}]}
    note = item(3, "edit_deployment", name="backend-api", changed=["metadata.annotations.note"])
    limit = item(9, "edit_deployment", name="backend-api",
                 changed=["spec.template.spec.containers[0].resources.limits.memory"])
    fix = FixJudgement(entry, fixed, [note, limit], True)
    assert [p["part"] for p in fix.parts] == ["Deployment/backend-api"]
    assert fix.cause_fixed is True and fix.cause_items() == [limit]


def test_a_request_part():
    entry = {"name": "storage_issues", "target": {"kind": "Deployment", "name": "backend-api"},
             "cause_parts": [{"any_of": [{"object": "{target_ref}"}, {"request": {
                 "verb": "create", "resource": "persistentvolumeclaims", "name": "backend-api-cache"}}]}]}
    in_place = {"objects": [{"ref": "Deployment/backend-api", "faulted": True, "verdict": "in_place", "paths": [
        {"path": "spec.template.spec.volumes[cache]", "verdict": "in_place", "before": "<absent>", "after": "x",
         "live": "x"}]}]}
    create = item(4, "change_other", verb="create", resource="persistentvolumeclaims", name="backend-api-cache")
    failed = item(2, "change_other", verb="create", resource="persistentvolumeclaims", name="backend-api-cache",
                  ok=False)
    assert FixJudgement(entry, in_place, [failed], True).cause_fixed is False
    assert FixJudgement(entry, in_place, [failed, create], True).cause_items() == [create]


@pytest.mark.parametrize("parts, field", [
    ([], "cause_parts"),
    ([{"object": "backend-api"}], "cause_parts[0].object"),
    ([{"object": "Deployment/x", "action": "cache_flush"}], "cause_parts[0]"),
    ([{"action": "dance"}], "cause_parts[0].action"),
    ([{"any_of": [{"paths": ["x"]}]}], "cause_parts[0].any_of[0]"),
    ([{"object": "Deployment/x", "colour": "red"}], "cause_parts[0].colour"),
])
def test_bad_parts_name_the_field(parts, field):
    with pytest.raises(ScoringInputError) as err:
        check_parts(parts, "faults.yml")
    assert err.value.field == field
