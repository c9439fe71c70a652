# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operations a fault injection and a restore apply, and their executor.

An operation is a dict ``{"op": TYPE, ...}`` (fault handlers and ``plan_restore`` make
them). Every type is one ``OpType`` in the registry ``OP_TYPES``: what it needs
(``validate``), how it reads in logs (``describe``), how it runs against the API
(``apply``), what it changes (``change_lines``) and how to see that the API shows it
(``pending``). A new type is one class here; the fault handlers' check
(``fault_handlers.OP_TYPES``), the catalog's allowed rollback ops (``ROLLBACK_OPS``) and
the engine's report derive from the registry.

``apply_ops`` runs a list of operations: the fault injection and the restore (and so
the dead-man's switch, without Ansible) use the same code.
"""
from __future__ import annotations

import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest as _k8s
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as _snap
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError

ApiError = _k8s.ApiError

__all__ = ["OP_TYPES", "ROLLBACK_OPS", "OpType", "apply_ops", "change_lines", "describe_op",
           "pending", "split_ref"]

# Kinds a restore may delete and recreate when a replace is refused as invalid (422):
# their identity is only their name; a workload keeps its pods' selector and PVCs keep data,
# so those are never recreated.
RECREATABLE_KINDS = frozenset(("Service", "ConfigMap", "Secret", "ServiceAccount"))


def split_ref(ref):
    """``(kind, name)`` of ``"Kind/name"`` or ``{"kind", "name"}``."""
    if isinstance(ref, dict):
        return ref["kind"], ref["name"]
    kind, name = ref.split("/", 1)
    return kind, name


class OpType:
    """One operation type. ``fields``: the keys an operation of this type must carry;
    ``rollback``: a catalog entry may list it in its ``rollback`` (run after a restore)."""

    name = ""
    fields = ()
    rollback = False

    def validate(self, op):
        """What is wrong with ``op`` (empty when it can be applied)."""
        return ["%s needs %r" % (self.name, field) for field in self.fields if field not in op]

    def describe(self, op):
        """One line for logs and the outcome."""
        return self.name

    def apply(self, client, namespace, op, sleep):
        raise NotImplementedError

    def change_lines(self, live, op):
        """What ``op`` changes in ``live`` (``"Kind/name" -> object``), one line each."""
        return [self.describe(op)]

    def pending(self, client, namespace, op, live):
        """The ref whose change the API does not show yet, else None."""
        return None


class Replace(OpType):
    """PUT the whole object; a restore replace (with ``snapshot``) retries conflicts."""

    name = "replace"
    fields = ("object",)

    def describe(self, op):
        text = "%s %s" % (self.name, _snap.ref_of(op["object"]))
        if op.get("changes"):
            text += " (%d difference%s)" % (len(op["changes"]), "" if len(op["changes"]) == 1 else "s")
        return text

    def apply(self, client, namespace, op, sleep):
        if op.get("snapshot"):
            _replace_to_snapshot(client, namespace, op["snapshot"], sleep, first=op["object"])
            return
        body = op["object"]
        if not (body.get("metadata") or {}).get("resourceVersion"):
            current = client.get(body["kind"], body["metadata"]["name"], namespace)
            body = dict(body, metadata=dict(body["metadata"],
                                            resourceVersion=current["metadata"]["resourceVersion"]))
        client.replace(body, namespace)

    def change_lines(self, live, op):
        return _snap.diff_object(live[_snap.ref_of(op["object"])], op["object"])

    def pending(self, client, namespace, op, live):
        obj = op["object"]
        current = client.get_or_none(obj["kind"], obj["metadata"]["name"], namespace)
        if current is None or not _snap.diff_object(live[_snap.ref_of(obj)], current):
            return _snap.ref_of(obj)
        return None


class Create(Replace):
    """POST; a restore create (with ``snapshot``) that finds the object back replaces it."""

    name = "create"

    def apply(self, client, namespace, op, sleep):
        try:
            client.create(op["object"], namespace)
        except ApiError as exc:
            if not (exc.conflict and op.get("snapshot")):
                raise
            _replace_to_snapshot(client, namespace, op["snapshot"], sleep)

    def change_lines(self, live, op):
        return ["%s: created" % _snap.ref_of(op["object"])]

    def pending(self, client, namespace, op, live):
        obj = op["object"]
        if client.get_or_none(obj["kind"], obj["metadata"]["name"], namespace) is None:
            return _snap.ref_of(obj)
        return None


class Delete(OpType):
    name = "delete"
    fields = ("kind", "name")

    def describe(self, op):
        return "delete %s/%s" % (op["kind"], op["name"])

    def apply(self, client, namespace, op, sleep):
        client.delete(op["kind"], op["name"], namespace, missing_ok=op.get("missing_ok", True))


class Scale(OpType):
    name = "scale"
    fields = ("kind", "name", "replicas")

    def describe(self, op):
        return "scale %s/%s to %d" % (op["kind"], op["name"], op["replicas"])

    def apply(self, client, namespace, op, sleep):
        client.scale(op["kind"], op["name"], namespace, op["replicas"])

    def change_lines(self, live, op):
        ref = "%s/%s" % (op["kind"], op["name"])
        before = ((live.get(ref) or {}).get("spec") or {}).get("replicas")
        return ["%s: spec.replicas: %s != %s" % (ref, before, op["replicas"])]

    def pending(self, client, namespace, op, live):
        current = client.get_or_none(op["kind"], op["name"], namespace)
        if ((current or {}).get("spec") or {}).get("replicas") != op["replicas"]:
            return "%s/%s" % (op["kind"], op["name"])
        return None


class RedisFlush(OpType):
    """``redis-cli FLUSHDB`` from a one-shot pod that borrows the redis Deployment's
    image, pull policy and security contexts (so it passes the same admission)."""

    name = "redis_flush"
    rollback = True
    timeout_s = 120

    def describe(self, op):
        return "redis FLUSHDB on %s:%s" % (op.get("service", "redis"), op.get("port", 6379))

    def apply(self, client, namespace, op, sleep):
        source_kind, source_name = split_ref(op.get("image_from", "Deployment/redis"))
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
        client.create(self._pod(name, op, pod_spec, container), namespace)
        try:
            deadline = time.time() + self.timeout_s
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

    @staticmethod
    def _pod(name, op, pod_spec, container):
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
        return pod


class DeletePods(OpType):
    name = "delete_pods"
    fields = ("selector",)
    rollback = True

    def describe(self, op):
        return "delete pods %s" % op["selector"]

    def apply(self, client, namespace, op, sleep):
        client.delete_collection("Pod", namespace, label_selector=op["selector"])


# The registry. Order matters only where names are listed to a user (ROLLBACK_OPS).
OP_TYPES = {op_type.name: op_type for op_type in
            (Replace(), Create(), Delete(), Scale(), RedisFlush(), DeletePods())}
ROLLBACK_OPS = tuple(name for name, op_type in OP_TYPES.items() if op_type.rollback)


def describe_op(op):
    """One line for logs and the outcome (an unknown type reads as its name)."""
    op_type = OP_TYPES.get(op["op"])
    return op_type.describe(op) if op_type else op["op"]


def change_lines(live, op):
    """What ``op`` changes in ``live``, one line per difference."""
    return OP_TYPES[op["op"]].change_lines(live, op)


def pending(client, namespace, op, live):
    """The ref whose change by ``op`` the API does not show yet, else None."""
    return OP_TYPES[op["op"]].pending(client, namespace, op, live)


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
    op_type = OP_TYPES.get(op["op"])
    if op_type is None:
        raise RestoreError("unknown operation %r" % op["op"])
    problems = op_type.validate(op)
    if problems:
        raise RestoreError("; ".join(problems))
    op_type.apply(client, namespace, op, sleep)


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


def _wait_gone(client, kind, name, namespace, sleep, tries=30):
    for _attempt in range(tries):
        if client.get_or_none(kind, name, namespace) is None:
            return
        sleep(0.5)
    raise RestoreError("%s/%s is still being deleted; cannot recreate it" % (kind, name))
