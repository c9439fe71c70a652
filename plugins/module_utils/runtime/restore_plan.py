# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put a namespace back to its snapshot: plan the operations, apply them, wait for
the rollouts, record the outcome in the drill state.

``run_restore`` is the whole rollback (lock, load, restore, record, unlock): the
engine's, the watchdog's and the dead-man's switch's (``restore.py``). A restore is
idempotent: run it twice, the second run changes nothing.
"""
from __future__ import annotations

import os
import socket
import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state as _state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest as _k8s
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import ops as _ops
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as _snap
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import IntegrityError, RestoreError

ApiError = _k8s.ApiError

__all__ = ["CREATED_LABEL", "KIND_ORDER", "RESTORABLE_KINDS", "plan_restore", "restorable",
           "restore", "rollouts_pending", "run_restore", "wait_for_rollouts"]

# Fault handlers label what they create; only such objects are deleted on restore.
CREATED_LABEL = "opsdrill.io/created-by"
# Config before the workloads that read it; workloads before deleting what the fault
# created (a PVC is released once no pod template names it).
KIND_ORDER = ("Namespace", "ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim",
              "Service", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod")
# What a restore may write, always inside the drill namespace: never a cluster-scoped
# kind, whatever a state says.
RESTORABLE_KINDS = frozenset(KIND_ORDER) - {"Namespace"}


def _ref(kind, name):
    return "%s/%s" % (kind, name)


def _kind_rank(ref):
    kind = _ops.split_ref(ref)[0]
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


# --------------------------------------------------------------------------------------
# planning (pure)

def plan_restore(snapshot_objects, live, created=(), post_restore=()):
    """Operations that take ``live`` back to ``snapshot_objects``.

    ``live``: dict ``"Kind/name" -> object or None`` (None: does not exist; a created
    ref missing from the dict is deleted with missing_ok). ``created``: refs
    (``"Kind/name"`` or ``{"kind", "name"}``) the fault created; one that exists
    without the ``opsdrill.io/created-by`` label is left alone. ``post_restore``: ops
    run last (e.g. a redis flush). Unchanged objects produce no operation."""
    snaps = {_snap.ref_of(o): _snap.normalise(o) for o in snapshot_objects}
    ops = []
    for ref in sorted(snaps, key=lambda r: (_kind_rank(r), r)):
        snap_obj = snaps[ref]
        current = live.get(ref)
        if current is None:
            ops.append({"op": "create", "object": _snap.create_body(snap_obj), "restore": True,
                        "snapshot": snap_obj})
            continue
        changes = _snap.diff_object(snap_obj, current)
        if changes:
            ops.append({"op": "replace", "object": _snap.restore_body(snap_obj, current),
                        "snapshot": snap_obj, "changes": changes})
    created_refs = []
    for item in created:
        kind, name = _ops.split_ref(item)
        ref = _ref(kind, name)
        if ref in snaps or ref in created_refs:
            continue
        created_refs.append(ref)
    for ref in sorted(created_refs, key=lambda r: (-_kind_rank(r), r)):
        if ref in live and live[ref] is None:
            continue
        meta = (live.get(ref) or {}).get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue  # already going (a claim waits for its pods to let go of it)
        labels = meta.get("labels") or {}
        if ref in live and CREATED_LABEL not in labels:
            # Not made by a fault (it existed before, or was replaced by someone):
            # never delete what opsdrill did not create.
            continue
        kind, name = _ops.split_ref(ref)
        ops.append({"op": "delete", "kind": kind, "name": name, "missing_ok": True})
    ops.extend(dict(op) for op in post_restore)
    return ops


# --------------------------------------------------------------------------------------
# restore

def restorable(state, objects, namespace):
    """``(objects, created, refused)``: only what the catalog entry touches (the state's
    ``touches``) or the fault created, of namespaced kinds, with the namespace forced to
    the drill namespace. ``refused`` names what a restore will not write."""
    touches = set(state.get("touches") or [])
    keep, refused = [], []
    for obj in objects:
        ref = _snap.ref_of(obj)
        if obj.get("kind") not in RESTORABLE_KINDS or ref not in touches:
            refused.append(ref)
            continue
        obj = dict(obj, metadata=dict(obj.get("metadata") or {}, namespace=namespace))
        keep.append(obj)
    created = []
    for item in state.get("created") or []:
        kind, name = _ops.split_ref(item)
        if kind in RESTORABLE_KINDS:
            created.append(item)
        else:
            refused.append(_ref(kind, name))
    return keep, created, refused


def restore(client, namespace, state, objects, sleep=time.sleep, rounds=3, log=None, heartbeat=None):
    """Restore ``namespace`` to ``objects``; delete ``state["created"]``; run
    ``state["post_restore"]`` once (skipped when ``state["post_restore_done"]``).
    Returns the outcome: ``{"ok", "actions", "remaining", "error"}`` (remaining:
    differences still there afterwards), plus ``post_restore_done`` when the state has
    post-restore operations."""
    given = len(objects)
    objects, created, refused = restorable(state, objects, namespace)
    if given and not objects:
        # A state whose touches name none of its objects restores nothing: never "ok".
        raise RestoreError("the drill state names none of its %d snapshotted objects as touched "
                           "(refused: %s)" % (given, ", ".join(refused[:5])))
    post = list(state.get("post_restore") or [])
    post_done = not post or bool(state.get("post_restore_done"))
    actions, error, remaining = [], None, []
    heartbeat = heartbeat or (lambda: None)
    for _round in range(rounds):
        heartbeat()
        live = {}
        for obj in objects:
            ref = _snap.ref_of(obj)
            live[ref] = client.get_or_none(obj["kind"], obj["metadata"]["name"], namespace)
        for item in created:
            kind, name = _ops.split_ref(item)
            live[_ref(kind, name)] = client.get_or_none(kind, name, namespace)
        ops = plan_restore(objects, live, created, ())
        post_ops = [] if post_done else [dict(op) for op in post]
        if not ops and not post_ops:
            remaining, error = [], None
            break
        try:
            if ops:
                actions.extend(_ops.apply_ops(client, namespace, ops, sleep=sleep, log=log)["done"])
            if post_ops:
                # After the rollout: pods of the faulty version still running would undo
                # the post-restore work (e.g. write poisoned cache entries after a flush).
                wait_for_rollouts(client, namespace, objects, sleep=sleep, log=log, heartbeat=heartbeat)
                actions.extend(_ops.apply_ops(client, namespace, post_ops, sleep=sleep, log=log)["done"])
                post_done = True
            error = None
        except RestoreError as exc:
            error = str(exc)
        remaining = _snap.diff(objects, {
            _snap.ref_of(o): client.get_or_none(o["kind"], o["metadata"]["name"], namespace)
            for o in objects})
        if not remaining and error is None:
            break
        sleep(2)
    outcome = {"ok": not remaining and error is None, "actions": actions,
               "remaining": remaining, "error": error, "refused": refused}
    if post:
        outcome["post_restore_done"] = post_done
    return outcome


def rollouts_pending(client, namespace, objects):
    """Names of the snapshot's Deployments whose rollout has not finished: a generation
    not yet observed, fewer updated or available replicas than wanted, old replicas left,
    or pods still terminating."""
    pending = []
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        name = obj["metadata"]["name"]
        live = client.get_or_none("Deployment", name, namespace)
        if live is None:
            continue
        meta, spec, status = live.get("metadata") or {}, live.get("spec") or {}, live.get("status") or {}
        wanted = spec.get("replicas", 1)
        generation = meta.get("generation", 0)
        # The API server omits zero counts: a missing field means 0, never "done". (Right
        # after a replace the new ReplicaSet has no pods yet and updatedReplicas is absent.)
        if status.get("observedGeneration", 0) < generation \
                or status.get("updatedReplicas", 0) < wanted \
                or status.get("availableReplicas", 0) < wanted \
                or status.get("replicas", 0) > wanted:
            pending.append(name)
            continue
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        if labels:
            selector = ",".join("%s=%s" % (k, v) for k, v in sorted(labels.items()))
            pods = client.list("Pod", namespace, label_selector=selector)
            if any((p.get("metadata") or {}).get("deletionTimestamp") for p in pods):
                pending.append(name)
    return pending


def wait_for_rollouts(client, namespace, objects, sleep=time.sleep, log=None, timeout_s=240, heartbeat=None):
    """Wait (up to ``timeout_s``) until ``rollouts_pending`` is empty; returns what is
    still pending then."""
    deadline = time.time() + timeout_s
    while True:
        if heartbeat is not None:
            heartbeat()
        pending = rollouts_pending(client, namespace, objects)
        if not pending or time.time() >= deadline:
            if pending and log:
                log("rollouts still pending, going on", pending=pending)
            return pending
        sleep(2)


def run_restore(client, namespace, name=_snap.STATE_CONFIGMAP, state_namespace=None,
                by="rollback", only_if_armed=False, sleep=time.sleep, log=None, fallback=None):
    """Lock, load the drill state, restore, record the outcome in the state, unlock.

    ``only_if_armed``: skip (outcome ``skipped``) when the state is disarmed, as the
    dead-man's switch does; the engine's own rollback always restores. ``fallback``:
    ``(state, objects)`` from the controller's local copy, used (``source: local``) when
    the cluster's state is missing or fails its integrity check, or differs from it."""
    state_ns = _state.state_namespace_for(namespace, state_namespace)
    holder = "%s/%s/%d" % (by, socket.gethostname(), os.getpid())
    _state.acquire_lock(client, state_ns, holder, sleep=sleep)
    try:
        source, problem = "cluster", None
        try:
            state, objects, _cm = _state.load_state(client, namespace, name, state_ns)
            if fallback is not None and state.get("digest") != fallback[0].get("digest"):
                raise IntegrityError("drill state %s/%s is not the one this controller wrote "
                                     "(digest differs from the local copy)" % (state_ns, name))
        except RestoreError as exc:
            if fallback is None:
                raise
            state, objects = dict(fallback[0]), list(fallback[1])
            source, problem = "local", str(exc)
        if only_if_armed and not state.get("armed"):
            return {"ok": True, "skipped": True, "reason": "disarmed", "phase": state.get("phase")}
        recorded = source == "cluster"
        if recorded:
            _state.update_state(client, namespace, {"phase": "restoring"}, name, sleep=sleep, state_namespace=state_ns)
        # The lock's duration is 180 s; a restore that waits for slow rollouts renews it.
        heartbeat = _state.Heartbeat(lambda: _state.renew_lock(client, state_ns, holder), every_s=30)
        try:
            outcome = restore(client, namespace, state, objects, sleep=sleep, log=log, heartbeat=heartbeat)
        except (ApiError, _k8s.K8sError) as exc:
            outcome = {"ok": False, "actions": [], "remaining": [], "error": str(exc)}
        outcome.update({"by": by, "at": _state.now_iso(), "source": source, "state_problem": problem})
        changes = {"restore": outcome, "phase": "restored" if outcome["ok"] else "restore_failed"}
        if outcome.get("post_restore_done"):
            changes["post_restore_done"] = True
        if outcome["ok"]:
            changes["armed"] = False
        if recorded:
            _state.update_state(client, namespace, changes, name, sleep=sleep, state_namespace=state_ns)
        return outcome
    finally:
        try:
            _state.release_lock(client, state_ns, holder)
        except ApiError:
            pass
