#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put a namespace back to its snapshot; also the in-cluster dead-man's switch.

Inside Ansible this is ``ansible_collections.opsdrill.drills.plugins.module_utils.restore``.
The dead-man's switch runs the very same files on a stock Python image: ship
``restore.py``, ``snapshot.py`` and ``k8s_rest.py`` (``standalone_sources()``) in a
ConfigMap, mount it, and run::

    python3 /opsdrill/restore.py --namespace seo-tool --deadline 1795370400
        [--state-configmap opsdrill-drill-state] [--state-namespace NS] [--poll 10]

It waits for the deadline (the state's ``deadline`` wins, so the engine can extend it
without restarting the pod), then, unless the drill state says disarmed, restores and
writes the outcome into the state. Exit 0: disarmed or restored; 1: restore failed;
2: bad arguments or configuration. A restore is idempotent: run it twice, the second
run changes nothing.

Also here, because both the fault injection and the restore use it and the dead-man's
switch needs it without Ansible: ``apply_ops`` runs the operations fault handlers and
``plan_restore`` produce.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import hmac
import inspect
import json
import os
import socket
import sys
import time

try:
    from ansible_collections.opsdrill.drills.plugins.module_utils import k8s_rest as _k8s
    from ansible_collections.opsdrill.drills.plugins.module_utils import snapshot as _snap
except ImportError:  # in-cluster: the files sit side by side (also under python -I / -P)
    _HERE = os.path.dirname(os.path.abspath(__file__))
    if _HERE not in sys.path:
        sys.path.insert(0, _HERE)
    import k8s_rest as _k8s  # type: ignore[no-redef]
    import snapshot as _snap  # type: ignore[no-redef]

ApiError = _k8s.ApiError

__all__ = [
    "KEY_SECRET",
    "KIND_ORDER",
    "LOCK_NAME",
    "RESTORABLE_KINDS",
    "IntegrityError",
    "RestoreError",
    "acquire_lock",
    "ensure_control_namespace",
    "restorable",
    "apply_ops",
    "deadman",
    "load_state",
    "main",
    "plan_restore",
    "release_lock",
    "restore",
    "run_restore",
    "save_state",
    "standalone_sources",
    "update_state",
    "wait_for_rollouts",
]

