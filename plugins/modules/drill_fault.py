#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_fault
short_description: Inject a drill fault into a namespace
version_added: 0.1.0
description:
  - Plans the catalog entry's steps on the live objects (C(fault_handlers.plan)), records
    the objects the fault creates in the drill state, applies the operations and confirms
    the change is visible in the API (docs/contracts.md section 4).
  - The drill state must have been written first by C(opsdrill.drills.drill_snapshot) for
    the same drill, so that every change can be restored.
  - A C(release) step is also committed to the local deploy repository
    (C(services/<name>/deployment.yaml)), so C(git log -p services/<name>) shows the release.
  - In check mode nothing changes; the result lists what would change and, with C(--diff),
    shows each object before and after (Secret values redacted).
author: opsdrill maintainers (@opsdrill)
options:
  entry:
    description: The resolved catalog entry.
    type: dict
    required: true
  drill:
    description: The drill, C({drill_id, scenario, variant, fault, namespace}).
    type: dict
    required: true
  deploy_repo:
    description: The namespace's deploy repository (a git repository, created when missing); empty disables it.
    type: path
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Inject the fault
  opsdrill.drills.drill_fault:
    namespace: seo-tool
    entry: "{{ drill_fault.entry }}"
    drill: "{{ drill }}"
    deploy_repo: ~/.local/share/opsdrill/deploy-repo/seo-tool
  register: drill_injected
"""

RETURN = r"""
fault_change:
  description:
    - Per touched object, the fault's change as the API shows it after the injection
      (C(ref), C(changes) as C({path, before, after}), C(injected) state; Secret values as
      digests). M(opsdrill.drills.drill_fix_state) judges the team's fix against it.
  returned: success, not in check mode
  type: list
  elements: dict
changes:
  description: One line per changed field, C(Kind/name) then the field path, the value before and after.
  returned: success
  type: list
  elements: str
operations:
  description: The operations applied (or that would be).
  returned: success
  type: list
  elements: str
started_at:
  description: When the module started (epoch seconds).
  returned: success
  type: float
injected_at:
  description: When the change was visible in the API (epoch seconds).
  returned: success and not check mode
  type: float
inject_latency_s:
  description: Seconds from the module's start to the change being visible in the API.
  returned: success and not check mode
  type: float
restart_baseline:
  description: Container restart counts at injection ("pod/container" -> count), for C(drill_wait).
  returned: success
  type: dict
deploy_repo:
  description: The deploy repository and the commits made.
  returned: success
  type: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import deploy_repo
from ansible_collections.opsdrill.drills.plugins.module_utils import detect
from ansible_collections.opsdrill.drills.plugins.module_utils import engine
from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError


def _text(obj):
    if obj is None:
        return ""
    try:
        import yaml
        return yaml.safe_dump(obj, default_flow_style=False, sort_keys=True, width=120)
    except ImportError:
        return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def _record_releases(path, entry, live, ops):
    repo = deploy_repo.DeployRepo(path)
    after = {"%s/%s" % (op["object"]["kind"], op["object"]["metadata"]["name"]): op["object"]
             for op in ops if op["op"] == "replace"}
    commits = []
    for ref, message in deploy_repo.release_steps(entry):
        if ref in after:
            commits += repo.record_release(ref, live[ref], after[ref], message)
    return {"path": repo.path, "commits": commits}


SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        entry={"type": "dict", "required": True},
        drill={"type": "dict", "required": True},
        deploy_repo={"type": "path"},
        **engine_client.CLUSTER_ARGUMENT_SPEC),
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    namespace, entry = params["namespace"], params["entry"]
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"])
        baseline = detect.restart_counts(client.list("Pod", namespace))
        outcome = engine.inject(client, namespace, entry, params["drill"], check_mode=module.check_mode)
    except (engine.EngineError, engine_client.ClusterUnreachable, k8s_rest.K8sError,
            RestoreError) as exc:
        module.fail_json(msg=str(exc))
    result = {
        "changed": True, "changes": outcome["changes"], "operations": outcome["operations"],
        "started_at": round(outcome["started"], 3), "restart_baseline": baseline,
        "diff": [{"before_header": "%s (live)" % d["ref"], "after_header": "%s (with the fault)" % d["ref"],
                  "before": _text(d["before"]), "after": _text(d["after"])}
                 for d in engine.diff_entries(outcome["live"], outcome["ops"])],
        "deploy_repo": {"path": params["deploy_repo"], "commits": []},
    }
    if not module.check_mode:
        result["injected_at"] = round(outcome["visible"], 3)
        result["inject_latency_s"] = round(outcome["visible"] - outcome["started"], 3)
        result["fault_change"] = outcome["fault_change"]
        if params["deploy_repo"] and deploy_repo.release_steps(entry):
            try:
                result["deploy_repo"] = _record_releases(params["deploy_repo"], entry, outcome["live"],
                                                         outcome["ops"])
            except deploy_repo.DeployRepoError as exc:
                module.warn("the release is live but not in the deploy repository: %s" % exc)
    module.exit_json(**result)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
