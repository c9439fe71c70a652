# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side dead-man's switch: roll a drill back when its ansible-playbook ends.

Ansible runs no ``always`` block after Ctrl-C, and nothing at all after SIGKILL. The
drill engine therefore starts this watchdog, detached, when it arms the drill::

    python3 -m ansible_collections.opsdrill.drills.plugins.module_utils.runtime.watchdog
        --pid 4242 --namespace seo-tool --drill-id seo-tool-20261122T173000Z --until 1795370400
        [--kubeconfig FILE] [--context NAME] [--artifacts-dir DIR]

It checks every ``--interval`` seconds. When process ``--pid`` is gone while the drill
state is still armed (the playbook did not get to its own rollback), it records the
interruption in the timeline, restores the snapshot with the same code as the
in-cluster switch (``restore_plan.run_restore``), releases the drill Lease and removes the
in-cluster switch. It exits without touching anything when the state is disarmed or
gone, belongs to another drill, or at ``--until`` (the in-cluster Job covers the rest).

Stdlib only (plus PyYAML for a YAML kubeconfig); it runs from a copy of the runtime package
(``runtime.tree()``) on ``PYTHONPATH``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman as _deadman
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state as _state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_timeline as _timeline
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest as _k8s
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan as _plan
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as _snap
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError

LEASE_NAME = "opsdrill-drill"
# How long the watchdog waits for the restored Deployments to roll out before verifying.
ROLLOUT_TIMEOUT_S = 240


