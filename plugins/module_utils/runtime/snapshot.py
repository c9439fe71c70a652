# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots of API objects: normalise, diff, and the drill-state encoding.

Stdlib only: this file also runs inside the cluster as part of the dead-man's switch.

Why a plain comparison is right (and no "compare only common fields" trick is needed):
the snapshot and the live object both come from the API server, so both went through
the same defaulting. What still differs without anybody changing anything is a short,
known list, dropped by ``normalise`` or skipped by ``diff``:

- fields the server rewrites on every write or recreate: ``status``,
  ``metadata.resourceVersion``/``uid``/``generation``/``managedFields``/
  ``creationTimestamp``/``selfLink``/``deletionTimestamp``/``deletionGracePeriodSeconds``;
- annotations controllers and clients maintain: ``deployment.kubernetes.io/revision``,
  ``kubectl.kubernetes.io/last-applied-configuration``;
- values the server allocates (``ALLOCATED``): a Service's cluster IPs and node ports,
  a claim's bound volume. They stay in the snapshot for reference, ``diff`` skips them,
  a restore takes them from the live object (they are immutable) or leaves them to the
  server when it recreates the object.

Comparing only the fields present on both sides would be wrong: a fault that adds an
env var (present only live) or removes a Secret key (present only in the snapshot) must
show. Quantities compare by value (``128Mi`` == ``134217728``).
"""
from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import hmac
import json
import re

__all__ = [
    "ALLOCATED",
    "DROP_ANNOTATIONS",
    "DROP_METADATA",
    "MAX_CONFIGMAP_BYTES",
    "STATE_CONFIGMAP",
    "CONTROL_LABEL",
    "SnapshotError",
    "INVENTORY_KINDS",
    "build_state_objects",
    "control_namespace",
    "state_digest",
    "create_body",
    "decode",
    "diff",
    "diff_object",
    "encode",
    "inventory",
    "inventory_changes",
    "normalise",
    "parse_quantity",
    "read_state_objects",
    "redact_secrets",
    "ref_of",
    "restore_body",
]

STATE_CONFIGMAP = "opsdrill-drill-state"
# The drill's own objects (state, locks, dead-man's switch) live in a control namespace
# per drill namespace, out of the team's reach: trainees hold no role there.
CONTROL_PREFIX = "opsdrill-ctl-"
CONTROL_LABEL = "opsdrill.io/control-for"
# A ConfigMap holds at most 1 MiB (data + binaryData); keep room for keys and metadata.
MAX_CONFIGMAP_BYTES = 1000 * 1000

DROP_METADATA = ("resourceVersion", "uid", "managedFields", "generation", "creationTimestamp",
                 "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
DROP_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",
                    "deployment.kubernetes.io/revision")

# Server-allocated values: paths (tuples; "*" = every list item) per kind, plus
# annotation prefixes the volume controllers write.
ALLOCATED = {
    "Service": [("spec", "clusterIP"), ("spec", "clusterIPs"), ("spec", "healthCheckNodePort"),
                ("spec", "ports", "*", "nodePort")],
    "PersistentVolumeClaim": [("spec", "volumeName")],
}
ALLOCATED_ANNOTATION_PREFIXES = {
    "PersistentVolumeClaim": ("pv.kubernetes.io/", "volume.beta.kubernetes.io/",
                              "volume.kubernetes.io/"),
}
# Keys under which values are quantities.
_QUANTITY_PARENTS = ("limits", "requests", "capacity", "hard", "allocatable")
_QUANTITY_KEYS = ("sizeLimit", "storage")


class SnapshotError(ValueError):
    """A snapshot or drill state cannot be encoded or read."""


# --------------------------------------------------------------------------------------
# quantities

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40,
    "Pi": 2 ** 50, "Ei": 2 ** 60,
}


def parse_quantity(value):
    """Kubernetes quantity ("128Mi", "0.5", "500m", 3) -> float; ValueError if not one."""
    if isinstance(value, bool):
        raise ValueError("not a quantity: %r" % (value,))
    if isinstance(value, (int, float)):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError("not a quantity: %r" % (value,))
    return float(match.group(1)) * _SUFFIX[match.group(2)]


# --------------------------------------------------------------------------------------
# normalise

def ref_of(obj):
    """'Kind/name' of an object."""
    try:
        return "%s/%s" % (obj["kind"], obj["metadata"]["name"])
    except (KeyError, TypeError):
        raise SnapshotError("object without kind or metadata.name: %s"
                            % json.dumps(obj, sort_keys=True)[:200])


def normalise(obj, kind=None, api_version=None):
    """A copy without the fields the server rewrites on its own (see module doc).

    List responses omit ``kind``/``apiVersion`` on their items: pass them here."""
    out = copy.deepcopy(obj)
    if kind and not out.get("kind"):
        out["kind"] = kind
    if api_version and not out.get("apiVersion"):
        out["apiVersion"] = api_version
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in DROP_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if annotations is not None:
        for key in DROP_ANNOTATIONS:
            annotations.pop(key, None)
        if not annotations:
            meta.pop("annotations", None)
    if "metadata" in out:
        out["metadata"] = meta
    return out


# --------------------------------------------------------------------------------------
# diff

def _is_allocated(kind, path):
    for pattern in ALLOCATED.get(kind, ()):
        if len(pattern) == len(path) and all(p == "*" or p == q for p, q in zip(pattern, path)):
            return True
    if (len(path) == 3 and path[0] == "metadata" and path[1] == "annotations"
            and isinstance(path[2], str)
            and path[2].startswith(ALLOCATED_ANNOTATION_PREFIXES.get(kind, ()))):
        return True
    return False


def _strip_allocated(kind, obj, path=()):
    """Remove allocated values from a (copied) object in place."""
    if isinstance(obj, dict):
        for key in list(obj):
            if _is_allocated(kind, path + (key,)):
                del obj[key]
            else:
                _strip_allocated(kind, obj[key], path + (key,))
    elif isinstance(obj, list):
        for index, item in enumerate(obj):
            _strip_allocated(kind, item, path + (index,))
    return obj


def _fmt(value):
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _path_str(path):
    out = ""
    for part in path:
        if isinstance(part, int):
            out += "[%d]" % part
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", part):
            out += ("." if out else "") + part
        else:
            out += "[%s]" % json.dumps(part)
    return out


def _quantity_path(path):
    if not path or not isinstance(path[-1], str):
        return False
    if path[-1] in _QUANTITY_KEYS:
        return True
    return len(path) >= 2 and path[-2] in _QUANTITY_PARENTS


def _same_scalar(a, b, path):
    if a == b and type(a) is type(b):
        return True
    if _quantity_path(path):
        try:
            return abs(parse_quantity(a) - parse_quantity(b)) < 1e-9
        except ValueError:
            return False
    return False


def _named(items):
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    if names and all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return names
    return None


def _walk(kind, a, b, path, out):
    if _is_allocated(kind, path):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = path + (key,)
            if _is_allocated(kind, sub):
                continue
            if key not in b:
                out.append((sub, a[key], None, "missing"))
            elif key not in a:
                out.append((sub, None, b[key], "added"))
            else:
                _walk(kind, a[key], b[key], sub, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        names_a, names_b = _named(a), _named(b)
        if names_a is not None and names_b is not None:
            # Lists of named items (containers, env, ports, volumes): match by name, so
            # one removed env var is one difference, not a shift of every later one.
            for index, name in enumerate(names_a):
                if name in names_b:
                    _walk(kind, a[index], b[names_b.index(name)], path + (index,), out)
                else:
                    out.append((path + (index,), a[index], None, "missing"))
            for index, name in enumerate(names_b):
                if name not in names_a:
                    out.append((path + (index,), None, b[index], "added"))
            common_a = [n for n in names_a if n in names_b]
            common_b = [n for n in names_b if n in names_a]
            if common_a != common_b:
                out.append((path, names_a, names_b, "order"))
            return
        for index in range(max(len(a), len(b))):
            if index >= len(b):
                out.append((path + (index,), a[index], None, "missing"))
            elif index >= len(a):
                out.append((path + (index,), None, b[index], "added"))
            else:
                _walk(kind, a[index], b[index], path + (index,), out)
        return
    if not _same_scalar(a, b, path):
        out.append((path, a, b, "changed"))


def _redact(value):
    """Secret values never reach a diff line: a short digest tells them apart."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    digest = hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:12]
    return "<secret sha256:%s>" % digest


