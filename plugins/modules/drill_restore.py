#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_restore
short_description: Roll a drill back to its snapshot, or verify that it is back
version_added: 0.1.0
description:
  - O(mode=restore) restores the namespace from its drill state with
    C(restore_plan.run_restore), the code the dead-man's switch runs. It recreates or replaces
    every snapshotted object that differs, deletes the objects the fault created, runs the
    entry's post-restore operations (e.g. a redis FLUSHDB) once, and records the outcome in
    the state. A second run changes nothing. Release faults are reverted in the deploy
    repository too.
  - O(mode=verify) compares every snapshotted object with the live one
    (C(snapshot.diff)) and fails listing every difference (with O(fail_on_difference)).
  - In check mode the restore only reports the differences it would repair.
author: opsdrill maintainers (@opsdrill)
options:
  mode:
    description: Restore, or only verify.
    type: str
    choices: [restore, verify]
    default: restore
  fail_on_difference:
    description: With O(mode=verify), fail when a difference is left.
    type: bool
    default: true
  deploy_repo:
    description: The namespace's deploy repository; release faults get a revert commit there.
    type: path
  scrub_local_secrets:
    description:
      - With O(mode=verify) and O(local_state), once every object equals its snapshot, replace the
        Secret values in the local copy with digests (the drill no longer needs them).
    type: bool
    default: false
  local_state:
    description:
      - The controller's own copy of the drill state (C(drill-state.json) in the drill's
        artifacts dir). It is used when the cluster's state is missing, fails its
        integrity check, or differs from it; the result says so (RV(source)).
    type: path
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Roll the drill back
  opsdrill.drills.drill_restore:
    namespace: seo-tool

- name: Verify every touched object equals its snapshot
  opsdrill.drills.drill_restore:
    namespace: seo-tool
    mode: verify
"""

RETURN = r"""
found:
  description: Whether the namespace had a drill state.
  returned: always
  type: bool
ok:
  description: Restore - whether it finished with nothing left; verify - no difference.
  returned: always
  type: bool
actions:
  description: What the restore did.
  returned: mode restore
  type: list
  elements: str
differences:
  description: Every difference left (verify), or repaired (check mode).
  returned: always
  type: list
  elements: str
error:
  description: The restore's error, if any.
  returned: mode restore
  type: str
by:
  description: Who restored the state last (C(rollback), C(deadman)) according to the state.
  returned: when found
  type: str
