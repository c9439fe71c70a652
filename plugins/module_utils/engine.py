# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill engine's cluster steps: snapshot, inject, verify (docs/contracts.md 4 and 5).

    live, ops = prepare(client, ns, entry, drill)        # plan; nothing changes
    state, objects = take_snapshot(client, ns, entry, drill, deadline)
    result = inject(client, ns, entry, drill)             # apply the plan, confirm it
    lines = verify(client, ns)                            # [] when the snapshot is back

``client`` is a ``k8s_rest.Client`` (or anything with its get/list/create/replace/
delete/scale/delete_collection methods). The restore itself is ``restore_plan.run_restore``.
"""
from __future__ import annotations

import datetime
import os
import time

from ansible_collections.opsdrill.drills.plugins.module_utils import fault_handlers
from ansible_collections.opsdrill.drills.plugins.module_utils import fix_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import ops as op_types
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

__all__ = ["EngineError", "change_lines", "diff_entries", "drill_context", "inject",
           "prepare", "state_record", "take_snapshot", "touch_refs", "verify"]

DRILL_KEYS = ("drill_id", "scenario", "variant", "fault", "namespace")


class EngineError(Exception):
    """A drill step cannot run; the message names the object and the reason."""


def touch_refs(entry):
    """``Kind/name`` of every object the fault touches, in catalog order."""
    return ["%s/%s" % (item["kind"], item["name"]) for item in entry["touches"]]


def drill_context(drill, namespace, now=None):
    stamp = datetime.datetime.fromtimestamp(time.time() if now is None else now,
                                            tz=datetime.timezone.utc)
    return {"namespace": namespace, "now": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "drill_id": drill.get("drill_id")}


def namespace_inventory(client, namespace):
    """The drill namespace's objects of ``snapshot.INVENTORY_KINDS`` as an inventory (the
    drill's own Role and RoleBinding are other kinds; objects being deleted are left out)."""
    objects = []
    for kind in snapshot.INVENTORY_KINDS:
        objects.extend(o for o in client.list(kind, namespace)
                       if not (o.get("metadata") or {}).get("deletionTimestamp"))
    return snapshot.inventory(objects)


def prepare(client, namespace, entry, drill, now=None):
    """GET the touched objects and plan the fault on them: ``(live, ops)``.

    Raises EngineError when a touched object is missing or the fault cannot apply
    (before anything is written, so a refused drill changes nothing)."""
    refs = touch_refs(entry)
    live = {}
    for ref in refs:
        kind, name = ref.split("/", 1)
        live[ref] = client.get_or_none(kind, name, namespace)
    missing = [ref for ref in refs if live[ref] is None]
    if missing:
        raise EngineError("fault %s touches %s, which %s not exist in namespace %s (target %s/%s)"
                          % (entry.get("key"), ", ".join(missing),
                             "does" if len(missing) == 1 else "do", namespace,
                             entry["target"]["kind"], entry["target"]["name"]))
    try:
        ops = fault_handlers.plan(entry["steps"], live, drill_context(drill, namespace, now))
    except fault_handlers.HandlerError as exc:
        raise EngineError("fault %s cannot be applied in namespace %s: %s"
                          % (entry.get("key"), namespace, exc))
    for op in ops:
        if op["op"] == "create":
            obj = op["object"]
            existing = client.get_or_none(obj["kind"], obj["metadata"]["name"], namespace)
            if existing is not None:
                raise EngineError("fault %s would create %s, which exists already in namespace %s"
                                  % (entry.get("key"), snapshot.ref_of(obj), namespace))
    return live, ops


def state_record(drill, entry, ops, started, deadline, seed=None):
    """state.json of the drill (docs/contracts.md section 5) plus the fault's key,
    target and seed."""
    state = {key: drill.get(key) for key in DRILL_KEYS}
    state.update({
        "key": entry.get("key"),
        "target": "%s/%s" % (entry["target"]["kind"], entry["target"]["name"]),
        "seed": seed,
        "started": round(float(started), 3),
        "deadline": round(float(deadline), 3),
        "armed": True,
        "phase": "snapshot",
        "touches": touch_refs(entry),
        "created": fault_handlers.created_refs(ops),
        "post_restore": list(entry.get("rollback") or []),
        # release steps: the rollback commits the pre-drill manifest back to the deploy repo
        "releases": [[step["object"], step["params"]["commit_message"]]
                     for step in entry.get("steps") or []
                     if step.get("handler") == "release" and (step.get("params") or {}).get("commit_message")],
    })
    return state