# What the verify compares beyond the touched objects: the kinds a team with ``edit`` can
# change and that outlive a pod (pods, ReplicaSets, endpoints and events churn by design).
INVENTORY_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Service", "ConfigMap", "Secret",
                   "PersistentVolumeClaim", "ServiceAccount")


def inventory(objects):
    """``{"Kind/name": digest}`` of the normalised objects (Secret values only as digests)."""
    out = {}
    for obj in objects:
        body = encode(normalise(obj))
        out[ref_of(obj)] = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
    return out


def inventory_changes(before, after, skip=()):
    """What changed in a namespace between two inventories, beyond ``skip`` (the touched
    objects, which the verify compares field by field): ``["Kind/name: changed|appeared|
    vanished", ...]``, sorted."""
    skip = set(skip)
    lines = []
    for ref in sorted(set(before) | set(after)):
        if ref in skip:
            continue
        if ref not in after:
            lines.append("%s: vanished" % ref)
        elif ref not in before:
            lines.append("%s: appeared" % ref)
        elif before[ref] != after[ref]:
            lines.append("%s: changed" % ref)
    return lines


def redact_secrets(objects):
    """``objects`` with every Secret's values replaced by digests (what a verified drill's
    local copy keeps: enough to tell values apart, nothing to read)."""
    out = []
    for obj in objects:
        if obj.get("kind") == "Secret":
            obj = copy.deepcopy(obj)
            for key in ("data", "stringData"):
                if obj.get(key):
                    obj[key] = _redact(obj[key])
        out.append(obj)
    return out


