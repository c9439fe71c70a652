# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault handlers: pure functions that turn API objects into the operations of a fault.

One handler per mechanism. A handler never talks to the API: it gets

- ``objects``: dict ``"Kind/name" -> object`` (plain dicts as the API returns them; the
  live objects, so a ``replace`` keeps their ``resourceVersion``),
- ``ref``: the ``"Kind/name"`` the step acts on (the fault's target unless the step
  names another object),
- ``params``: the step's parameters from the catalog,
- ``context``: ``{"namespace": ..., "now": "2026-01-01T00:00:00Z", "drill_id": ...}``,

and returns a list of operations::

    {"op": "replace", "object": {...}}                 # PUT the whole object
    {"op": "create", "object": {...}}                  # POST; recorded in state.created
    {"op": "delete", "kind": K, "name": N}
    {"op": "scale", "kind": "Deployment", "name": N, "replicas": 0}
    {"op": "delete_pods", "selector": "app=backend-api"}
    {"op": "redis_flush", "service": "redis", "port": 6379, "image_from": "Deployment/redis"}

``plan()`` runs a fault's steps in order on a working copy, so a later step sees what an
earlier one changed, and folds several replaces of one object into one.

Handlers for pod-template workloads (Deployment, StatefulSet, DaemonSet) share three
parameters: ``container`` (name; default the first container), ``strategy``
(``Recreate`` makes the change take every old pod down at once, as a real outage does;
a RollingUpdate would keep the old pods serving behind a stalled rollout) and
``change_cause`` (``kubernetes.io/change-cause``, shown by ``kubectl rollout history``).
"""
from __future__ import annotations

import base64
import copy
import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import ops as _ops
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.snapshot import parse_quantity

__all__ = [
    "HANDLERS",
    "HandlerError",
    "created_refs",
    "OP_TYPES",
    "plan",
    "run_handler",
    "parse_quantity",
]

# The operations a handler may return: the op executor's registry.
OP_TYPES = tuple(_ops.OP_TYPES)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class HandlerError(ValueError):
    """A handler cannot apply its fault to the objects it was given."""


# --------------------------------------------------------------------------------------
# helpers

def _split_ref(ref):
    if not isinstance(ref, str) or "/" not in ref:
        raise HandlerError("object reference must be 'Kind/name', got %r" % (ref,))
    kind, name = ref.split("/", 1)
    return kind, name


def _get(objects, ref, kinds=None):
    if ref not in objects or objects[ref] is None:
        raise HandlerError("%s: object not in the snapshot (touches must list it); have %s"
                           % (ref, ", ".join(sorted(objects)) or "nothing"))
    kind, _name = _split_ref(ref)
    if kinds and kind not in kinds:
        raise HandlerError("%s: this handler works on %s, not %s"
                           % (ref, " or ".join(kinds), kind))
    return copy.deepcopy(objects[ref])


def _pod_spec(obj, ref):
    try:
        spec = obj["spec"]["template"]["spec"]
    except (KeyError, TypeError):
        raise HandlerError("%s: no spec.template.spec (not a pod-template workload)" % ref)
    if not spec.get("containers"):
        raise HandlerError("%s: pod template has no containers" % ref)
    return spec


def _container(obj, ref, name=None):
    spec = _pod_spec(obj, ref)
    containers = spec["containers"]
    if not name:
        return containers[0]
    for item in containers:
        if item.get("name") == name:
            return item
    raise HandlerError("%s: no container %r; containers: %s"
                       % (ref, name, ", ".join(c.get("name", "?") for c in containers)))


def _set_annotation(meta, key, value):
    annotations = meta.get("annotations") or {}
    annotations[key] = value
    meta["annotations"] = annotations


def _apply_workload_common(obj, ref, params):
    """strategy and change_cause, shared by every pod-template handler."""
    strategy = params.get("strategy")
    if strategy:
        kind = _split_ref(ref)[0]
        if kind != "Deployment":
            raise HandlerError("%s: strategy applies to Deployments only" % ref)
        if strategy not in ("Recreate", "RollingUpdate"):
            raise HandlerError("%s: strategy must be Recreate or RollingUpdate, got %r"
                               % (ref, strategy))
        if strategy == "Recreate":
            # The API rejects rollingUpdate parameters on a Recreate strategy.
            obj["spec"]["strategy"] = {"type": "Recreate"}
        elif (obj["spec"].get("strategy") or {}).get("type") != "RollingUpdate":
            obj["spec"]["strategy"] = {"type": "RollingUpdate"}
    cause = params.get("change_cause")
    if cause:
        _set_annotation(obj.setdefault("metadata", {}), CHANGE_CAUSE, str(cause))
    return obj


def _replace(obj):
    return [{"op": "replace", "object": obj}]


def _env_list(container):
    env = container.get("env")
    if env is None:
        env = []
        container["env"] = env
    return env


def _set_env_value(container, name, value):
    env = _env_list(container)
    for item in env:
        if item.get("name") == name:
            item.pop("valueFrom", None)
            item["value"] = str(value)
            return
    env.append({"name": name, "value": str(value)})


def _has_env(container, name):
    return any(item.get("name") == name for item in container.get("env") or [])


def _env_strings(params, key):
    values = params.get(key) or {}
    if not isinstance(values, dict):
        raise HandlerError("%s must be a mapping NAME: value" % key)
    return values


def _secret_data(obj):
    data = dict(obj.get("data") or {})
    for key, value in (obj.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
    obj.pop("stringData", None)
    return data


# --------------------------------------------------------------------------------------
# pod-template handlers

def set_env(objects, ref, params, context):
    """Set env vars (``env``) and, only where absent, ``env_if_absent``."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    env = _env_strings(params, "env")
    if_absent = _env_strings(params, "env_if_absent")
    if not env and not if_absent:
        raise HandlerError("set_env: give env or env_if_absent")
    for name, value in env.items():
        _set_env_value(container, name, value)
    for name, value in if_absent.items():
        if not _has_env(container, name):
            _set_env_value(container, name, value)
    return _replace(_apply_workload_common(obj, ref, params))