LOCK_NAME = "opsdrill-restore-lock"
# Fault handlers label what they create; only such objects are deleted on restore.
CREATED_LABEL = "opsdrill.io/created-by"
# Config before the workloads that read it; workloads before deleting what the fault
# created (a PVC is released once no pod template names it).
KIND_ORDER = ("Namespace", "ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim",
              "Service", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod")
# What a restore may write, always inside the drill namespace: never a cluster-scoped
# kind, whatever a state says.
RESTORABLE_KINDS = frozenset(KIND_ORDER) - {"Namespace"}
# The HMAC key of the drill state (a Secret in the control namespace).
KEY_SECRET = "opsdrill-drill-key"
# A restore lock whose holder claims more than this is treated as expired: a planted
# Lease with a renewTime in the future or a huge duration must not block the rollback.
MAX_LOCK_S = 600
CLOCK_SKEW_S = 30


class RestoreError(Exception):
    """A restore could not finish."""


class IntegrityError(RestoreError):
    """The drill state in the cluster is not the one the drill wrote."""


def _now_iso(now=None):
    stamp = datetime.datetime.fromtimestamp(time.time() if now is None else now,
                                            tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _log(event, **data):
    record = {"ts": _now_iso(), "service": "opsdrill-deadman", "msg": event}
    record.update(data)
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def _ref(kind, name):
    return "%s/%s" % (kind, name)


def _split(ref):
    if isinstance(ref, dict):
        return ref["kind"], ref["name"]
    kind, name = ref.split("/", 1)
    return kind, name


def _kind_rank(ref):
    kind = _split(ref)[0]
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
        kind, name = _split(item)
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
        kind, name = _split(ref)
        ops.append({"op": "delete", "kind": kind, "name": name, "missing_ok": True})
    ops.extend(dict(op) for op in post_restore)
    return ops


def describe_op(op):
    """One line for logs and the outcome."""
    kind = op["op"]
    if kind in ("replace", "create"):
        obj = op["object"]
        text = "%s %s" % (kind, _snap.ref_of(obj))
        if op.get("changes"):
            text += " (%d difference%s)" % (len(op["changes"]), "" if len(op["changes"]) == 1 else "s")
        return text
    if kind == "delete":
        return "delete %s/%s" % (op["kind"], op["name"])
    if kind == "scale":
        return "scale %s/%s to %d" % (op["kind"], op["name"], op["replicas"])
    if kind == "delete_pods":
        return "delete pods %s" % op["selector"]
    if kind == "redis_flush":
        return "redis FLUSHDB on %s:%s" % (op.get("service", "redis"), op.get("port", 6379))
    return kind


# --------------------------------------------------------------------------------------
# applying operations

def apply_ops(client, namespace, ops, sleep=time.sleep, log=None):
    """Run operations in order. Returns ``{"done": [...], "created": [refs]}``.

    A restore replace (op with ``snapshot``) that meets a conflict re-reads the object
    and retries; a restore create that finds the object back replaces it instead. Any
    other API error stops and raises ``RestoreError`` naming the operation."""
    done, created = [], []
    for op in ops:
        text = describe_op(op)
        if log:
            log("apply", op=text)
        try:
            _apply_one(client, namespace, op, sleep)
        except (ApiError, _k8s.K8sError, RestoreError) as exc:
            raise RestoreError("%s failed: %s (done before it: %s)"
                               % (text, exc, "; ".join(done) or "nothing"))
        done.append(text)
        if op["op"] == "create" and not op.get("restore"):
            created.append(_snap.ref_of(op["object"]))
    return {"done": done, "created": created}


def _apply_one(client, namespace, op, sleep):
    kind = op["op"]
    if kind == "create":
        try:
            client.create(op["object"], namespace)
        except ApiError as exc:
            if not (exc.conflict and op.get("snapshot")):
                raise
            _replace_to_snapshot(client, namespace, op["snapshot"], sleep)
    elif kind == "replace":
        if op.get("snapshot"):
            _replace_to_snapshot(client, namespace, op["snapshot"], sleep, first=op["object"])
        else:
            body = op["object"]
            if not (body.get("metadata") or {}).get("resourceVersion"):
                current = client.get(body["kind"], body["metadata"]["name"], namespace)
                body = dict(body, metadata=dict(body["metadata"],
                                                resourceVersion=current["metadata"]["resourceVersion"]))
            client.replace(body, namespace)
    elif kind == "delete":
        client.delete(op["kind"], op["name"], namespace, missing_ok=op.get("missing_ok", True))
    elif kind == "scale":
        client.scale(op["kind"], op["name"], namespace, op["replicas"])
    elif kind == "delete_pods":
        client.delete_collection("Pod", namespace, label_selector=op["selector"])
    elif kind == "redis_flush":
        _redis_flush(client, namespace, op, sleep)
    else:
        raise RestoreError("unknown operation %r" % kind)


def _replace_to_snapshot(client, namespace, snap_obj, sleep, first=None, tries=5):
    kind, name = snap_obj["kind"], snap_obj["metadata"]["name"]
    body = first
    for attempt in range(tries):
        if body is None:
            current = client.get_or_none(kind, name, namespace)
            if current is None:
                body = None
                try:
                    client.create(_snap.create_body(snap_obj), namespace)
                    return
                except ApiError as exc:
                    if not exc.conflict:
                        raise
                    sleep(1 + attempt)
                    continue
            if not _snap.diff_object(snap_obj, current):
                return
            body = _snap.restore_body(snap_obj, current)
        try:
            client.replace(body, namespace)
            return
        except ApiError as exc:
            if exc.status == 422 and kind in RECREATABLE_KINDS:
                # Someone changed an immutable field (a Service switched to NodePort keeps a
                # nodePort a ClusterIP body may not carry): delete it and create it anew.
                client.delete(kind, name, namespace, missing_ok=True)
                _wait_gone(client, kind, name, namespace, sleep)
                body = None
                continue
            if not exc.conflict and not exc.not_found:
                raise
            body = None
            sleep(0.5 + attempt)
    raise RestoreError("%s/%s kept changing; gave up after %d tries" % (kind, name, tries))


# Kinds a restore may delete and recreate when a replace is refused as invalid (422):
# their identity is only their name; a workload keeps its pods' selector and PVCs keep data,
# so those are never recreated.
RECREATABLE_KINDS = frozenset(("Service", "ConfigMap", "Secret", "ServiceAccount"))


def _wait_gone(client, kind, name, namespace, sleep, tries=30):
    for _attempt in range(tries):
        if client.get_or_none(kind, name, namespace) is None:
            return
        sleep(0.5)
    raise RestoreError("%s/%s is still being deleted; cannot recreate it" % (kind, name))


def _redis_flush(client, namespace, op, sleep, timeout_s=120):
    """``redis-cli FLUSHDB`` from a one-shot pod that borrows the redis Deployment's
    image, pull policy and security contexts (so it passes the same admission)."""
    source_kind, source_name = _split(op.get("image_from", "Deployment/redis"))
    source = client.get(source_kind, source_name, namespace)
    pod_spec = source["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    if op.get("container"):
        named = [c for c in pod_spec["containers"] if c.get("name") == op["container"]]
        if not named:
            raise RestoreError("redis_flush: %s/%s has no container %s"
                               % (source_kind, source_name, op["container"]))
        container = named[0]
    name = "opsdrill-redis-flush-%d" % int(time.time() * 1000 % 10 ** 10)
    ctr = {"name": "flush", "image": container["image"],
           "command": ["redis-cli", "-h", str(op.get("service", "redis")),
                       "-p", str(op.get("port", 6379)), "-n", str(op.get("db", 0)), "FLUSHDB"]}
    for key in ("imagePullPolicy", "securityContext"):
        if container.get(key):
            ctr[key] = container[key]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "opsdrill",
                                                 "opsdrill.io/created-by": "rollback"}},
           "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                    "containers": [ctr]}}
    for key in ("securityContext", "imagePullSecrets", "nodeSelector", "tolerations"):
        if pod_spec.get(key):
            pod["spec"][key] = pod_spec[key]
    client.create(pod, namespace)
    try:
        deadline = time.time() + timeout_s
        phase = "Pending"
        while time.time() < deadline:
            phase = ((client.get("Pod", name, namespace).get("status") or {}).get("phase")
                     or "Pending")
            if phase in ("Succeeded", "Failed"):
                break
            sleep(2)
        try:
            output = client.pod_log(name, namespace)
        except ApiError:
            output = ""
        if phase != "Succeeded" or "OK" not in output:
            raise RestoreError("redis FLUSHDB pod %s ended %s: %s"
                               % (name, phase, output.strip()[-300:] or "no output"))
    finally:
        client.delete("Pod", name, namespace, missing_ok=True)


# --------------------------------------------------------------------------------------
# drill state in the cluster

def ensure_control_namespace(client, namespace):
    """Create the control namespace of drill namespace ``namespace`` when missing
    (Pod Security restricted, labelled with the drill namespace it serves); refuse a
    namespace of that name that is not opsdrill's control namespace for ``namespace``."""
    name = _snap.control_namespace(namespace)
    current = client.get_or_none("Namespace", name)
    if current is None:
        try:
            client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": name, "labels": {
                    "app.kubernetes.io/part-of": "opsdrill", _snap.CONTROL_LABEL: namespace,
                    "pod-security.kubernetes.io/enforce": "restricted"}}})
        except ApiError as exc:
            if not exc.conflict:
                raise
        return name
    labels = (current.get("metadata") or {}).get("labels") or {}
    if labels.get(_snap.CONTROL_LABEL) != namespace:
        raise RestoreError("namespace %s exists but is not the opsdrill control namespace of %s "
                           "(label %s=%s missing): rename or remove it"
                           % (name, namespace, _snap.CONTROL_LABEL, namespace))
    return name


