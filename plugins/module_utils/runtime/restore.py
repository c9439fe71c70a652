# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The in-cluster dead-man's switch: the command line its Job runs.

The Job runs the runtime package (``runtime.tree()``) from a ConfigMap volume on
``PYTHONPATH``, on a stock Python image::

    python3 -m ansible_collections.opsdrill.drills.plugins.module_utils.runtime.restore
        --namespace seo-tool --deadline 1795370400
        [--state-configmap opsdrill-drill-state] [--state-namespace NS] [--poll 10]

It waits for the deadline (the state's ``deadline`` wins, so the engine can extend it
without restarting the pod), then, unless the drill state says disarmed, restores
(``restore_plan.run_restore``) and writes the outcome into the state. Exit 0: disarmed
or restored; 1: restore failed; 2: bad arguments or configuration.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state as _state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest as _k8s
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan as _plan
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as _snap
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError

__all__ = ["deadman", "main"]


def _log(event, **data):
    record = {"ts": _state.now_iso(), "service": "opsdrill-deadman", "msg": event}
    record.update(data)
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def deadman(client, namespace, deadline, name=_snap.STATE_CONFIGMAP, state_namespace=None,
            poll_s=10.0, sleep=time.sleep, now=time.time, log=_log):
    """Wait for the deadline, then restore unless disarmed. Returns the exit code."""
    state_ns = _state.state_namespace_for(namespace, state_namespace)
    due, drill_id = deadline, None
    while True:
        try:
            configmap = client.get_or_none("ConfigMap", name, state_ns)
            state = json.loads(((configmap or {}).get("data") or {}).get("state.json") or "{}")
        except (_k8s.ApiError, _k8s.K8sError, ValueError) as exc:
            # An API hiccup or a garbled state: keep guarding, and past the deadline try the
            # restore (run_restore checks the state's integrity and says what is wrong).
            log("state unreadable, retrying", error=str(exc))
            if now() >= due:
                break
            sleep(min(poll_s, max(due - now(), 0.5)))
            continue
        if configmap is None:
            log("no drill state: nothing to guard (the engine removes it after a verified "
                "rollback; anything else is an error)", configmap=name, namespace=state_ns,
                level="ERROR")
            return 0
        if not state.get("armed"):
            log("disarmed", phase=state.get("phase"), drill_id=state.get("drill_id"))
            return 0
        drill_id = state.get("drill_id")
        try:
            due = float(state.get("deadline") or deadline)
        except (TypeError, ValueError):
            due = deadline
        left = due - now()
        if left <= 0:
            break
        sleep(min(poll_s, left))
    log("deadline passed: restoring", namespace=namespace, deadline=due, drill_id=drill_id)
    outcome = _plan.run_restore(client, namespace, name, state_ns, by="deadman", only_if_armed=True,
                                sleep=sleep, log=log)
    log("restore finished", **{k: v for k, v in outcome.items() if k != "remaining"},
        remaining=len(outcome.get("remaining") or []))
    return 0 if outcome.get("ok") else 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="restore.py",
        description="opsdrill dead-man's switch: restore NAMESPACE to its drill snapshot "
                    "at DEADLINE unless the drill state is disarmed.")
    parser.add_argument("--namespace", required=True, help="drill namespace")
    parser.add_argument("--state-configmap", default=_snap.STATE_CONFIGMAP)
    parser.add_argument("--state-namespace", default=None,
                        help="namespace of the drill state (default: the control namespace "
                             "opsdrill-ctl-NAMESPACE)")
    parser.add_argument("--deadline", type=float, required=True,
                        help="epoch seconds; the state's deadline, when set, wins")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between state checks")
    parser.add_argument("--kubeconfig", default=None, help="default: in-cluster")
    parser.add_argument("--now", action="store_true",
                        help="restore at once if armed (ignore the deadline)")
    args = parser.parse_args(argv)
    try:
        client = _k8s.Client.from_env(args.kubeconfig)
    except _k8s.K8sError as exc:
        _log("configuration error", error=str(exc))
        return 2
    deadline = 0 if args.now else args.deadline
    try:
        if args.now:
            outcome = _plan.run_restore(client, args.namespace, args.state_configmap,
                                        args.state_namespace, by="deadman", only_if_armed=True)
            _log("restore finished", ok=outcome.get("ok"), error=outcome.get("error"))
            return 0 if outcome.get("ok") else 1
        return deadman(client, args.namespace, deadline, args.state_configmap,
                       args.state_namespace, poll_s=args.poll)
    except (RestoreError, _k8s.K8sError, _snap.SnapshotError) as exc:
        _log("restore failed", error=str(exc))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