def take_snapshot(client, namespace, entry, drill, deadline, seed=None, check_mode=False,
                  now=None):
    """Snapshot every touched object into the drill state (ConfigMap + Secret).

    Returns ``(state, objects, ops)``; ``objects`` are normalised. In check mode
    nothing is written."""
    now = time.time() if now is None else now
    live, ops = prepare(client, namespace, entry, drill, now)
    objects = [snapshot.normalise(live[ref]) for ref in touch_refs(entry)]
    state = state_record(drill, entry, ops, now, deadline, seed)
    state["namespace"] = namespace
    # A fresh key per drill: the state's HMAC proves the restore reads what this drill wrote.
    key = os.urandom(32)
    state["digest"] = snapshot.state_digest(key, state, objects)
    if not check_mode:
        drill_state.ensure_control_namespace(client, namespace)
        drill_state.save_state(client, namespace, state, objects, key=key)
    return state, objects, ops


def change_lines(live, ops):
    """What the operations change, one line per difference (Secret values as digests)."""
    return [line for op in ops for line in op_types.change_lines(live, op)]


def _redacted_yaml_source(obj):
    obj = snapshot.normalise(obj)
    if obj.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if obj.get(key):
                obj[key] = {k: "<redacted>" for k in obj[key]}
    return obj


def diff_entries(live, ops):
    """Before/after pairs of every object the operations create or replace, for
    Ansible's --diff (Secret values redacted)."""
    out = []
    for op in ops:
        if op["op"] not in ("replace", "create"):
            continue
        ref = snapshot.ref_of(op["object"])
        before = live.get(ref)
        out.append({"ref": ref,
                    "before": _redacted_yaml_source(before) if before else None,
                    "after": _redacted_yaml_source(op["object"])})
    return out


def _confirm_visible(client, namespace, ops, live):
    """Re-read what the operations changed: the API must show the change."""
    refs = (op_types.pending(client, namespace, op, live) for op in ops)
    return [ref for ref in refs if ref is not None]


def inject(client, namespace, entry, drill, check_mode=False, clock=time.time, sleep=time.sleep):
    """Apply the fault: plan it on the live objects (fresh resourceVersions), record what
    it creates in the drill state *before* applying, apply, and confirm the change is
    visible in the API. Returns a dict: ``changes`` (lines), ``operations``,
    ``started``/``visible`` (epoch), ``live``/``ops`` for diffs and ``fault_change``
    (``fix_state.record`` of every touched object)."""
    started = clock()
    live, ops = prepare(client, namespace, entry, drill, started)
    result = {"changes": change_lines(live, ops),
              "operations": [op_types.describe_op(op) for op in ops],
              "live": live, "ops": ops, "started": started, "visible": None}
    if check_mode:
        return result
    state, _objects, _cm = drill_state.load_state(client, namespace)
    if state.get("drill_id") != drill.get("drill_id"):
        raise EngineError("the drill state in namespace %s belongs to drill %s, not %s: "
                          "take the snapshot first" % (namespace, state.get("drill_id"),
                                                       drill.get("drill_id")))
    created = list(state.get("created") or [])
    for ref in fault_handlers.created_refs(ops):
        if ref not in created:
            created.append(ref)
    drill_state.update_state(client, namespace, {"created": created, "phase": "injecting"})
    try:
        op_types.apply_ops(client, namespace, ops)
    except op_types.RestoreError as exc:
        raise EngineError("injecting %s in namespace %s failed: %s"
                          % (entry.get("key"), namespace, exc))
    for _attempt in range(20):
        if not _confirm_visible(client, namespace, ops, live):
            break
        sleep(0.25)
    result["visible"] = clock()
    drill_state.update_state(client, namespace, {"phase": "injected", "injected": round(result["visible"], 3)})
    # The fault's change as the API shows it: what the fix judgement compares against.
    result["fault_change"] = [
        fix_state.record(ref, live[ref], client.get_or_none(*ref.split("/", 1), namespace=namespace))
        for ref in touch_refs(entry)]
    return result


def verify(client, namespace, state=None, objects=None):
    """Every difference between the live objects and the drill snapshot, plus objects
    the fault created that still exist. ``[]`` means the snapshot is back."""
    if state is None or objects is None:
        state, objects, _cm = drill_state.load_state(client, namespace)
    live = {}
    for obj in objects:
        live[snapshot.ref_of(obj)] = client.get_or_none(obj["kind"], obj["metadata"]["name"],
                                                        namespace)
    lines = snapshot.diff(objects, live)
    for ref in state.get("created") or []:
        kind, name = ref.split("/", 1) if isinstance(ref, str) else (ref["kind"], ref["name"])
        current = client.get_or_none(kind, name, namespace)
        meta = (current or {}).get("metadata") or {}
        if current is not None and not meta.get("deletionTimestamp") \
                and restore_plan.CREATED_LABEL in (meta.get("labels") or {}):
            lines.append("%s/%s: created by the fault, still exists" % (kind, name))
    return lines