def _state_ns(namespace, state_namespace=None):
    return state_namespace or _snap.control_namespace(namespace)


def read_key(client, namespace, state_namespace=None):
    """The state's HMAC key (bytes) from the control namespace, or None."""
    secret = client.get_or_none("Secret", KEY_SECRET, _state_ns(namespace, state_namespace))
    value = ((secret or {}).get("data") or {}).get("key")
    return base64.b64decode(value) if value else None


def load_state(client, namespace, name=_snap.STATE_CONFIGMAP, state_namespace=None, key=None):
    """(state, snapshot objects, configmap) of drill namespace ``namespace``, read from its
    control namespace and checked against the state's HMAC (``key``, else the key
    Secret): a state that fails the check raises IntegrityError."""
    state_ns = _state_ns(namespace, state_namespace)
    configmap = client.get_or_none("ConfigMap", name, state_ns)
    if configmap is None:
        raise RestoreError("no drill state: ConfigMap %s/%s does not exist" % (state_ns, name))
    secret = None
    try:
        state_preview = json.loads((configmap.get("data") or {}).get("state.json") or "{}")
    except ValueError:
        state_preview = {}
    if state_preview.get("secret_snapshot") or not (configmap.get("data") or {}).get("state.json"):
        secret = client.get_or_none("Secret", name, state_ns)
    try:
        state, objects = _snap.read_state_objects(configmap, secret)
    except _snap.SnapshotError as exc:
        raise IntegrityError("drill state %s/%s is unreadable: %s" % (state_ns, name, exc))
    key = key if key is not None else read_key(client, namespace, state_namespace)
    if key is None:
        raise IntegrityError("drill state %s/%s cannot be checked: its key (Secret %s) is missing"
                             % (state_ns, name, KEY_SECRET))
    if not hmac.compare_digest(str(state.get("digest") or ""), _snap.state_digest(key, state, objects)):
        raise IntegrityError("drill state %s/%s fails its integrity check: it was changed after the "
                             "drill wrote it" % (state_ns, name))
    if state.get("namespace") not in (None, namespace):
        raise IntegrityError("drill state %s/%s belongs to namespace %s, not %s"
                             % (state_ns, name, state.get("namespace"), namespace))
    return state, objects, configmap


