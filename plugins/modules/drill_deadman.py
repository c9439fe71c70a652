#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_deadman
short_description: Arm or disarm a drill's dead-man's switch
version_added: 0.1.0
description:
  - O(state=armed) creates, in O(namespace), a ServiceAccount, Role and RoleBinding
    C(opsdrill-deadman), ConfigMap C(opsdrill-deadman-code) with the restore code
    (C(runtime.sources()), the files of the runtime package, mounted at their package paths) and Job C(opsdrill-deadman) on a stock Python image.
    The Job restores the drill snapshot at O(deadline) unless the drill state is disarmed
    first (docs/contracts.md section 5). It covers a lost controller.
  - With O(watchdog) it also starts a detached watchdog on the controller that restores at
    once when the C(ansible-playbook) process ends while the drill is armed (Ctrl-C, kill),
    because Ansible runs no C(always) block after Ctrl-C.
  - O(state=disarmed) sets C(armed=false) in the drill state (the Job and the watchdog then
    exit on their own) and removes the switch's objects; O(state=absent) only removes them.
  - In check mode nothing is written.
author: opsdrill maintainers (@opsdrill)
options:
  state:
    description: Armed, disarmed, or absent (objects removed, state untouched).
    type: str
    choices: [armed, disarmed, absent]
    default: armed
  remove_state:
    description:
      - With O(state=disarmed) or O(state=absent), also delete the drill state (ConfigMap and Secret
        C(opsdrill-drill-state) and the key Secret in the control namespace), once the rollback has
        verified that the snapshot is live again.
    type: bool
    default: false
  remove_control_namespace:
    description:
      - With O(state=absent), also delete the namespace's control namespace C(opsdrill-ctl-<namespace>)
        (teardown), when its label says it is opsdrill's.
    type: bool
    default: false
  drill_id:
    description: The drill id (labels; with O(state=disarmed), another drill's state is left alone).
    type: str
  deadline:
    description: Hard deadline (epoch seconds). Required with O(state=armed).
    type: float
  image:
    description: Stock Python 3.11+ image for the Job (stdlib only is used).
    type: str
    default: python:3.12-slim
  image_pull_policy:
    description: Pull policy of that image.
    type: str
    choices: [Always, IfNotPresent, Never]
    default: IfNotPresent
  poll_s:
    description: Seconds between the Job's checks of the drill state.
    type: int
    default: 5
  watchdog:
    description: Also start the controller-side watchdog.
    type: bool
    default: true
  watch_pid:
    description: Process the watchdog watches; default the C(ansible-playbook) process running this module.
    type: int
  artifacts_dir:
    description: The drill's artifacts dir (watchdog files and log, timeline events).
    type: path
  watchdog_dir:
    description: Where the watchdog's files go without O(artifacts_dir) (C(<watchdog_dir>/<drill_id>/watchdog)).
    type: path
    default: ~/.local/share/opsdrill/watchdog
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Arm the dead-man's switch
  opsdrill.drills.drill_deadman:
    namespace: seo-tool
    drill_id: "{{ drill.drill_id }}"
    deadline: "{{ drill_deadline }}"
    image: localhost/opsdrill/python:3.11
    image_pull_policy: Never
    artifacts_dir: "{{ drill_artifacts_dir }}"

- name: Disarm it
  opsdrill.drills.drill_deadman:
    namespace: seo-tool
    drill_id: "{{ drill.drill_id }}"
    state: disarmed
"""

RETURN = r"""
objects:
  description: The switch's objects written or removed, as Kind/name.
  returned: success
  type: list
  elements: str
watchdog_pid:
  description: Pid of the controller-side watchdog (armed, when started).
  returned: success
  type: int
watched_pid:
  description: The process the watchdog watches.
  returned: success
  type: int
job:
  description: What the Job did before it was removed (disarmed) - C(exited), C(running), C(not running), C(absent).
  returned: success
  type: str
drill_state:
  description: The drill state's arming after the call (disarmed) - C(disarmed), C(already disarmed), C(absent).
  returned: success
  type: str
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
# The entry points the switch and the watchdog run: imported so that AnsiballZ carries them
# (and what they import) for runtime.sources() and runtime.tree().
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore  # noqa: F401 pylint: disable=unused-import
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import watchdog  # noqa: F401 pylint: disable=unused-import
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError


SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        state={"type": "str", "choices": ["armed", "disarmed", "absent"], "default": "armed"},
        remove_state={"type": "bool", "default": False},
        remove_control_namespace={"type": "bool", "default": False},
        drill_id={"type": "str"},
        deadline={"type": "float"},
        image={"type": "str", "default": "python:3.12-slim"},
        image_pull_policy={"type": "str", "choices": ["Always", "IfNotPresent", "Never"],
                           "default": "IfNotPresent"},
        poll_s={"type": "int", "default": 5},
        watchdog={"type": "bool", "default": True},
        watch_pid={"type": "int"},
        artifacts_dir={"type": "path"},
        watchdog_dir={"type": "path", "default": "~/.local/share/opsdrill/watchdog"},
        **engine_client.CLUSTER_ARGUMENT_SPEC),
    required_if=[("state", "armed", ("drill_id", "deadline"))],
    supports_check_mode=True,
)


