# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the fault's change is still in the cluster (pure logic).

Right after the injection the engine records the fault's change: every path of a touched
object whose value differs between the snapshot and the object as the API shows it with
the fault (``fault_paths``). Just before the rollback it reads the same objects again and
judges each path (``judge``):

* ``reverted``: the live value is the snapshot's again;
* ``changed``: the live value is neither the snapshot's nor the fault's (a different
  working value, say a memory limit of 128Mi where the snapshot had 96Mi, or a wrong one:
  whether it works is for the steady state to show);
* ``in_place``: the fault's value is still there.

Only what makes a workload behave is judged: ``spec`` and a Secret's or ConfigMap's data.
Metadata (labels, annotations: ``kubectl annotate``), the pod template's annotations
(``kubectl rollout restart`` writes one) and the rollout's mechanics (``spec.strategy``)
say nothing about the cause. Named lists
(containers, env, volumes, ports) are keyed by name, so one added env var does not shift
the others. Secret values are compared as digests and never leave this module in clear.
"""
from __future__ import annotations

import json

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

__all__ = ["FIX_VERDICTS", "fault_paths", "flatten", "judge", "judged_sections", "record"]

FIX_VERDICTS = ("reverted", "changed", "in_place", "untouched")
_JUDGED_TOP = ("spec", "data", "stringData", "binaryData")
# Not how the workload behaves: the pod template's annotations (kubectl rollout restart
# writes one) and the rollout's own mechanics (a fault sets Recreate so its pods roll at once).
_NOT_JUDGED = ("spec.template.metadata.annotations", "spec.strategy", "spec.revisionHistoryLimit",
               "spec.progressDeadlineSeconds")
ABSENT = "<absent>"


def judged_sections(obj):
    """The parts of an object that decide how it behaves (see module doc)."""
    return {key: obj[key] for key in _JUDGED_TOP if key in (obj or {})}


def _key(name):
    return "[%s]" % name


def _flatten(value, path, out):
    if isinstance(value, dict):
        if not value:
            out[path] = {}
        for key in sorted(value, key=str):
            sub = "%s.%s" % (path, key) if path else str(key)
            if sub in _NOT_JUDGED:
                continue
            _flatten(value[key], sub, out)
        return
    if isinstance(value, list):
        names = snapshot._named(value)  # pylint: disable=protected-access
        if names is not None and value:
            for name, item in zip(names, value):
                _flatten(item, path + _key(name), out)
            return
        out[path] = value
        return
    out[path] = value


def flatten(obj):
    """``{path: value}`` of the judged sections; Secret data as digests."""
    out = {}
    _flatten(judged_sections(obj or {}), "", out)
    if (obj or {}).get("kind") == "Secret":
        out = {path: snapshot._redact(value)  # pylint: disable=protected-access
               if path.split(".", 1)[0] in ("data", "stringData") else value
               for path, value in out.items()}
    return out


def _same(a, b):
    if a == b:
        return True
    try:
        # Quantities the API canonicalises ("0.5" and "500m").
        return abs(snapshot.parse_quantity(a) - snapshot.parse_quantity(b)) < 1e-9
    except (ValueError, TypeError):
        return False


def _show(value):
    if value is ABSENT or isinstance(value, str):
        return value
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."


def fault_paths(before, after):
    """The fault's change to one object: ``[{path, before, after}]`` where the snapshot
    (``before``) and the object with the fault (``after``) differ. ``after`` None: the
    fault deleted the object (one entry with path ``""``)."""
    if after is None:
        return [{"path": "", "before": "<exists>", "after": ABSENT}]
    a, b = flatten(before), flatten(after)
    out = []
    for path in sorted(set(a) | set(b)):
        left, right = a.get(path, ABSENT), b.get(path, ABSENT)
        if not _same(left, right):
            out.append({"path": path, "before": _show(left), "after": _show(right)})
    return out


def record(ref, before, after):
    """What the engine keeps of one touched object after the injection: the fault's
    ``changes`` and the object's judged state with the fault (``injected``, flattened,
    Secret values as digests), so that a change the team makes to an object the fault
    left alone can be told apart from no change."""
    return {"ref": ref, "changes": fault_paths(before, after),
            "injected": {k: _show(v) for k, v in flatten(after).items()} if after is not None else None}


def judge(recorded, live):
    """Judge one touched object now (``live``, None when gone) against its ``record``.

    Returns ``{ref, faulted, verdict, paths: [{path, verdict, before, after, live}]}``
    (``faulted``: the fault changed this object). For an
    object the fault changed, the verdict is ``in_place`` when any changed path still
    has the fault's value, else ``changed`` when one has another value, else
    ``reverted``. An object the fault left alone is ``changed`` when its judged sections
    differ from the recorded state (the team changed it), else ``untouched``."""
    now = flatten(live) if live is not None else None
    paths = []
    if not recorded["changes"]:
        injected = recorded.get("injected") or {}
        current = {k: _show(v) for k, v in (now or {}).items()}
        for path in sorted(set(injected) | set(current)):
            left, right = injected.get(path, ABSENT), current.get(path, ABSENT)
            if not _same(left, right):
                paths.append({"path": path, "verdict": "changed", "before": left, "after": left, "live": right})
        return {"ref": recorded["ref"], "faulted": False, "verdict": "changed" if paths else "untouched",
                "paths": paths}
    for change in recorded["changes"]:
        if change["path"] == "":
            current = ABSENT if live is None else "<exists>"
        elif now is None:
            current = "<object deleted>"
        else:
            current = _show(now.get(change["path"], ABSENT))
        if _same(current, change["after"]):
            verdict = "in_place"
        elif _same(current, change["before"]):
            verdict = "reverted"
        else:
            verdict = "changed"
        paths.append(dict(change, verdict=verdict, live=current))
    verdicts = {p["verdict"] for p in paths}
    overall = "in_place" if "in_place" in verdicts else ("changed" if "changed" in verdicts else "reverted")
    return {"ref": recorded["ref"], "faulted": True, "verdict": overall, "paths": paths}
