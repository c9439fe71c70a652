# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dead-man's switch: who restores the namespace when the drill's controller cannot.

Two guards watch an armed drill (docs/contracts.md section 5):

- **in the cluster**: a Job (stock Python image, namespace-scoped ServiceAccount and
  Role) runs ``runtime.restore`` from a ConfigMap volume laid out as ``runtime.tree()`` and
  restores the snapshot at the drill's hard deadline unless the state is disarmed. It
  covers a lost controller host.
- **on the controller**: ``watchdog.py``, started detached, watches the
  ``ansible-playbook`` process and restores at once when it ends while the drill is
  still armed: Ctrl-C, SIGTERM, SIGKILL, a crash. Ansible runs no ``always`` block
  after Ctrl-C; this is what rolls such a run back.

``manifests`` is pure; ``arm``/``disarm``/``remove`` use a ``k8s_rest.Client``. Stdlib
only: the watchdog runs this file from its copy of the package (see the package's rule).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from ansible_collections.opsdrill.drills.plugins.module_utils import runtime as _runtime
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state as _state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest as _k8s
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as _snap
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError

__all__ = ["NAME", "arm", "controller_pid", "disarm", "manifests", "remove", "remove_control_namespace",
           "remove_state", "spawn_watchdog", "wait_running"]

NAME = "opsdrill-deadman"
CODE_CONFIGMAP = "opsdrill-deadman-code"
MOUNT = "/opsdrill"
LABELS = {"app.kubernetes.io/part-of": "opsdrill", "app.kubernetes.io/component": "deadman"}
# API paths of the kinds k8s_rest does not list.
_EXTRA = {
    "Job": ("apis/batch/v1", "jobs"),
    "Role": ("apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("apis/rbac.authorization.k8s.io/v1", "rolebindings"),
}
# What restore.py needs in the drill namespace: the snapshotted kinds and pods (flush
# pod, delete_pods, logs). Granted by a Role there, bound to the switch's ServiceAccount
# in the control namespace (``edit`` cannot change Roles or RoleBindings).
RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "secrets", "services",
                                      "persistentvolumeclaims", "serviceaccounts"],
     "verbs": ["get", "list", "create", "update", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"],
     "verbs": ["get", "list", "create", "delete", "deletecollection"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
     "verbs": ["get", "list", "create", "update", "patch", "delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale", "statefulsets/scale"],
     "verbs": ["get", "update", "patch"]},
]
# ... and in the control namespace: the drill state, its key and the restore lock.
CONTROL_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [_snap.STATE_CONFIGMAP],
     "verbs": ["get", "update", "patch"]},
    {"apiGroups": [""], "resources": ["secrets"],
     "resourceNames": [_snap.STATE_CONFIGMAP, _state.KEY_SECRET], "verbs": ["get"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "resourceNames": [_state.LOCK_NAME], "verbs": ["get", "update", "delete"]},
]


def _path(kind, namespace, name=None):
    if kind in _EXTRA:
        prefix, plural = _EXTRA[kind]
        path = "/%s/namespaces/%s/%s" % (prefix, namespace, plural)
        return path + ("/" + name if name else "")
    return _k8s.resource_path(kind, namespace, name)


def _get(client, kind, name, namespace):
    try:
        return client.request("GET", _path(kind, namespace, name))
    except _k8s.ApiError as exc:
        if exc.not_found:
            return None
        raise


def _configmap_key(path):
    """The code ConfigMap's key of a ``runtime.tree()`` path (keys cannot hold ``/``): the
    runtime's own files keep their names (``restore.py``), the ``__init__.py`` of a package
    above it is named by that package (``ansible_collections.opsdrill.__init__.py``)."""
    dotted = path.replace("/", ".")
    prefix = _runtime.__name__ + "."
    return dotted[len(prefix):] if dotted.startswith(prefix) else dotted


def _delete(client, kind, name, namespace):
    try:
        client.request("DELETE", _path(kind, namespace, name),
                       body={"kind": "DeleteOptions", "apiVersion": "v1",
                             "propagationPolicy": "Background"})
        return True
    except _k8s.ApiError as exc:
        if exc.not_found:
            return False
        raise


