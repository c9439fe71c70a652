#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_snapshot
short_description: Snapshot every object a drill fault touches into the drill state
version_added: 0.1.0
description:
  - GETs every object of the fault's C(touches), plans the fault on them (so a fault that
    cannot apply is refused before anything is written) and writes the drill state
    (docs/contracts.md section 5) into the namespace - ConfigMap C(opsdrill-drill-state),
    plus Secret C(opsdrill-drill-state) when Secrets are snapshotted - and a local copy
    C(drill-state.json) (mode 0600) into O(artifacts_dir).
  - The state is armed from here on; the restore (C(opsdrill.drills.drill_restore), the
    dead-man's switch) puts exactly these objects back.
  - In check mode nothing is written; the objects that would be snapshotted are returned.
author: opsdrill maintainers (@opsdrill)
options:
  entry:
    description: The resolved catalog entry (C(opsdrill.drills.drill_catalog) lookup).
    type: dict
    required: true
  drill:
    description: The drill, C({drill_id, scenario, variant, fault, namespace}).
    type: dict
    required: true
  deadline:
    description: The drill's hard deadline (epoch seconds) for the dead-man's switch.
    type: float
    required: true
  seed:
    description: The seed that picked the fault (recorded in the state).
    type: int
  artifacts_dir:
    description: Where the local copy goes; none without it.
    type: path
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Snapshot what the fault touches
  opsdrill.drills.drill_snapshot:
    namespace: seo-tool
    entry: "{{ drill_fault.entry }}"
    drill: "{{ drill }}"
    deadline: "{{ drill_deadline }}"
    artifacts_dir: "{{ drill_artifacts_dir }}"
"""

RETURN = r"""
objects:
  description: The snapshotted objects, as Kind/name.
  returned: success
  type: list
  elements: str
created:
  description: Objects the fault will create (deleted again by the restore).
  returned: success
  type: list
  elements: str
secret_snapshot:
  description: Whether Secrets went into the companion Secret.
  returned: success
  type: bool
local_file:
  description: The local copy (absent in check mode or without O(artifacts_dir)).
  returned: success
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine
from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


def write_local_copy(artifacts_dir, state, objects, entry, inventory=None):
    os.makedirs(artifacts_dir, mode=0o700, exist_ok=True)
    path = os.path.join(artifacts_dir, "drill-state.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"state": state, "snapshot": objects, "catalog_entry": entry,
                   "inventory": inventory}, handle, indent=1, sort_keys=True)
    return path


SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        entry={"type": "dict", "required": True},
        drill={"type": "dict", "required": True},
        deadline={"type": "float", "required": True},
        seed={"type": "int"},
        artifacts_dir={"type": "path"},
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
        state, objects, _ops = engine.take_snapshot(client, namespace, entry, params["drill"],
                                                    params["deadline"], params["seed"],
                                                    check_mode=module.check_mode)
    except (engine.EngineError, engine_client.ClusterUnreachable, k8s_rest.K8sError,
            snapshot.SnapshotError) as exc:
        module.fail_json(msg=str(exc))
    local_file = None
    if params["artifacts_dir"] and not module.check_mode:
        try:
            # Everything else in the namespace, so that the verify can report what the team
            # changed beyond the touched objects.
            inventory = engine.namespace_inventory(client, namespace)
        except k8s_rest.K8sError as exc:
            module.fail_json(msg="cannot list namespace %s for its inventory: %s" % (namespace, exc))
        local_file = write_local_copy(params["artifacts_dir"], state, objects, entry, inventory)
    module.exit_json(changed=True, objects=[snapshot.ref_of(o) for o in objects],
                     created=state["created"], local_file=local_file,
                     secret_snapshot=any(o.get("kind") == "Secret" for o in objects))


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