def diff_object(snapshot_obj, live_obj):
    """Differences between one snapshotted object and its live state, as
    ``"Kind/name: path: <snapshot value> != <live value>"`` lines (``<absent>`` for a
    field one side lacks). ``live_obj`` None means the object is gone. Both are
    normalised here, so raw API objects can be passed. Secret values show as digests."""
    ref = ref_of(snapshot_obj)
    if live_obj is None:
        return ["%s: deleted (exists in the snapshot, not live)" % ref]
    kind = snapshot_obj.get("kind")
    a = normalise(snapshot_obj)
    b = normalise(live_obj, kind=kind, api_version=snapshot_obj.get("apiVersion"))
    found = []
    _walk(kind, a, b, (), found)
    lines = []
    for path, left, right, what in found:
        if kind == "Secret" and path and path[0] in ("data", "stringData"):
            left, right = _redact(left), _redact(right)
        where = _path_str(path)
        if what == "order":
            lines.append("%s: %s: order %s != %s" % (ref, where, _fmt(left), _fmt(right)))
        else:
            lines.append("%s: %s: %s != %s" % (
                ref, where,
                "<absent>" if what == "added" else _fmt(left),
                "<absent>" if what == "missing" else _fmt(right)))
    return lines


def _by_ref(objects):
    if objects is None:
        return {}
    if isinstance(objects, dict) and "kind" in objects and "metadata" in objects:
        return {ref_of(objects): objects}
    if isinstance(objects, dict):
        return dict(objects)
    return {ref_of(o): o for o in objects}