source:
  description: Where the restored state came from - C(cluster), or C(local) (the controller's copy).
  returned: when found
  type: str
collateral:
  description:
    - With O(mode=verify) and O(local_state), what changed in the namespace since the snapshot beyond
      the touched objects, as C(Kind/name) followed by C(changed), C(appeared) or C(vanished); reported, not restored.
  returned: mode verify
  type: list
  elements: str
scrubbed:
  description: The local copy's Secret values were replaced by digests (O(scrub_local_secrets)).
  returned: when scrubbed
  type: bool
state_problem:
  description: Why the cluster's state was not used (missing, changed, unreadable).
  returned: when O(local_state) was used
  type: str
deploy_repo_commits:
  description: Revert commits made in the deploy repository.
  returned: mode restore
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import deploy_repo
from ansible_collections.opsdrill.drills.plugins.module_utils import engine
from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


def _collateral(client, namespace, path, state):
    """What changed in the namespace beyond the touched objects since the snapshot (from the
    local copy's inventory; [] without one)."""
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        before = json.load(handle).get("inventory")
    if not before:
        return []
    skip = set(state.get("touches") or []) | set(state.get("created") or [])
    return snapshot.inventory_changes(before, engine.namespace_inventory(client, namespace), skip)


def _scrub(path):
    """Secret values out of the local copy once the drill verified (kept 0600)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    data["snapshot"] = snapshot.redact_secrets(data.get("snapshot") or [])
    data["secrets_scrubbed"] = True
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return True


def _chosen_state(client, namespace, local, in_cluster):
    """The state to act on: the cluster's when it passes its check (and matches the local
    copy's digest), else the local copy. Returns (state, objects, (source, problem))."""
    problem = "the drill state is missing from %s" % snapshot.control_namespace(namespace)
    if in_cluster:
        try:
            state, objects, _cm = drill_state.load_state(client, namespace)
            if local is None or state.get("digest") == local[0].get("digest"):
                return state, objects, ("cluster", None)
            problem = "the cluster's drill state is not the one this controller wrote"
        except RestoreError as exc:
            if local is None:
                raise
            problem = str(exc)
    return local[0], local[1], ("local", problem)


def _revert_releases(path, state, objects):
    by_ref = {snapshot.ref_of(o): o for o in objects}
    repo = deploy_repo.DeployRepo(path)
    commits = []
    for ref, message in state.get("releases") or []:
        if ref in by_ref:
            commit = repo.record_revert(ref, by_ref[ref], message)
            if commit:
                commits.append(commit)
    return commits


def _local(path):
    """(state, objects) of the controller's drill-state.json, or None when absent."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RestoreError("local drill state %s is unreadable: %s" % (path, exc))
    return data["state"], list(data.get("snapshot") or [])


SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        mode={"type": "str", "choices": ["restore", "verify"], "default": "restore"},
        fail_on_difference={"type": "bool", "default": True},
        deploy_repo={"type": "path"},
        local_state={"type": "path"},
        scrub_local_secrets={"type": "bool", "default": False},
        **engine_client.CLUSTER_ARGUMENT_SPEC),
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    namespace = params["namespace"]
    result = {"changed": False, "found": False, "ok": True, "differences": []}
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"])
        local = _local(params["local_state"])
        in_cluster = client.get_or_none("ConfigMap", snapshot.STATE_CONFIGMAP,
                                        snapshot.control_namespace(namespace)) is not None
        if not in_cluster and local is None:
            result["msg"] = "namespace %s has no drill state: nothing to %s" % (namespace, params["mode"])
            module.exit_json(**result)
        state, objects, source = _chosen_state(client, namespace, local, in_cluster)
        result.update(found=True, by=(state.get("restore") or {}).get("by"), source=source[0],
                      state_problem=source[1])
        if params["mode"] == "verify" or module.check_mode:
            result["differences"] = engine.verify(client, namespace, state, objects)
            result["ok"] = not result["differences"]
            if params["mode"] == "verify":
                result["collateral"] = _collateral(client, namespace, params["local_state"], state)
                if result["ok"] and params["scrub_local_secrets"] and local is not None:
                    result["scrubbed"] = _scrub(params["local_state"])
                if result["differences"] and params["fail_on_difference"]:
                    module.fail_json(msg="%d difference(s) between the live objects and the drill snapshot:\n  %s"
                                     % (len(result["differences"]), "\n  ".join(result["differences"])), **result)
                module.exit_json(**result)
            result["changed"] = bool(result["differences"])
            module.exit_json(**result)
        outcome = restore_plan.run_restore(client, namespace, by="rollback", fallback=local)
    except (engine_client.ClusterUnreachable, k8s_rest.K8sError, RestoreError,
            snapshot.SnapshotError) as exc:
        module.fail_json(msg=str(exc), **result)
    result.update(changed=bool(outcome.get("actions")), ok=bool(outcome.get("ok")),
                  actions=outcome.get("actions") or [], differences=outcome.get("remaining") or [],
                  error=outcome.get("error"), by="rollback", deploy_repo_commits=[],
                  source=outcome.get("source"), state_problem=outcome.get("state_problem"),
                  refused=outcome.get("refused") or [])
    if outcome.get("source") == "local":
        state, objects = local
    if params["deploy_repo"] and state.get("releases"):
        try:
            result["deploy_repo_commits"] = _revert_releases(params["deploy_repo"], state, objects)
        except deploy_repo.DeployRepoError as exc:
            module.warn("the deploy repository was not reverted: %s" % exc)
    if not result["ok"]:
        module.fail_json(msg="the restore of namespace %s did not finish: %s%s"
                         % (namespace, outcome.get("error") or "differences remain",
                            "".join("\n  " + line for line in result["differences"])), **result)
    module.exit_json(**result)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