def remove_env(objects, ref, params, context):
    """Remove env vars ``names`` (error if none of them is set)."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    names = params.get("names") or []
    env = container.get("env") or []
    missing = [n for n in names if not any(i.get("name") == n for i in env)]
    if not names or missing:
        raise HandlerError("%s: remove_env: %s not set in container %s; set: %s"
                           % (ref, ", ".join(missing) or "no names given",
                              container.get("name"),
                              ", ".join(i.get("name", "?") for i in env) or "none"))
    container["env"] = [i for i in env if i.get("name") not in names]
    return _replace(_apply_workload_common(obj, ref, params))


def rename_env(objects, ref, params, context):
    """Rename env var ``from`` to ``to`` (a misspelling), keeping value/valueFrom."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    old, new = params.get("from"), params.get("to")
    if not old or not new or old == new:
        raise HandlerError("rename_env: give two different names 'from' and 'to'")
    for item in container.get("env") or []:
        if item.get("name") == old:
            item["name"] = new
            return _replace(_apply_workload_common(obj, ref, params))
    raise HandlerError("%s: rename_env: %s not set in container %s"
                       % (ref, old, container.get("name")))


def append_env_list(objects, ref, params, context):
    """Append ``item`` to the ``separator``-separated list in env var ``name``."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    name, item = params.get("name"), params.get("item")
    sep = params.get("separator", ",")
    if not name or not item:
        raise HandlerError("append_env_list: give name and item")
    for entry in container.get("env") or []:
        if entry.get("name") == name:
            if "value" not in entry:
                raise HandlerError("%s: %s comes from valueFrom, cannot append" % (ref, name))
            parts = [p for p in str(entry["value"]).split(sep) if p]
            parts.append(str(item))
            entry["value"] = sep.join(parts)
            return _replace(_apply_workload_common(obj, ref, params))
    raise HandlerError("%s: append_env_list: %s not set in container %s"
                       % (ref, name, container.get("name")))


def patch_container_resources(objects, ref, params, context):
    """Set ``limits`` / ``requests``; requests above a new limit come down to it."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    limits, requests = params.get("limits") or {}, params.get("requests") or {}
    if not limits and not requests:
        raise HandlerError("patch_container_resources: give limits and/or requests")
    resources = container.setdefault("resources", {})
    for section, values in (("limits", limits), ("requests", requests)):
        for key, value in values.items():
            parse_quantity(value)
            resources.setdefault(section, {})[key] = str(value)
    # The API rejects requests > limits; a limit lowered below the request takes the
    # request down with it (what an operator editing only the limit would be told to do).
    for key, limit in (resources.get("limits") or {}).items():
        req = (resources.get("requests") or {}).get(key)
        if req is not None and key not in requests and parse_quantity(req) > parse_quantity(limit):
            resources["requests"][key] = limit
    return _replace(_apply_workload_common(obj, ref, params))