def diff(snapshot, live):
    """Every difference between ``snapshot`` and ``live``.

    Each side is one object, a list of objects, or a dict ``"Kind/name" -> object``
    (None for an object that does not exist). Objects only live (not snapshotted) are
    not reported: the snapshot defines what is compared."""
    snap = _by_ref(snapshot)
    cur = _by_ref(live)
    lines = []
    for ref in sorted(snap):
        lines.extend(diff_object(snap[ref], cur.get(ref)))
    return lines


# --------------------------------------------------------------------------------------
# bodies for restore

def restore_body(snapshot_obj, live_obj):
    """The body that PUTs ``live_obj`` back to ``snapshot_obj``: the snapshot plus the
    live resourceVersion, the live server-allocated values (immutable) and the live
    copies of the annotations normalise drops (so a later ``kubectl apply`` still has
    its last-applied configuration)."""
    body = copy.deepcopy(snapshot_obj)
    kind = body.get("kind")
    meta = body.setdefault("metadata", {})
    live_meta = live_obj.get("metadata") or {}
    if live_meta.get("resourceVersion"):
        meta["resourceVersion"] = live_meta["resourceVersion"]
    live_ann = live_meta.get("annotations") or {}
    keep = {k: v for k, v in live_ann.items()
            if k in DROP_ANNOTATIONS
            or k.startswith(ALLOCATED_ANNOTATION_PREFIXES.get(kind, ("\0",)))}
    if keep:
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                       if not k.startswith(ALLOCATED_ANNOTATION_PREFIXES.get(kind, ("\0",)))}
        annotations.update(keep)
        meta["annotations"] = annotations
    _strip_allocated(kind, body)
    _copy_allocated(kind, live_obj, body, ())
    return body


def _copy_allocated(kind, src, dst, path):
    """Copy allocated values present in ``src`` into ``dst`` at the same place."""
    if isinstance(src, dict) and isinstance(dst, dict):
        for key, value in src.items():
            sub = path + (key,)
            if _is_allocated(kind, sub) and not (len(sub) == 3 and sub[1] == "annotations"):
                dst[key] = copy.deepcopy(value)
            elif key in dst:
                _copy_allocated(kind, value, dst[key], sub)
    elif isinstance(src, list) and isinstance(dst, list):
        for index, (s, d) in enumerate(zip(src, dst)):
            _copy_allocated(kind, s, d, path + (index,))


def create_body(snapshot_obj):
    """The body that recreates a deleted object: the snapshot without server-allocated
    values (the old cluster IP may be taken; the server picks a free one)."""
    body = normalise(snapshot_obj)
    return _strip_allocated(body.get("kind"), body)


# --------------------------------------------------------------------------------------
# encoding and the drill-state objects