def _log(msg, **data):
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "service": "opsdrill-watchdog", "msg": msg}
    record.update(data)
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def process_alive(pid, start=None):
    """Whether ``pid`` still runs (and is the same process: same start time)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            text = handle.read()
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] == "Z":
            return False
        if start is not None and int(fields[19]) != int(start):
            return False
    except (OSError, ValueError, IndexError):
        pass
    return True


def read_state(client, namespace):
    configmap = client.get_or_none("ConfigMap", _snap.STATE_CONFIGMAP, _snap.control_namespace(namespace))
    if configmap is None:
        return None
    return json.loads((configmap.get("data") or {}).get("state.json") or "{}")


def local_copy(artifacts_dir, drill_id):
    """``(state, objects)`` of the controller's own drill-state.json, or None: the trusted
    copy when the cluster's state vanished or fails its integrity check."""
    if not artifacts_dir:
        return None
    try:
        with open(os.path.join(artifacts_dir, "drill-state.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    state = data.get("state") or {}
    if state.get("drill_id") != drill_id:
        return None
    return state, list(data.get("snapshot") or [])


def finished(artifacts_dir):
    """The timeline says the drill was rolled back and verified (or ended)."""
    if not artifacts_dir:
        return False
    events = {e.get("event") for e in _timeline.read(artifacts_dir)}
    return bool(events & {"verify_passed", "drill_finished"})


def still_ours(state, drill_id):
    return bool(state) and state.get("drill_id") == drill_id and bool(state.get("armed"))


def record(artifacts_dir, state, event, data):
    if not artifacts_dir:
        return
    drill = {key: state.get(key) for key in ("drill_id", "scenario", "variant", "fault", "namespace")}
    try:
        _timeline.append(artifacts_dir, _timeline.make_event(event, drill, data))
    except (OSError, _timeline.TimelineError) as exc:
        _log("timeline not written", error=str(exc), event=event)


def verify_after_restore(client, args, state, outcome, timeout_s=ROLLOUT_TIMEOUT_S):
    """Verify like the playbook's rollback would have: the restore's own re-read of the
    live objects found no difference, and the restored Deployments finish rolling out."""
    try:
        objects = getattr(args, "objects", None)
        if objects is None:
            _loaded, objects, _cm = _state.load_state(client, args.namespace)
        pending = _plan.wait_for_rollouts(client, args.namespace, objects, log=_log, timeout_s=timeout_s)
    except (RestoreError, _k8s.K8sError) as exc:
        pending, problems = None, ["steady state not checked: %s" % exc]
    else:
        problems = ["Deployment/%s: rollout not finished after %d s" % (name, timeout_s) for name in pending]
    if pending == []:
        record(args.artifacts_dir, state, "steady_state_restored", {"by": "rollback"})
    differences = outcome.get("remaining") or []
    ok = not differences and not problems
    record(args.artifacts_dir, state, "verify_passed" if ok else "verify_failed",
           {"by": "watchdog", "ok": ok, "differences": differences, "problems": problems})
    return ok


def interrupted(client, args, state):
    """Roll the drill back after its controller went away."""
    error = ("controller process %d ended while the drill was armed (interrupted or killed); "
             "the watchdog rolled the drill back" % args.pid)
    events = [e.get("event") for e in _timeline.read(args.artifacts_dir)] if args.artifacts_dir else []
    if "response_window_started" in events and "response_window_ended" not in events:
        record(args.artifacts_dir, state, "response_window_ended", {"reason": "interrupted"})
    record(args.artifacts_dir, state, "drill_failed",
           {"phase": state.get("phase") or "unknown", "error": error})
    # A worker of the killed run may still be running a module (an injection, a wait):
    # it must not act on the namespace while or after the watchdog restores it.
    killed = _deadman.kill_orphaned_workers(getattr(args, "cmdline", None), getattr(args, "launcher", None),
                                            getattr(args, "pid_start", None))
    if killed:
        _log("killed the orphaned workers of the controller", pids=killed)
    record(args.artifacts_dir, state, "rollback_started", {"by": "watchdog", "killed_workers": killed})
    local = local_copy(args.artifacts_dir, args.drill_id)
    outcome = _plan.run_restore(client, args.namespace, by="deadman", only_if_armed=True,
                                log=_log, fallback=local)
    if outcome.get("source") == "local":
        _log("the cluster's drill state was unusable: restored from the controller's local copy",
             problem=outcome.get("state_problem"), level="ERROR")
        args.objects = local[1]
    record(args.artifacts_dir, state, "rollback_finished",
           {"by": "watchdog", "ok": bool(outcome.get("ok")), "actions": outcome.get("actions") or [],
            "remaining": outcome.get("remaining") or [], "error": outcome.get("error")})
    _log("restore finished", ok=outcome.get("ok"), error=outcome.get("error"),
         actions=outcome.get("actions"), skipped=outcome.get("skipped"))
    if not outcome.get("ok"):
        record(args.artifacts_dir, state, "verify_failed",
               {"by": "watchdog", "ok": False, "differences": outcome.get("remaining") or [],
                "problems": [outcome.get("error")] if outcome.get("error") else []})
        return 1
    verified = verify_after_restore(client, args, state, outcome)
    try:
        removed = _deadman.remove(client, args.namespace)
        if verified:
            # The state names the fault (the answer key): once the namespace is back and
            # verified, nothing of the drill stays where the team can read it. The
            # timeline and the local drill-state.json keep the record.
            removed += _deadman.remove_state(client, args.namespace)
        else:
            _log("drill state kept: the restore did not verify; run rollback.yml", namespace=args.namespace)
        record(args.artifacts_dir, state, "deadman_disarmed", {"by": "watchdog", "removed": removed})
        lease = client.get_or_none("Lease", LEASE_NAME, _snap.control_namespace(args.namespace))
        if lease and (lease.get("spec") or {}).get("holderIdentity") == args.drill_id:
            client.delete("Lease", LEASE_NAME, _snap.control_namespace(args.namespace), missing_ok=True)
    except _k8s.ApiError as exc:
        _log("cleanup incomplete", error=str(exc))
    record(args.artifacts_dir, state, "drill_finished",
           {"result": "interrupted", "restored_by": "watchdog"})
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="watchdog.py", description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, required=True, help="ansible-playbook process to watch")
    parser.add_argument("--pid-start", type=int, default=None, help="its start time (/proc stat)")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--drill-id", required=True)
    parser.add_argument("--until", type=float, required=True, help="epoch seconds: stop watching")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--context", default=None)
    parser.add_argument("--artifacts-dir", default=None)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--state-every", type=float, default=10.0,
                        help="seconds between drill-state checks while the controller runs")
    args = parser.parse_args(argv)
    try:
        client = _k8s.Client.from_env(args.kubeconfig, args.context)
    except _k8s.K8sError as exc:
        _log("configuration error", error=str(exc))
        return 2
    # Read while the controller runs: its workers carry the same command line.
    args.cmdline = _deadman.command_line(args.pid)
    args.launcher = _deadman.parent_pid(args.pid)
    _log("watching", pid=args.pid, namespace=args.namespace, drill_id=args.drill_id, until=args.until)
    next_state_check = 0.0
    while time.time() < args.until:
        alive = process_alive(args.pid, args.pid_start)
        if not alive or time.time() >= next_state_check:
            try:
                state = read_state(client, args.namespace)
            except (_k8s.ApiError, ValueError) as exc:
                _log("state unreadable", error=str(exc))
                time.sleep(5)
                continue
            local = None
            if state is None and not alive and not finished(args.artifacts_dir):
                local = local_copy(args.artifacts_dir, args.drill_id)
            if local is not None:
                # Armed, controller gone, and the state vanished from the cluster: a failure,
                # never "nothing to guard". The local copy restores.
                _log("drill state vanished from the cluster while the drill was armed", level="ERROR")
                state = dict(local[0], armed=True)
            if not still_ours(state, args.drill_id):
                _log("drill disarmed or gone: nothing to guard",
                     phase=(state or {}).get("phase"), state_drill=(state or {}).get("drill_id"))
                return 0
            if not alive:
                _log("controller gone while the drill is armed: rolling back", pid=args.pid)
                try:
                    return interrupted(client, args, state)
                except (_k8s.K8sError, RestoreError, _snap.SnapshotError) as exc:
                    _log("rollback failed", error=str(exc))
                    return 1
            next_state_check = time.time() + args.state_every
        time.sleep(args.interval)
    _log("watch ended at --until; the in-cluster switch covers the rest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