_PROBE_FIELDS = ("timeoutSeconds", "periodSeconds", "failureThreshold",
                 "successThreshold", "initialDelaySeconds")


def patch_probes(objects, ref, params, context):
    """Tighten probes: set the given timing fields on ``probes`` (readiness, liveness,
    startup). A missing probe is created as an HTTP GET on ``path``/``port`` when
    ``create_http`` is given, else left alone."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    fields = {k: int(params[k]) for k in _PROBE_FIELDS if k in params}
    if not fields:
        raise HandlerError("patch_probes: give at least one of %s" % ", ".join(_PROBE_FIELDS))
    which = params.get("probes") or ["readiness", "liveness"]
    create = params.get("create_http")
    changed = []
    for probe in which:
        if probe not in ("readiness", "liveness", "startup"):
            raise HandlerError("patch_probes: probe %r not one of readiness, liveness, startup"
                               % probe)
        key = probe + "Probe"
        if key not in container:
            if not create:
                continue
            container[key] = {"httpGet": {"path": create.get("path", "/health"),
                                          "port": create.get("port", 8080),
                                          "scheme": "HTTP"},
                              "timeoutSeconds": 1, "periodSeconds": 10,
                              "successThreshold": 1, "failureThreshold": 3}
        if probe in ("liveness", "startup") and fields.get("successThreshold", 1) != 1:
            raise HandlerError("patch_probes: successThreshold must be 1 for %s probes" % probe)
        container[key].update(fields)
        changed.append(key)
    if not changed:
        raise HandlerError("%s: container %s has none of the probes %s (give create_http)"
                           % (ref, container.get("name"), ", ".join(which)))
    return _replace(_apply_workload_common(obj, ref, params))


def set_container_arg(objects, ref, params, context):
    """Set a command-line option of the container: the value after ``option`` in its
    args (or command, when it has no args) becomes ``value``; an option not there yet
    is appended with its value. For programs configured by flags (redis-server,
    postgres -c ...)."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    option, value = params.get("option"), params.get("value")
    if not option or value is None:
        raise HandlerError("set_container_arg: give option and value")
    field = "args" if container.get("args") else "command"
    argv = container.get(field)
    if not argv:
        raise HandlerError("%s: container %s has neither args nor command to carry %s"
                           % (ref, container.get("name"), option))
    argv = list(argv)
    if option in argv:
        index = argv.index(option)
        if index + 1 >= len(argv):
            raise HandlerError("%s: %s is the last argument, without a value" % (ref, option))
        if argv[index + 1] == str(value):
            raise HandlerError("%s: %s is %s already" % (ref, option, value))
        argv[index + 1] = str(value)
    else:
        argv += [option, str(value)]
    container[field] = argv
    return _replace(_apply_workload_common(obj, ref, params))


def set_node_selector(objects, ref, params, context):
    """Add ``node_selector`` labels to the pod template (pods go Pending when no node has them)."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    selector = params.get("node_selector")
    if not isinstance(selector, dict) or not selector:
        raise HandlerError("set_node_selector: node_selector must be a non-empty mapping")
    spec = _pod_spec(obj, ref)
    merged = dict(spec.get("nodeSelector") or {})
    merged.update({str(k): str(v) for k, v in selector.items()})
    spec["nodeSelector"] = merged
    return _replace(_apply_workload_common(obj, ref, params))


def rollout_restart(objects, ref, params, context):
    """What ``kubectl rollout restart`` does: a new restartedAt pod template annotation."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    meta = obj["spec"]["template"].setdefault("metadata", {})
    stamp = params.get("at") or context.get("now") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _set_annotation(meta, RESTARTED_AT, stamp)
    return _replace(_apply_workload_common(obj, ref, params))