def save_state(client, namespace, state, objects, name=_snap.STATE_CONFIGMAP, key=None,
               state_namespace=None):
    """Create or overwrite the drill-state ConfigMap (and its Secret) in the control
    namespace, signed with ``key`` (written to the key Secret when given)."""
    state_ns = _state_ns(namespace, state_namespace)
    if key is not None:
        _put(client, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                      "metadata": {"name": KEY_SECRET, "namespace": state_ns,
                                   "labels": {"app.kubernetes.io/part-of": "opsdrill"}},
                      "data": {"key": base64.b64encode(key).decode("ascii")}}, state_ns)
    else:
        key = read_key(client, namespace, state_namespace)
    state = dict(state, digest=_snap.state_digest(key, state, objects) if key else None)
    configmap, secret = _snap.build_state_objects(state_ns, state, objects, name)
    for body in (secret, configmap):
        if body is not None:
            _put(client, body, state_ns)
    return configmap, secret


def _put(client, body, namespace):
    current = client.get_or_none(body["kind"], body["metadata"]["name"], namespace)
    if current is None:
        client.create(body, namespace)
    else:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        client.replace(body, namespace)


def update_state(client, namespace, changes, name=_snap.STATE_CONFIGMAP, tries=5,
                 sleep=time.sleep, state_namespace=None):
    """Merge ``changes`` into state.json (read-modify-write, retried on conflict). Only
    fields outside the digest may change."""
    state_ns = _state_ns(namespace, state_namespace)
    if "digest" in changes:
        raise RestoreError("update_state may not set the digest")
    signed = set(changes) & set(_snap.DIGESTED_STATE_KEYS)
    for attempt in range(tries):
        configmap = client.get("ConfigMap", name, state_ns)
        data = dict(configmap.get("data") or {})
        state = json.loads(data.get("state.json") or "{}")
        if signed:
            # Changing what the digest covers (the engine records the objects its fault
            # created): check the state as it is, then sign the new one.
            key = read_key(client, namespace, state_namespace)
            _current, objects, _cm = load_state(client, namespace, name, state_ns, key=key)
            state.update(changes)
            state["digest"] = _snap.state_digest(key, state, objects)
        else:
            state.update(changes)
        data["state.json"] = _snap.encode(state)
        configmap["data"] = data
        try:
            client.replace(configmap, state_ns)
            return state
        except ApiError as exc:
            if not exc.conflict:
                raise
            sleep(0.2 * (attempt + 1))
    raise RestoreError("could not update the drill state: it kept changing")


