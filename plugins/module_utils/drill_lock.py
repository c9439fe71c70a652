# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One drill per namespace: the coordination.k8s.io Lease ``opsdrill-drill`` in the
namespace's control namespace (``snapshot.control_namespace``).

The drill that holds the Lease owns the namespace until it releases it. Another drill
is refused with the holder and since when. A Lease whose holder stopped renewing it
(``renewTime + leaseDurationSeconds`` in the past) is taken over only when no armed
drill state is left in the namespace: otherwise ``rollback.yml`` must clean up first.

``decide`` is pure; ``acquire``/``release`` use a client with get_or_none, create,
replace and delete (``k8s_rest.Client``).
"""
from __future__ import annotations

import datetime
import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

__all__ = ["LEASE_NAME", "LockRefused", "acquire", "decide", "describe_holder", "release"]

LEASE_NAME = "opsdrill-drill"
ANNOTATION_PREFIX = "opsdrill.io/"
# Lease annotations that say where the holder runs (for the refusal message).
INFO_KEYS = ("controller-host", "controller-pid", "controller-user", "scenario", "variant")


class LockRefused(Exception):
    """Another drill holds the namespace."""


def _iso_micro(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value):
    if not value:
        return None
    text = value.rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.datetime.strptime(text, fmt).replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            continue
    return None


def lease_body(holder, duration_s, info=None, now=None, current=None):
    """The Lease object held by ``holder``; ``current`` keeps acquireTime on renewal."""
    now = time.time() if now is None else now
    spec = {"holderIdentity": holder, "leaseDurationSeconds": int(duration_s),
            "acquireTime": _iso_micro(now), "renewTime": _iso_micro(now)}
    annotations = {}
    if current is not None:
        old = current.get("spec") or {}
        if old.get("holderIdentity") == holder and old.get("acquireTime"):
            spec["acquireTime"] = old["acquireTime"]
    for key, value in (info or {}).items():
        if value not in (None, ""):
            annotations[ANNOTATION_PREFIX + key] = str(value)
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LEASE_NAME,
                         "labels": {"app.kubernetes.io/part-of": "opsdrill"},
                         "annotations": annotations},
            "spec": spec}
    if current is not None:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return body


def describe_holder(lease, now=None):
    """'seo-tool-20261122T173000Z (controller host:pid, user root) since <time> (N s ago)'."""
    now = time.time() if now is None else now
    spec = (lease or {}).get("spec") or {}
    annotations = ((lease or {}).get("metadata") or {}).get("annotations") or {}
    info = {k: annotations.get(ANNOTATION_PREFIX + k) for k in INFO_KEYS}
    since = spec.get("acquireTime") or spec.get("renewTime")
    since_epoch = _parse(since)
    text = str(spec.get("holderIdentity") or "(no holder)")
    where = []
    if info.get("scenario"):
        where.append("%s/%s" % (info["scenario"], info.get("variant") or "*"))
    if info.get("controller-host"):
        where.append("controller %s pid %s" % (info["controller-host"], info.get("controller-pid") or "?"))
    if info.get("controller-user"):
        where.append("user %s" % info["controller-user"])
    if where:
        text += " (%s)" % ", ".join(where)
    if since:
        text += " since %s" % since
        if since_epoch is not None:
            text += " (%d s ago)" % max(0, int(now - since_epoch))
    return text


def decide(lease, holder, now=None, state_armed=False):
    """What to do about the namespace's Lease: ``(action, reason)``.

    action: ``create`` (no Lease), ``renew`` (ours), ``takeover`` (expired, nothing
    armed), ``refuse`` (another drill holds it)."""
    now = time.time() if now is None else now
    if lease is None:
        return "create", "no drill holds the namespace"
    spec = lease.get("spec") or {}
    current = spec.get("holderIdentity")
    if not current:
        return "takeover", "the lease has no holder"
    if current == holder:
        return "renew", "held by this drill"
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime")) or 0
    expired = renewed + int(spec.get("leaseDurationSeconds") or 0) < now
    if expired and not state_armed:
        return "takeover", "the lease of %s expired and no armed drill state is left" % current
    return "refuse", "held by " + describe_holder(lease, now)


def refusal(namespace, lease, now=None, state_armed=False):
    spec = (lease or {}).get("spec") or {}
    renewed = _parse(spec.get("renewTime")) or 0
    expired = renewed + int(spec.get("leaseDurationSeconds") or 0) < (time.time() if now is None else now)
    text = ("namespace %s already has an active drill: Lease %s is held by %s. One drill per "
            "namespace: wait for it to finish" % (namespace, LEASE_NAME, describe_holder(lease, now)))
    if expired or state_armed:
        text += ("; if its controller is gone, restore and release the namespace with: "
                 "ansible-playbook rollback.yml -e drill_namespace=%s" % namespace)
    else:
        text += (", or, if its controller is gone, run: ansible-playbook rollback.yml "
                 "-e drill_namespace=%s" % namespace)
    return text


def acquire(client, namespace, holder, duration_s, info=None, state_armed=False,
            check_mode=False, now=None):
    """Take or renew the namespace's drill Lease for ``holder``.

    Returns ``(changed, action, lease)``; raises LockRefused when another drill holds it
    (also when another controller creates it at the same moment). The Lease lives in the
    namespace's control namespace, created here when missing."""
    control = snapshot.control_namespace(namespace)
    if not check_mode:
        drill_state.ensure_control_namespace(client, namespace)
    lease = client.get_or_none("Lease", LEASE_NAME, control)
    action, _reason = decide(lease, holder, now, state_armed)
    if action == "refuse":
        raise LockRefused(refusal(namespace, lease, now, state_armed))
    body = lease_body(holder, duration_s, info, now, current=lease if lease is not None else None)
    if check_mode:
        return action != "renew", action, body
    try:
        if lease is None:
            result = client.create(body, control)
        else:
            result = client.replace(body, control)
    except k8s_rest.ApiError as exc:
        if exc.conflict:
            # Someone else created or changed it between our read and write.
            raise LockRefused(refusal(namespace, client.get_or_none("Lease", LEASE_NAME, control),
                                      now, state_armed))
        raise
    return True, action, result


def release(client, namespace, holder=None, force=False, check_mode=False):
    """Delete the Lease when ``holder`` holds it (or any holder with ``force``).
    Returns ``(changed, previous holder or None)``."""
    control = snapshot.control_namespace(namespace)
    lease = client.get_or_none("Lease", LEASE_NAME, control)
    if lease is None:
        return False, None
    current = (lease.get("spec") or {}).get("holderIdentity")
    if not force and current != holder:
        return False, current
    if not check_mode:
        client.delete("Lease", LEASE_NAME, control, missing_ok=True)
    return True, current