def scale(objects, ref, params, context):
    """Scale a workload to ``replicas`` (via the scale subresource)."""
    kind, name = _split_ref(ref)
    obj = _get(objects, ref, ("Deployment", "StatefulSet", "ReplicaSet"))
    replicas = params.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise HandlerError("scale: replicas must be an integer >= 0, got %r" % (replicas,))
    if obj.get("spec", {}).get("replicas", 1) == replicas:
        raise HandlerError("%s already has %d replicas: the fault would change nothing"
                           % (ref, replicas))
    return [{"op": "scale", "kind": kind, "name": name, "replicas": replicas}]


def _volume_for_mount(spec, container, ref, mount_path=None, volume=None):
    if volume:
        name = volume
    else:
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == mount_path]
        if not mounts:
            raise HandlerError("%s: container %s mounts nothing at %s; mounts: %s"
                               % (ref, container.get("name"), mount_path,
                                  ", ".join(m.get("mountPath", "?") for m in
                                            container.get("volumeMounts") or []) or "none"))
        name = mounts[0]["name"]
    for item in spec.get("volumes") or []:
        if item.get("name") == name:
            return item
    raise HandlerError("%s: no volume %r in the pod template" % (ref, name))


def add_volume_size_limit(objects, ref, params, context):
    """Give the emptyDir at ``mount_path`` (or named ``volume``) a ``size_limit``;
    ``medium: Memory`` makes it a tmpfs of that size, so writes fail with ENOSPC
    instead of the pod being evicted."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    size = params.get("size_limit")
    if not size:
        raise HandlerError("add_volume_size_limit: give size_limit")
    parse_quantity(size)
    vol = _volume_for_mount(_pod_spec(obj, ref), container, ref,
                            params.get("mount_path"), params.get("volume"))
    if "emptyDir" not in vol:
        raise HandlerError("%s: volume %s is not an emptyDir (%s)"
                           % (ref, vol.get("name"), ", ".join(k for k in vol if k != "name")))
    empty = vol.get("emptyDir") or {}
    empty["sizeLimit"] = str(size)
    if params.get("medium") is not None:
        if params["medium"] not in ("", "Memory"):
            raise HandlerError("add_volume_size_limit: medium must be '' or Memory")
        empty["medium"] = params["medium"]
    vol["emptyDir"] = empty
    return _replace(_apply_workload_common(obj, ref, params))


def add_pvc_volume(objects, ref, params, context):
    """Create PVC ``claim_name`` (``storage_class``, ``size``) and mount it at
    ``mount_path``. A storage class that does not exist leaves the claim and every new
    pod Pending."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    claim = params.get("claim_name")
    mount_path = params.get("mount_path")
    if not claim or not mount_path:
        raise HandlerError("add_pvc_volume: give claim_name and mount_path")
    size = str(params.get("size", "1Gi"))
    parse_quantity(size)
    volume_name = params.get("volume_name") or claim
    spec = _pod_spec(obj, ref)
    if any(v.get("name") == volume_name for v in spec.get("volumes") or []):
        raise HandlerError("%s: a volume %r exists already" % (ref, volume_name))
    spec.setdefault("volumes", []).append(
        {"name": volume_name, "persistentVolumeClaim": {"claimName": claim}})
    container.setdefault("volumeMounts", []).append(
        {"name": volume_name, "mountPath": mount_path})
    labels = dict((obj.get("metadata") or {}).get("labels") or {})
    labels["opsdrill.io/created-by"] = "fault"
    pvc = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "labels": labels},
        "spec": {"accessModes": list(params.get("access_modes") or ["ReadWriteOnce"]),
                 "resources": {"requests": {"storage": size}}},
    }
    if params.get("storage_class") is not None:
        pvc["spec"]["storageClassName"] = params["storage_class"]
    if context.get("namespace"):
        pvc["metadata"]["namespace"] = context["namespace"]
    return [{"op": "create", "object": pvc}] + _replace(_apply_workload_common(obj, ref, params))