# --------------------------------------------------------------------------------------
# lock: one restorer at a time (the engine's rollback and the dead-man's switch)

def _parse_micro(value):
    if not value:
        return 0.0
    value = value.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in value else "%Y-%m-%dT%H:%M:%S"
    return datetime.datetime.strptime(value, fmt).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def acquire_lock(client, namespace, holder, duration_s=180, wait_s=300, sleep=time.sleep,
                 name=LOCK_NAME):
    """Take the restore Lease, waiting up to ``wait_s`` for another holder; a lease not
    renewed within its duration is taken over."""
    deadline = time.time() + wait_s
    while True:
        now = time.time()
        lease = client.get_or_none("Lease", name, namespace)
        spec = {"holderIdentity": holder, "leaseDurationSeconds": int(duration_s),
                "acquireTime": _now_iso(now), "renewTime": _now_iso(now)}
        try:
            if lease is None:
                client.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                               "metadata": {"name": name,
                                            "labels": {"app.kubernetes.io/part-of": "opsdrill"}},
                               "spec": spec}, namespace)
                return True
            current = lease.get("spec") or {}
            if not current.get("holderIdentity") or current.get("holderIdentity") == holder \
                    or lock_expired(current, now):
                lease["spec"] = spec
                client.replace(lease, namespace)
                return True
        except ApiError as exc:
            if not exc.conflict:
                raise
        if time.time() >= deadline:
            raise RestoreError("restore lock %s/%s held by %s" % (
                namespace, name, (lease or {}).get("spec", {}).get("holderIdentity")))
        sleep(2)


def lock_expired(spec, now):
    """A lock is expired when not renewed within its duration, and also when it claims
    the impossible: a renewTime in the future or a duration over MAX_LOCK_S."""
    try:
        renewed = _parse_micro(spec.get("renewTime"))
        duration = int(spec.get("leaseDurationSeconds") or 0)
    except (TypeError, ValueError):
        return True
    if renewed > now + CLOCK_SKEW_S or duration > MAX_LOCK_S:
        return True
    return renewed + duration < now