def _watchdog_kubeconfig(directory, client):
    """The engine's credentials as a private kubeconfig file for the watchdog (None in a pod)."""
    config = engine_client.resolved_kubeconfig(client)
    if config is None:
        return None
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, "kubeconfig.json")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return path


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    namespace = params["namespace"]
    result = {"changed": True, "objects": [], "watchdog_pid": None, "watched_pid": None}
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"])
        if params["state"] == "armed":
            objects = deadman.manifests(namespace, params["drill_id"], params["deadline"], params["image"],
                                        params["image_pull_policy"], poll_s=params["poll_s"])
            result["objects"] = ["%s/%s" % (o["kind"], o["metadata"]["name"]) for o in objects]
            if module.check_mode:
                module.exit_json(**result)
            # The pod starts (about a second) while the watchdog is written and started.
            deadman.arm(client, namespace, objects)
            if params["watchdog"]:
                watched = params["watch_pid"] or deadman.controller_pid()
                if watched:
                    directory = os.path.join(params["artifacts_dir"] or os.path.join(params["watchdog_dir"], params["drill_id"]),
                                             "watchdog")
                    result["watched_pid"] = watched
                    result["watchdog_pid"] = deadman.spawn_watchdog(
                        directory, watched, namespace, params["drill_id"], params["deadline"],
                        _watchdog_kubeconfig(directory, client), None, params["artifacts_dir"])
                else:
                    module.warn("no ansible-playbook process found above this module: the controller-side "
                                "watchdog is not started; the in-cluster switch restores at the deadline")
            deadman.wait_running(client, namespace)
        elif params["state"] == "disarmed":
            if module.check_mode:
                module.exit_json(**result)
            outcome = deadman.disarm(client, namespace, params["drill_id"])
            if params["remove_state"]:
                outcome["removed"] += deadman.remove_state(client, namespace)
            result.update(objects=outcome["removed"], job=outcome["job"], drill_state=outcome["state"])
            result["changed"] = bool(outcome["removed"]) or outcome["state"] == "disarmed"
        else:
            if module.check_mode:
                module.exit_json(**result)
            result["objects"] = deadman.remove(client, namespace)
            if params["remove_state"]:
                result["objects"] += deadman.remove_state(client, namespace)
            if params["remove_control_namespace"]:
                result["objects"] += deadman.remove_control_namespace(client, namespace)
            result["changed"] = bool(result["objects"])
    except (engine_client.ClusterUnreachable, k8s_rest.K8sError, RestoreError) as exc:
        module.fail_json(msg=str(exc), **result)
    result["checked_at"] = time.time()
    module.exit_json(**result)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