def secret_file_mode(objects, ref, params, context):
    """Read a credential from a file on a secret volume whose mode the container user
    cannot read.

    Mounts Secret ``secret`` at ``mount_path`` (or reuses a volume of that Secret) with
    ``mode`` (default 0400: owner root only), points ``file_env`` at the key's file,
    removes ``drop_env`` (the env form of the same credential), removes the pod's
    fsGroup (which would make the file group-readable again) and makes sure the
    container does not run as root (``run_as_user`` when no runAsUser is set), since
    root reads any file."""
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    spec = _pod_spec(obj, ref)
    secret, key = params.get("secret"), params.get("key")
    mount_path, file_env = params.get("mount_path"), params.get("file_env")
    if not (secret and key and mount_path and file_env):
        raise HandlerError("secret_file_mode: give secret, key, mount_path and file_env")
    mode = params.get("mode", 0o400)
    # "0400" (a string) is octal, as in a manifest; an int is taken as is (YAML 1.1
    # already reads 0400 as 256).
    mode = int(mode, 8) if isinstance(mode, str) else int(mode)
    if not 0 <= mode <= 0o777:
        raise HandlerError("secret_file_mode: mode must be 0..0777, got %r" % mode)
    volume = None
    for item in spec.get("volumes") or []:
        if (item.get("secret") or {}).get("secretName") == secret:
            volume = item
            break
    if volume is None:
        volume = {"name": params.get("volume_name") or "opsdrill-credentials",
                  "secret": {"secretName": secret}}
        spec.setdefault("volumes", []).append(volume)
    volume["secret"]["defaultMode"] = mode
    for item in volume["secret"].get("items") or []:
        item["mode"] = mode
    mounts = container.setdefault("volumeMounts", [])
    mount = next((m for m in mounts if m.get("name") == volume["name"]), None)
    if mount is None:
        mount = {"name": volume["name"], "mountPath": mount_path, "readOnly": True}
        mounts.append(mount)
    path = key
    for item in volume["secret"].get("items") or []:
        if item.get("key") == key:
            path = item.get("path", key)
    _set_env_value(container, file_env, mount["mountPath"].rstrip("/") + "/" + path)
    drop = params.get("drop_env") or []
    container["env"] = [e for e in container.get("env") or [] if e.get("name") not in drop]
    pod_sc = spec.get("securityContext") or {}
    if params.get("drop_fs_group", True):
        pod_sc.pop("fsGroup", None)
        pod_sc.pop("fsGroupChangePolicy", None)
    ctr_sc = container.get("securityContext") or {}
    uid = ctr_sc.get("runAsUser", pod_sc.get("runAsUser"))
    if uid in (None, 0):
        ctr_sc["runAsUser"] = int(params.get("run_as_user", 10001))
        if ctr_sc.get("runAsNonRoot") is False:
            ctr_sc["runAsNonRoot"] = True
        container["securityContext"] = ctr_sc
    if pod_sc:
        spec["securityContext"] = pod_sc
    else:
        spec.pop("securityContext", None)
    return _replace(_apply_workload_common(obj, ref, params))


def release(objects, ref, params, context):
    """A new release of a workload: pod template env (``SEO_RELEASE`` = ``version`` plus
    ``env``), version labels on the Deployment and its pods, and the change-cause that
    ``kubectl rollout history`` shows. ``version_env`` names the variable(s) that carry
    the version (default SEO_RELEASE). The engine commits the same change to the local
    deploy repository (``commit_message``). ``require_memory_limit`` refuses a
    container without a memory limit (for a leaking release)."""
    version = params.get("version")
    cause = params.get("change_cause")
    if not version or not cause:
        raise HandlerError("release: give version and change_cause")
    obj = _get(objects, ref, WORKLOAD_KINDS)
    container = _container(obj, ref, params.get("container"))
    if params.get("require_memory_limit") and not (
            (container.get("resources") or {}).get("limits") or {}).get("memory"):
        # A leaking release without a memory limit grows until the node runs short.
        raise HandlerError("%s: container %s has no memory limit; this release leaks memory "
                           "and needs one to stay contained" % (ref, container.get("name")))
    version_env = params.get("version_env", ["SEO_RELEASE"])
    for name in [version_env] if isinstance(version_env, str) else version_env:
        _set_env_value(container, name, version)
    for name, value in _env_strings(params, "env").items():
        _set_env_value(container, name, value)
    for name, value in _env_strings(params, "env_if_absent").items():
        if not _has_env(container, name):
            _set_env_value(container, name, value)
    label = params.get("version_label", "app.kubernetes.io/version")
    if label:
        for meta in (obj.setdefault("metadata", {}),
                     obj["spec"]["template"].setdefault("metadata", {})):
            labels = meta.get("labels") or {}
            labels[label] = str(version)
            meta["labels"] = labels
        # The selector must keep matching: never put the version label into it.
        selector = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
        if label in selector:
            raise HandlerError("%s: %s is part of the selector; choose another version_label"
                               % (ref, label))
    merged = dict(params)
    merged["change_cause"] = cause
    return _replace(_apply_workload_common(obj, ref, merged))