def manifests(namespace, drill_id, deadline, image, pull_policy="IfNotPresent", files=None,
              poll_s=5, now=None, grace_s=1800):
    """ServiceAccount, Role, RoleBinding, code ConfigMap and Job of the in-cluster
    dead-man's switch, in creation order. ``files``: ``{path: text}``, default
    ``runtime.tree()``; the ConfigMap holds them under flat keys and the volume's ``items``
    put each at its path under the mount, which the Job puts on ``PYTHONPATH``."""
    now = time.time() if now is None else now
    control = _snap.control_namespace(namespace)
    labels = dict(LABELS, **{"opsdrill.io/drill-id": drill_id[:63].rstrip("-.")})
    meta = {"name": NAME, "namespace": control, "labels": labels}
    files = files if files is not None else _runtime.tree()
    items = [{"key": _configmap_key(path), "path": path} for path in sorted(files)]
    code = {item["key"]: files[item["path"]] for item in items}
    if len(code) != len(items):
        raise ValueError("two files of the dead-man's code share a ConfigMap key")
    # The Job outlives the deadline by grace_s (restore and retries), never forever.
    active_deadline = max(60, int(deadline - now) + int(grace_s))
    container = {
        "name": "deadman", "image": image, "imagePullPolicy": pull_policy,
        "command": ["python3", "-m", _runtime.__name__ + ".restore", "--namespace", namespace,
                    "--state-namespace", control,
                    "--deadline", "%d" % int(deadline), "--poll", str(poll_s)],
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                {"name": "PYTHONUNBUFFERED", "value": "1"},
                {"name": "PYTHONPATH", "value": MOUNT}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                      "limits": {"cpu": "200m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "code", "mountPath": MOUNT, "readOnly": True}],
    }
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": control}]
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    in_drill_ns = dict(meta, namespace=namespace)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta),
         "rules": CONTROL_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
         "roleRef": role_ref, "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": in_drill_ns,
         "rules": RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": in_drill_ns,
         "roleRef": role_ref, "subjects": subject},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": dict(meta, name=CODE_CONFIGMAP), "data": code},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": dict(meta),
         "spec": {"backoffLimit": 20, "activeDeadlineSeconds": active_deadline,
                  "ttlSecondsAfterFinished": 900,
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "serviceAccountName": NAME, "automountServiceAccountToken": True,
                      "restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 5,
                      "enableServiceLinks": False,
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                          "runAsGroup": 10001,
                                          "seccompProfile": {"type": "RuntimeDefault"}},
                      "containers": [container],
                      "volumes": [{"name": "code",
                                   "configMap": {"name": CODE_CONFIGMAP, "items": items}}]}}}},
    ]


def arm(client, namespace, objects, sleep=time.sleep):
    """Create or replace the objects, each in its own namespace (a Job is deleted and
    created anew: its pod template is immutable). Returns the refs written. The pod is
    not running yet: a drill must not inject before ``wait_running`` returned (the
    caller does other work while the pod starts)."""
    _state.ensure_control_namespace(client, namespace)
    written = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        where = obj["metadata"].get("namespace") or namespace
        current = _get(client, kind, name, where)
        if kind == "Job" and current is not None:
            _delete(client, kind, name, where)
            for _attempt in range(60):
                if _get(client, kind, name, where) is None:
                    break
                sleep(0.5)
            current = None
        if current is None:
            client.request("POST", _path(kind, where), body=obj)
        else:
            body = json.loads(json.dumps(obj))
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            client.request("PUT", _path(kind, where, name), body=body)
        written.append("%s/%s" % (kind, name))
    return written


