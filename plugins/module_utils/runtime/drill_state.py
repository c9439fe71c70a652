# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill state in the cluster: its store, its HMAC key and the restore lock.

The state (``state.json`` and the snapshot, ``snapshot.build_state_objects``) lives in
the control namespace ``opsdrill-ctl-<drill namespace>``, signed with a per-drill key
(Secret ``KEY_SECRET``): ``load_state`` refuses a state changed after the drill wrote
it. The Lease ``LOCK_NAME`` there lets one restorer at a time run (the engine's
rollback, the dead-man's switch, the watchdog).
"""
from __future__ import annotations

import base64
import datetime
import hmac
import json
import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest as _k8s
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as _snap
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import IntegrityError, RestoreError

ApiError = _k8s.ApiError

__all__ = ["KEY_SECRET", "LOCK_NAME", "Heartbeat", "acquire_lock", "ensure_control_namespace",
           "load_state", "lock_expired", "now_iso", "read_key", "release_lock", "renew_lock",
           "save_state", "state_namespace_for", "update_state"]

LOCK_NAME = "opsdrill-restore-lock"
# The HMAC key of the drill state (a Secret in the control namespace).
KEY_SECRET = "opsdrill-drill-key"
# A restore lock whose holder claims more than this is treated as expired: a planted
# Lease with a renewTime in the future or a huge duration must not block the rollback.
MAX_LOCK_S = 600
CLOCK_SKEW_S = 30


def now_iso(now=None):
    """``now`` (epoch seconds, default: the clock) as the API's MicroTime."""
    stamp = datetime.datetime.fromtimestamp(time.time() if now is None else now,
                                            tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def state_namespace_for(namespace, state_namespace=None):
    """Where the drill state of ``namespace`` lives: ``state_namespace`` when given, else
    the control namespace."""
    return state_namespace or _snap.control_namespace(namespace)


def read_key(client, namespace, state_namespace=None):
    """The state's HMAC key (bytes) from the control namespace, or None."""
    secret = client.get_or_none("Secret", KEY_SECRET, state_namespace_for(namespace, state_namespace))
    value = ((secret or {}).get("data") or {}).get("key")
    return base64.b64decode(value) if value else None


def load_state(client, namespace, name=_snap.STATE_CONFIGMAP, state_namespace=None, key=None):
    """(state, snapshot objects, configmap) of drill namespace ``namespace``, read from its
    control namespace and checked against the state's HMAC (``key``, else the key
    Secret): a state that fails the check raises IntegrityError."""
    state_ns = state_namespace_for(namespace, state_namespace)
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
    state_ns = state_namespace_for(namespace, state_namespace)
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
    state_ns = state_namespace_for(namespace, state_namespace)
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
                "acquireTime": now_iso(now), "renewTime": now_iso(now)}
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
        lease["spec"]["renewTime"] = now_iso()
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