def encode(value):
    """Stable JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode(text):
    return json.loads(text)


def _pack(name, text, data, binary, limit):
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        data[name] = text
        return len(raw)
    packed = base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")
    binary[name + ".gz"] = packed
    return len(packed)


def _sizes(objects):
    return ", ".join("%s %d bytes" % (ref_of(o), len(encode(o).encode("utf-8")))
                     for o in sorted(objects, key=lambda o: -len(encode(o)))[:5])


def build_state_objects(namespace, state, objects, name=STATE_CONFIGMAP,
                        limit=MAX_CONFIGMAP_BYTES):
    """The drill-state ConfigMap and its companion Secret (None without Secrets).

    ConfigMap ``name``: ``state.json`` and ``snapshot.json`` (normalised objects,
    Secrets left out). Secret ``name`` (type Opaque): ``secrets.json``, the snapshotted
    Secrets, since their values must never land in a ConfigMap. A value over the size
    budget is stored gzipped in ``binaryData`` (``snapshot.json.gz``)."""
    normal = [normalise(o) for o in objects]
    plain = sorted((o for o in normal if o.get("kind") != "Secret"), key=ref_of)
    secrets = sorted((o for o in normal if o.get("kind") == "Secret"), key=ref_of)
    state = dict(state)
    state["secret_snapshot"] = name if secrets else None
    data, binary = {}, {}
    used = _pack("state.json", encode(state), data, binary, limit)
    used += _pack("snapshot.json", encode(plain), data, binary, limit - used)
    if used > limit:
        raise SnapshotError("drill state for %s is %d bytes, over the ConfigMap budget of %d "
                            "even gzipped; largest objects: %s"
                            % (namespace, used, limit, _sizes(plain)))
    labels = {"app.kubernetes.io/part-of": "opsdrill", "opsdrill.io/drill-state": "true"}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": name, "namespace": namespace, "labels": labels},
                 "data": data}
    if binary:
        configmap["binaryData"] = binary
    secret = None
    if secrets:
        text = encode(secrets)
        secret_data = {}
        if len(text) > limit * 3 // 4:
            secret_data["secrets.json.gz"] = base64.b64encode(
                gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")
        else:
            secret_data["secrets.json"] = base64.b64encode(text.encode("utf-8")).decode("ascii")
        if sum(len(v) for v in secret_data.values()) > limit:
            raise SnapshotError("Secret snapshot for %s too large: %s" % (namespace, _sizes(secrets)))
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": name, "namespace": namespace, "labels": labels},
                  "data": secret_data}
    return configmap, secret


def control_namespace(namespace):
    """The control namespace of drill namespace ``namespace``: ``opsdrill-ctl-<namespace>``,
    shortened with a digest when that is over the 63 characters a namespace name may have."""
    name = CONTROL_PREFIX + namespace
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:8]
    return name[:54].rstrip("-") + "-" + digest


# What the restore acts on: a trainee who could rewrite these could make the rollback
# write anything with the engine's credentials. Progress (phase, armed, deadline, the
# restore outcome) stays outside the digest, and so does ``created``, which the injection
# completes: the restore deletes only labelled objects of namespaced kinds from it, which
# the team could delete anyway. The digest never changes after the snapshot, so the
# controller's local copy can be compared with the cluster's state by it.
DIGESTED_STATE_KEYS = ("drill_id", "namespace", "scenario", "variant", "fault", "touches",
                       "post_restore", "releases")


def state_digest(key, state, objects):
    """HMAC-SHA256 (hex) over the state's restore-relevant fields and the normalised
    snapshot objects, with ``key`` (bytes) that only the drill's controller and its
    dead-man's switch can read."""
    body = {"state": {k: state.get(k) for k in DIGESTED_STATE_KEYS},
            "objects": sorted((normalise(o) for o in objects), key=ref_of)}
    return hmac.new(key, encode(body).encode("utf-8"), hashlib.sha256).hexdigest()


def _unpack(obj, key, b64_plain=False):
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    if key in data:
        value = data[key]
        if b64_plain:
            value = base64.b64decode(value).decode("utf-8")
        return value
    packed = binary.get(key + ".gz") or data.get(key + ".gz")
    if packed is not None:
        return gzip.decompress(base64.b64decode(packed)).decode("utf-8")
    return None


def read_state_objects(configmap, secret=None):
    """(state, objects) from the drill-state ConfigMap (and Secret, needed when the
    state says Secrets were snapshotted)."""
    if configmap is None:
        raise SnapshotError("no drill-state ConfigMap")
    where = "ConfigMap %s" % (configmap.get("metadata") or {}).get("name", STATE_CONFIGMAP)
    text = _unpack(configmap, "state.json")
    if text is None:
        raise SnapshotError("%s has no state.json" % where)
    try:
        state = decode(text)
        objects = decode(_unpack(configmap, "snapshot.json") or "[]")
    except ValueError as exc:
        raise SnapshotError("%s: invalid JSON: %s" % (where, exc))
    if state.get("secret_snapshot"):
        if secret is None:
            raise SnapshotError("%s: Secrets were snapshotted into Secret %s, which is missing"
                                % (where, state["secret_snapshot"]))
        text = _unpack(secret, "secrets.json", b64_plain=True)
        if text is None:
            raise SnapshotError("Secret %s has no secrets.json" % state["secret_snapshot"])
        objects = objects + decode(text)
    return state, objects