def wait_running(client, namespace, wait_s=60, sleep=time.sleep, poll_s=0.2):
    """Return once the switch's pod runs; raise RestoreError after ``wait_s``. A look is
    one small list, so it looks often: the drill waits for this before injecting."""
    control = _snap.control_namespace(namespace)
    deadline = time.time() + wait_s
    phase = "no pod yet"
    while True:
        pods = client.list("Pod", control, label_selector="app.kubernetes.io/component=deadman")
        phases = [(p.get("status") or {}).get("phase") for p in pods
                  if not (p.get("metadata") or {}).get("deletionTimestamp")]
        if "Running" in phases:
            return
        phase = ", ".join(str(p) for p in phases) or phase
        if time.time() >= deadline:
            raise RestoreError("the dead-man's switch in %s is not running after %d s (%s): "
                               "not injecting without it" % (control, wait_s, phase))
        sleep(poll_s)


def job_status(client, namespace):
    """``(exists, succeeded, failed, active)`` of the dead-man Job."""
    job = _get(client, "Job", NAME, _snap.control_namespace(namespace))
    if job is None:
        return False, 0, 0, 0
    status = job.get("status") or {}
    return True, int(status.get("succeeded") or 0), int(status.get("failed") or 0), \
        int(status.get("active") or 0)


def disarm(client, namespace, drill_id=None, wait_s=20, sleep=time.sleep):
    """Mark the drill state disarmed, give the Job a moment to exit on its own, then
    remove the switch. Returns ``{"state": ..., "job": ..., "removed": [...]}``."""
    result = {"state": "absent", "job": "absent", "removed": []}
    configmap = client.get_or_none("ConfigMap", _snap.STATE_CONFIGMAP, _snap.control_namespace(namespace))
    if configmap is not None:
        state = json.loads((configmap.get("data") or {}).get("state.json") or "{}")
        if drill_id and state.get("drill_id") not in (None, drill_id):
            result["state"] = "another drill (%s)" % state.get("drill_id")
        elif state.get("armed"):
            _state.update_state(client, namespace,
                                {"armed": False, "phase": state.get("phase") or "disarmed"})
            result["state"] = "disarmed"
        else:
            result["state"] = "already disarmed"
    exists, succeeded, _failed, active = job_status(client, namespace)
    if exists:
        deadline = time.time() + wait_s
        while active and not succeeded and time.time() < deadline:
            sleep(2)
            exists, succeeded, _failed, active = job_status(client, namespace)
        result["job"] = "exited" if succeeded else ("running" if active else "not running")
    result["removed"] = remove(client, namespace)
    return result


def remove_state(client, namespace):
    """Delete the drill state (ConfigMap and Secret: they name the fault) and its key once
    the snapshot is live again. Returns the refs deleted."""
    control = _snap.control_namespace(namespace)
    removed = []
    for kind, name in (("ConfigMap", _snap.STATE_CONFIGMAP), ("Secret", _snap.STATE_CONFIGMAP),
                       ("Secret", _state.KEY_SECRET)):
        if client.delete(kind, name, control, missing_ok=True):
            removed.append("%s/%s" % (kind, name))
    return removed


def remove(client, namespace):
    """Delete the switch's objects (whatever drill armed them), in the control namespace and
    the Role and RoleBinding in the drill namespace. Returns the refs deleted."""
    control = _snap.control_namespace(namespace)
    removed = []
    for kind, name, where in (("Job", NAME, control), ("ConfigMap", CODE_CONFIGMAP, control),
                              ("RoleBinding", NAME, namespace), ("Role", NAME, namespace),
                              ("RoleBinding", NAME, control), ("Role", NAME, control),
                              ("ServiceAccount", NAME, control)):
        if _delete(client, kind, name, where):
            removed.append("%s/%s" % (kind, name))
    # The Job's pods go with it (Background propagation); a pod left by a deleted Job
    # of an older run is removed here too.
    try:
        client.delete_collection("Pod", control, label_selector="app.kubernetes.io/component=deadman,"
                                 "app.kubernetes.io/part-of=opsdrill")
    except _k8s.ApiError as exc:
        if not exc.not_found:
            raise
    return removed