def renew_lock(client, namespace, holder, name=LOCK_NAME):
    """Renew the restore lock while a long restore runs; False when it is no longer ours."""
    try:
        lease = client.get_or_none("Lease", name, namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != holder:
            return False
        lease["spec"]["renewTime"] = _now_iso()
        client.replace(lease, namespace)
        return True
    except ApiError:
        return False  # the next heartbeat tries again


class Heartbeat:
    """Calls ``beat`` at most every ``every_s`` seconds (the restore's lock renewal)."""

    def __init__(self, beat=None, every_s=30.0, clock=time.time):
        self.beat, self.every_s, self.clock, self.last = beat, every_s, clock, clock()

    def __call__(self):
        if self.beat is not None and self.clock() - self.last >= self.every_s:
            self.last = self.clock()
            self.beat()


def release_lock(client, namespace, holder, name=LOCK_NAME):
    lease = client.get_or_none("Lease", name, namespace)
    if lease and (lease.get("spec") or {}).get("holderIdentity") == holder:
        client.delete("Lease", name, namespace, missing_ok=True)


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
        kind, name = _split(item)
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
            kind, name = _split(item)
            live[_ref(kind, name)] = client.get_or_none(kind, name, namespace)
        ops = plan_restore(objects, live, created, ())
        post_ops = [] if post_done else [dict(op) for op in post]
        if not ops and not post_ops:
            remaining, error = [], None
            break
        try:
            if ops:
                actions.extend(apply_ops(client, namespace, ops, sleep=sleep, log=log)["done"])
            if post_ops:
                # After the rollout: pods of the faulty version still running would undo
                # the post-restore work (e.g. write poisoned cache entries after a flush).
                wait_for_rollouts(client, namespace, objects, sleep=sleep, log=log, heartbeat=heartbeat)
                actions.extend(apply_ops(client, namespace, post_ops, sleep=sleep, log=log)["done"])
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
    state_ns = _state_ns(namespace, state_namespace)
    holder = "%s/%s/%d" % (by, socket.gethostname(), os.getpid())
    acquire_lock(client, state_ns, holder, sleep=sleep)
    try:
        source, problem = "cluster", None
        try:
            state, objects, _cm = load_state(client, namespace, name, state_ns)
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
            update_state(client, namespace, {"phase": "restoring"}, name, sleep=sleep, state_namespace=state_ns)
        # The lock's duration is 180 s; a restore that waits for slow rollouts renews it.
        heartbeat = Heartbeat(lambda: renew_lock(client, state_ns, holder), every_s=30)
        try:
            outcome = restore(client, namespace, state, objects, sleep=sleep, log=log, heartbeat=heartbeat)
        except (ApiError, _k8s.K8sError) as exc:
            outcome = {"ok": False, "actions": [], "remaining": [], "error": str(exc)}
        outcome.update({"by": by, "at": _now_iso(), "source": source, "state_problem": problem})
        changes = {"restore": outcome, "phase": "restored" if outcome["ok"] else "restore_failed"}
        if outcome.get("post_restore_done"):
            changes["post_restore_done"] = True
        if outcome["ok"]:
            changes["armed"] = False
        if recorded:
            update_state(client, namespace, changes, name, sleep=sleep, state_namespace=state_ns)
        return outcome
    finally:
        try:
            release_lock(client, state_ns, holder)
        except ApiError:
            pass


# --------------------------------------------------------------------------------------
# dead-man's switch

def deadman(client, namespace, deadline, name=_snap.STATE_CONFIGMAP, state_namespace=None,
            poll_s=10.0, sleep=time.sleep, now=time.time, log=_log):
    """Wait for the deadline, then restore unless disarmed. Returns the exit code."""
    state_ns = _state_ns(namespace, state_namespace)
    due, drill_id = deadline, None
    while True:
        try:
            configmap = client.get_or_none("ConfigMap", name, state_ns)
            state = json.loads(((configmap or {}).get("data") or {}).get("state.json") or "{}")
        except (ApiError, _k8s.K8sError, ValueError) as exc:
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
    outcome = run_restore(client, namespace, name, state_ns, by="deadman", only_if_armed=True,
                          sleep=sleep, log=log)
    log("restore finished", **{k: v for k, v in outcome.items() if k != "remaining"},
        remaining=len(outcome.get("remaining") or []))
    return 0 if outcome.get("ok") else 1


def standalone_sources():
    """``{"restore.py": text, "snapshot.py": text, "k8s_rest.py": text}``: the files
    the dead-man's switch runs, for its ConfigMap (works from an AnsiballZ zip too)."""
    out = {}
    for filename, module in (("restore.py", sys.modules[__name__]),
                             ("snapshot.py", _snap), ("k8s_rest.py", _k8s)):
        try:
            out[filename] = inspect.getsource(module)
        except (OSError, TypeError):
            with open(module.__file__, encoding="utf-8") as handle:
                out[filename] = handle.read()
    return out


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
            outcome = run_restore(client, args.namespace, args.state_configmap,
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
