"""The drill runner's least privilege: no cluster-wide right, and every right it hands the
dead-man's switch it holds itself (the API server refuses to create a Role granting more
than its creator has - RBAC escalation prevention)."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.filter import drill_runner_rbac as rbac_filter
from ansible_collections.opsdrill.drills.plugins.module_utils import runner_access
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman


def _grants(rules):
    """(apiGroup, resource, verb, resourceName or None) tuples a rule list allows."""
    return {(group, resource, verb, name)
            for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"] for name in rule.get("resourceNames") or [None]}


def _holds(held, wanted):
    names = {(g, r, v) for g, r, v, n in held if n is None}
    return [w for w in wanted if w not in held and w[:3] not in names]


def test_the_runner_holds_what_it_grants_the_switch():
    assert _holds(_grants(runner_access.DRILL_RULES), _grants(deadman.RULES)) == []
    assert _holds(_grants(runner_access.CONTROL_RULES), _grants(deadman.CONTROL_RULES)) == []


def test_nothing_is_cluster_wide_and_no_wildcard():
    objects = runner_access.manifests("team-a", "opsdrill-runner")
    assert {o["kind"] for o in objects} == {"ServiceAccount", "Role", "RoleBinding"}
    assert {o["metadata"]["namespace"] for o in objects} == {"team-a", "opsdrill-ctl-team-a"}
    for role in (o for o in objects if o["kind"] == "Role"):
        for group, resource, verb, _name in _grants(role["rules"]):
            assert "*" not in (group, resource, verb)
            assert not resource.startswith(("nodes", "clusterrole", "persistentvolumes", "namespaces/"))
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "opsdrill-runner",
                                        "namespace": "opsdrill-ctl-team-a"}]


def test_the_filter_refuses_an_empty_name():
    assert rbac_filter.drill_runner_rbac("team-a", "runner", "ops")[0]["metadata"]["namespace"] == "ops"
    with pytest.raises(AnsibleFilterError, match="service_account"):
        rbac_filter.drill_runner_rbac("team-a", "")