# --------------------------------------------------------------------------------------
# Secret handlers

def secret_remove_key(objects, ref, params, context):
    """Remove ``key`` from a Secret."""
    obj = _get(objects, ref, ("Secret",))
    key = params.get("key")
    data = _secret_data(obj)
    if key not in data:
        raise HandlerError("%s: no key %r; keys: %s" % (ref, key, ", ".join(sorted(data)) or "none"))
    del data[key]
    obj["data"] = data
    return _replace(obj)


def secret_set_key(objects, ref, params, context):
    """Set ``key`` of a Secret to ``value`` (a string; stored base64-encoded)."""
    obj = _get(objects, ref, ("Secret",))
    key, value = params.get("key"), params.get("value")
    if not key or value is None:
        raise HandlerError("secret_set_key: give key and value")
    data = _secret_data(obj)
    encoded = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
    if data.get(key) == encoded:
        raise HandlerError("%s: key %s already has that value" % (ref, key))
    if key not in data and params.get("must_exist", True):
        raise HandlerError("%s: no key %r to rotate; keys: %s"
                           % (ref, key, ", ".join(sorted(data)) or "none"))
    data[key] = encoded
    obj["data"] = data
    return _replace(obj)


# --------------------------------------------------------------------------------------
# Service handlers

def service_selector(objects, ref, params, context):
    """Change a Service's selector: ``set`` replaces it, ``add`` merges labels into it.
    A selector no pod matches leaves the Service without endpoints."""
    obj = _get(objects, ref, ("Service",))
    spec = obj.setdefault("spec", {})
    if params.get("set"):
        new = {str(k): str(v) for k, v in params["set"].items()}
    elif params.get("add"):
        new = dict(spec.get("selector") or {})
        new.update({str(k): str(v) for k, v in params["add"].items()})
    else:
        raise HandlerError("service_selector: give set or add")
    if new == (spec.get("selector") or {}):
        raise HandlerError("%s: selector unchanged" % ref)
    spec["selector"] = new
    return _replace(obj)


def service_target_port(objects, ref, params, context):
    """Point a Service port (``port``: number or name; default the first) at
    ``target_port``, where nothing listens."""
    obj = _get(objects, ref, ("Service",))
    ports = (obj.get("spec") or {}).get("ports") or []
    if not ports:
        raise HandlerError("%s: Service has no ports" % ref)
    wanted = params.get("port")
    target = params.get("target_port")
    if target is None:
        raise HandlerError("service_target_port: give target_port")
    chosen = ports[0] if wanted is None else next(
        (p for p in ports if p.get("port") == wanted or p.get("name") == wanted), None)
    if chosen is None:
        names = ", ".join(str(p.get("name") or p.get("port")) for p in ports)
        raise HandlerError("%s: no port %r; ports: %s" % (ref, wanted, names))
    if chosen.get("targetPort") == target:
        raise HandlerError("%s: targetPort is %r already" % (ref, target))
    chosen["targetPort"] = target
    return _replace(obj)


def create_service(objects, ref, params, context):
    """Create a ClusterIP Service ``name`` with ``selector``; a selector that matches no
    pod gives a name that resolves but where every connection is refused."""
    name = params.get("name")
    selector = params.get("selector")
    if not name or not isinstance(selector, dict) or not selector:
        raise HandlerError("create_service: give name and a non-empty selector")
    if "Service/%s" % name in objects:
        raise HandlerError("create_service: Service %s exists already" % name)
    port = int(params.get("port", 80))
    svc = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": dict(params.get("labels") or {})},
        "spec": {"type": "ClusterIP", "selector": {str(k): str(v) for k, v in selector.items()},
                 "ports": [{"name": "http", "port": port, "protocol": "TCP",
                            "targetPort": params.get("target_port", 8080)}]},
    }
    svc["metadata"]["labels"]["opsdrill.io/created-by"] = "fault"
    if context.get("namespace"):
        svc["metadata"]["namespace"] = context["namespace"]
    return [{"op": "create", "object": svc}]