def remove_control_namespace(client, namespace):
    """Delete the control namespace of ``namespace`` (teardown), when it is opsdrill's.
    Returns the refs deleted."""
    name = _snap.control_namespace(namespace)
    current = client.get_or_none("Namespace", name)
    labels = ((current or {}).get("metadata") or {}).get("labels") or {}
    if current is None or labels.get(_snap.CONTROL_LABEL) != namespace:
        return []
    client.delete("Namespace", name, missing_ok=True)
    return ["Namespace/%s" % name]


# --------------------------------------------------------------------------------------
# the controller-side watchdog

def command_line(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return [p.decode("utf-8", "replace") for p in handle.read().split(b"\0") if p]
    except OSError:
        return []


def _stat(pid):
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, session, ...)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            text = handle.read()
        return text[text.rindex(")") + 2:].split()
    except (OSError, ValueError):
        return None


def orphaned_workers(cmdline, launcher=None, since=None):
    """The worker processes a killed ``ansible-playbook`` left behind. Ansible forks each
    worker with the controller's command line into a session of its own; once the
    controller is gone, the worker's parent is neither that command nor the controller's
    own parent (``launcher``: a new run started there is not an orphan). ``since``: the
    controller's start time (workers start after it)."""
    if not cmdline:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        fields = _stat(pid)
        if not fields or fields[0] == "Z" or int(fields[3]) != pid or command_line(pid) != cmdline:
            continue
        parent = int(fields[1])
        if parent == launcher or command_line(parent) == cmdline:
            continue
        if since is not None and int(fields[19]) < int(since):
            continue
        found.append(pid)
    return sorted(found)


def kill_orphaned_workers(cmdline, launcher=None, since=None):
    """SIGKILL the sessions of ``orphaned_workers`` (the worker and the module it runs).
    Returns the workers' pids."""
    killed = []
    for pid in orphaned_workers(cmdline, launcher, since):
        try:
            os.killpg(pid, signal.SIGKILL)
            killed.append(pid)
        except OSError:
            pass
    return killed


def parent_pid(pid):
    fields = _stat(pid)
    return int(fields[1]) if fields else 0


def start_time(pid):
    """The process start time (clock ticks since boot), to tell a reused pid apart."""
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def controller_pid(pid=None):
    """The ``ansible-playbook`` (or ``ansible``) main process above ``pid``: the highest
    ancestor whose command line runs an Ansible CLI. None when there is none (or no
    /proc)."""
    pid = pid or os.getpid()
    found = None
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        argv = command_line(pid)
        if any(os.path.basename(arg).startswith(("ansible-playbook", "ansible-runner"))
               for arg in argv[:3]):
            found = pid
        pid = parent_pid(pid)
    return found


def spawn_watchdog(directory, watch_pid, namespace, drill_id, until, kubeconfig=None,
                   context=None, artifacts_dir=None, python=None, files=None):
    """Write the watchdog's files (``files``, default ``runtime.tree()``) into ``directory``
    and start it detached (own session: a Ctrl-C at the terminal does not reach it) as
    ``python -m ...runtime.watchdog`` with ``directory`` first on ``PYTHONPATH``. Returns
    its pid."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for relpath, text in (files or _runtime.tree()).items():
        path = os.path.join(directory, *relpath.split("/"))
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
    argv = [python or sys.executable, "-m", _runtime.__name__ + ".watchdog",
            "--pid", str(watch_pid), "--namespace", namespace, "--drill-id", drill_id,
            "--until", "%d" % int(until)]
    started = start_time(watch_pid)
    if started is not None:
        argv += ["--pid-start", str(started)]
    if kubeconfig:
        argv += ["--kubeconfig", os.path.abspath(os.path.expanduser(kubeconfig))]
    if context:
        argv += ["--context", context]
    if artifacts_dir:
        argv += ["--artifacts-dir", artifacts_dir]
    # First on the path, the written package wins over any other ansible_collections.
    pythonpath = os.pathsep.join([os.path.abspath(directory)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    log = open(os.path.join(directory, "watchdog.log"), "ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                close_fds=True, start_new_session=True, cwd=directory,
                                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=pythonpath))
    finally:
        log.close()
    return proc.pid