# --------------------------------------------------------------------------------------
# triggers

def delete_pods(objects, ref, params, context):
    """Delete the workload's pods (``selector`` or the workload's matchLabels), as a node
    drain or crash would: their replacements start with the current, faulty, config."""
    selector = params.get("selector")
    if not selector:
        obj = _get(objects, ref, WORKLOAD_KINDS)
        labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels:
            raise HandlerError("%s: no spec.selector.matchLabels; give selector" % ref)
        selector = ",".join("%s=%s" % (k, v) for k, v in sorted(labels.items()))
    return [{"op": "delete_pods", "selector": selector}]


HANDLERS = {
    "set_env": set_env,
    "remove_env": remove_env,
    "rename_env": rename_env,
    "append_env_list": append_env_list,
    "patch_container_resources": patch_container_resources,
    "patch_probes": patch_probes,
    "set_container_arg": set_container_arg,
    "set_node_selector": set_node_selector,
    "rollout_restart": rollout_restart,
    "scale": scale,
    "add_volume_size_limit": add_volume_size_limit,
    "add_pvc_volume": add_pvc_volume,
    "secret_file_mode": secret_file_mode,
    "release": release,
    "secret_remove_key": secret_remove_key,
    "secret_set_key": secret_set_key,
    "service_selector": service_selector,
    "service_target_port": service_target_port,
    "create_service": create_service,
    "delete_pods": delete_pods,
}


def created_refs(ops):
    """'Kind/name' of every object the operations create: record them in the drill
    state before applying, so a restore deletes them even after a half-done inject."""
    return [_op_ref(op) for op in ops if op.get("op") == "create"]


def run_handler(name, objects, ref, params=None, context=None):
    """Run one handler by name; unknown names list the known ones."""
    if name not in HANDLERS:
        raise HandlerError("unknown handler %r; handlers: %s" % (name, ", ".join(sorted(HANDLERS))))
    try:
        ops = HANDLERS[name](objects, ref, dict(params or {}), dict(context or {}))
    except HandlerError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise HandlerError("handler %s on %s: %s: %s" % (name, ref, type(exc).__name__, exc))
    for op in ops:
        if op.get("op") not in OP_TYPES:
            raise HandlerError("handler %s returned unknown op %r" % (name, op.get("op")))
    return ops


def _op_ref(op):
    if "object" in op:
        return "%s/%s" % (op["object"].get("kind"), op["object"]["metadata"]["name"])
    if op.get("kind") and op.get("name"):
        return "%s/%s" % (op["kind"], op["name"])
    return None


def plan(steps, objects, context=None):
    """Run ``steps`` (``[{"handler", "object": "Kind/name", "params"}]``) in order.

    Returns the operations to apply, in order: creates first (a PVC before the pods that
    mount it), then each changed object once (its last state), then scales and triggers
    (pod deletions) last, so that replacement pods see the new config. ``objects`` is
    not modified."""
    work = {ref: copy.deepcopy(obj) for ref, obj in objects.items()}
    creates, replaces, tail = [], {}, []
    order = []
    for index, step in enumerate(steps):
        try:
            ops = run_handler(step["handler"], work, step["object"], step.get("params"), context)
        except HandlerError as exc:
            raise HandlerError("step %d (%s on %s): %s"
                               % (index + 1, step.get("handler"), step.get("object"), exc))
        for op in ops:
            ref = _op_ref(op)
            if op["op"] == "replace":
                work[ref] = op["object"]
                if ref not in replaces:
                    order.append(ref)
                replaces[ref] = op
            elif op["op"] == "create":
                work[ref] = op["object"]
                creates.append(op)
            elif op["op"] == "scale":
                spec = (work.get(ref) or {}).setdefault("spec", {})
                spec["replicas"] = op["replicas"]
                tail.append(op)
            else:
                tail.append(op)
    return creates + [replaces[ref] for ref in order] + tail
