# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog: scenario records and faults. Load and validate ``scenarios.yml`` and
``faults.yml``, look faults up, pick one.

    from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
    entry = catalog.lookup("outage", "resources", "memory_limits")
    entry, seed = catalog.pick("error_spike", "code", seed=None)   # seed is returned

The data lives beside this file. Read it on the controller (action, lookup or filter
plugins, or a module running there that is given the path): an AnsiballZ module
payload carries Python files only, so a module running elsewhere gets the resolved
entry as an argument instead. ``load(paths)`` also reads extra catalog files (an ops
team's own scenarios and faults: ``{scenarios: [...], faults: [...]}``, or a plain list
of faults); a scenario or fault defined twice is an error.

Every entry is validated on load; errors name the file, the entry and the field, and
list the allowed values. ``lookup``/``pick`` return a resolved deep copy: the short form
``handler``/``params`` becomes one step, and the placeholders ``{target}`` (name),
``{target_kind}``, ``{target_ref}`` (``Kind/name``) and ``{container}`` are replaced,
so a fault can be aimed at another workload (``target=...``).
"""
from __future__ import annotations

import copy
import os
import random
import re

from ansible_collections.opsdrill.drills.plugins.module_utils import detect as _detect
from ansible_collections.opsdrill.drills.plugins.module_utils.catalog.scenario_record import (
    alert_for_s, check_fields, validate_scenario)
from ansible_collections.opsdrill.drills.plugins.module_utils.fault_handlers import HANDLERS
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import ops as _ops
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.audit import CATEGORIES
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.errors import ScoringInputError
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.fixes import check_parts
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.fixes import fill_placeholders as _substitute

__all__ = [
    "ACTIONS",
    "Catalog",
    "CatalogError",
    "DETECT_TYPES",
    "VERBS",
    "default_path",
    "default_paths",
    "load",
    "lookup",
    "pick",
    "playbook_of",
]

KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Service", "Secret", "ConfigMap",
         "PersistentVolumeClaim", "ServiceAccount")
# Handlers that create their object rather than change a snapshotted one.
CREATING_HANDLERS = ("create_service",)
ROLLBACK_OPS = _ops.ROLLBACK_OPS

# Detect specs: type -> (required fields, optional fields), from detect.py's table.
DETECT_TYPES = {name: (row[1], row[2]) for name, row in _detect.DETECT_TYPES.items()}
UPSTREAM_OUTCOMES = ("ok", "http_4xx", "http_5xx", "timeout", "refused", "error")
# Fix rules use the scorer's vocabulary (plugins/module_utils/scoring/audit.py and
# fixes.py): a rule is {action: ...} (a derived action) or {verb, resource} (a plain
# request; never matches a derived action), each optionally with name, namespace,
# subresource. Every rule stands alone: a change matching one is judged by it.
VERBS = ("create", "update", "patch", "delete", "deletecollection")
# The derived actions of the audit classifier (scoring/audit.py owns them).
ACTIONS = tuple(CATEGORIES)
FIX_KEYS = ("action", "verb", "resource", "subresource", "name", "namespace")

_REQUIRED = ("scenario", "variant", "name", "target", "touches", "symptom", "alert",
             "alert_within_s", "hints", "root_cause", "accepted_fixes", "symptom_only_fixes")
_OPTIONAL = ("title", "handler", "params", "steps", "rollback", "notes", "cause_parts")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDERS = ("{target}", "{target_kind}", "{target_ref}", "{container}")


class CatalogError(ValueError):
    """The catalog is invalid, or a lookup names something it does not have."""


def default_path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "faults.yml")


def default_paths():
    """The collection's own catalog files: its scenario records, then its faults."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "scenarios.yml"), default_path()]


# --------------------------------------------------------------------------------------
# loading

def _read_yaml(path):
    try:
        import yaml
    except ImportError:
        raise CatalogError("reading %s needs PyYAML (pip install pyyaml)" % path)
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise CatalogError("catalog file %s does not exist (an AnsiballZ module payload "
                           "has no data files: load the catalog on the controller and pass "
                           "the resolved entry)" % path)
    except yaml.YAMLError as exc:
        raise CatalogError("%s: invalid YAML: %s" % (path, exc))


def _allowed(value, allowed):
    return "%r not allowed; allowed: %s" % (value, ", ".join(allowed))


class _Errors:
    def __init__(self):
        self.lines = []

    def add(self, where, field, text):
        self.lines.append("%s: field %s: %s" % (where, field, text))


def _ref(item):
    return "%s/%s" % (item.get("kind"), item.get("name"))


def _check_detect(spec, where, field, errors):
    if not isinstance(spec, dict) or "type" not in spec:
        errors.add(where, field, "must be a mapping with a type")
        return
    kind = spec["type"]
    if kind not in DETECT_TYPES:
        errors.add(where, field + ".type", _allowed(kind, sorted(DETECT_TYPES)))
        return
    required, optional = DETECT_TYPES[kind]
    for key in required:
        if key not in spec:
            errors.add(where, field, "detect type %s needs %s" % (kind, ", ".join(required)))
            break
    extra = set(spec) - set(required) - set(optional) - {"type"}
    if extra:
        errors.add(where, field, "unknown key(s) %s for detect type %s; allowed: %s"
                   % (", ".join(sorted(extra)), kind, ", ".join(required + optional)))
    if kind in ("any_of", "all_of"):
        subs = spec.get("of")
        if not isinstance(subs, list) or not subs:
            errors.add(where, field + ".of", "must be a non-empty list of detect specs")
        else:
            for index, sub in enumerate(subs):
                _check_detect(sub, where, "%s.of[%d]" % (field, index), errors)
    if "workload" in spec and "/" not in str(spec["workload"]):
        errors.add(where, field + ".workload", "must be Kind/name, got %r" % spec["workload"])
    if kind == "upstream_outcome" and spec.get("outcome") not in UPSTREAM_OUTCOMES:
        errors.add(where, field + ".outcome", _allowed(spec.get("outcome"), UPSTREAM_OUTCOMES))
    for key in ("min", "min_share"):
        if key in spec and not (isinstance(spec[key], (int, float)) and 0 < spec[key] <= 1) \
                and not (kind in ("pod_restarts",) and isinstance(spec[key], int)):
            errors.add(where, "%s.%s" % (field, key), "must be a share in (0, 1], got %r"
                       % (spec[key],))
    if kind == "promql" and not (isinstance(spec.get("above"), (int, float))
                                 and not isinstance(spec.get("above"), bool)):
        errors.add(where, field + ".above", "must be a number, got %r" % (spec.get("above"),))
    if kind == "log_match":
        try:
            re.compile(str(spec.get("pattern")))
        except re.error as exc:
            errors.add(where, field + ".pattern", "invalid regex: %s" % exc)


def _check_fix(fix, where, field, errors):
    if not isinstance(fix, dict) or not fix:
        errors.add(where, field, "must be a non-empty mapping")
        return
    extra = set(fix) - set(FIX_KEYS)
    if extra:
        errors.add(where, field, "unknown key(s) %s; allowed: %s"
                   % (", ".join(sorted(extra)), ", ".join(FIX_KEYS)))
    for key, value in fix.items():
        if not isinstance(value, str) or not value:
            errors.add(where, "%s.%s" % (field, key), "must be a non-empty string")
    if "action" in fix and ("verb" in fix or "resource" in fix):
        errors.add(where, field, "give either action or verb/resource, not both")
    elif "action" not in fix and "resource" not in fix:
        errors.add(where, field, "needs an action, or a resource (with a verb)")
    if "verb" in fix and fix["verb"] not in VERBS:
        errors.add(where, field + ".verb", _allowed(fix["verb"], VERBS))
    if "action" in fix and fix["action"] not in ACTIONS:
        errors.add(where, field + ".action", _allowed(fix["action"], ACTIONS))


def _normalise_steps(entry, where, errors):
    steps = entry.get("steps")
    if steps is not None and ("handler" in entry or "params" in entry):
        errors.add(where, "steps", "give either handler/params or steps, not both")
        return []
    if steps is None:
        if "handler" not in entry:
            errors.add(where, "handler", "missing (or give steps)")
            return []
        steps = [{"handler": entry["handler"], "params": entry.get("params") or {}}]
    if not isinstance(steps, list) or not steps:
        errors.add(where, "steps", "must be a non-empty list")
        return []
    out = []
    for index, step in enumerate(steps):
        field = "steps[%d]" % index
        if not isinstance(step, dict):
            errors.add(where, field, "must be a mapping")
            continue
        extra = set(step) - {"handler", "params", "object"}
        if extra:
            errors.add(where, field, "unknown key(s) %s; allowed: handler, params, object"
                       % ", ".join(sorted(extra)))
        if step.get("handler") not in HANDLERS:
            errors.add(where, field + ".handler", _allowed(step.get("handler"), sorted(HANDLERS)))
        if not isinstance(step.get("params", {}), dict):
            errors.add(where, field + ".params", "must be a mapping")
        obj = step.get("object", "{target_ref}")
        if not isinstance(obj, str) or ("/" not in obj and obj != "{target_ref}"):
            errors.add(where, field + ".object", "must be Kind/name or {target_ref}, got %r" % (obj,))
        out.append({"handler": step.get("handler"), "object": obj,
                    "params": dict(step.get("params") or {})})
    return out


def _validate(entry, where, errors, scenarios):
    if not check_fields(entry, where, errors, "(entry)", _REQUIRED, _OPTIONAL):
        return None
    scenario, variant = entry.get("scenario"), entry.get("variant")
    if scenario not in scenarios:
        errors.add(where, "scenario", _allowed(scenario, sorted(scenarios)))
    elif variant not in (scenarios[scenario].get("variants") or []):
        errors.add(where, "variant", "%s (for scenario %s)"
                   % (_allowed(variant, scenarios[scenario].get("variants") or []), scenario))
    if not isinstance(entry.get("name"), str) or not _NAME.match(entry.get("name") or ""):
        errors.add(where, "name", "must be snake_case ([a-z][a-z0-9_]*), got %r"
                   % (entry.get("name"),))
    target = entry.get("target")
    if not isinstance(target, dict) or not target.get("name") or target.get("kind") not in KINDS:
        errors.add(where, "target", "must be {kind: %s, name: ...}" % "|".join(KINDS))
        target = {"kind": "Deployment", "name": "x"}
    extra = set(target) - {"kind", "name", "container"}
    if extra:
        errors.add(where, "target", "unknown key(s) %s; allowed: kind, name, container"
                   % ", ".join(sorted(extra)))
    steps = _normalise_steps(entry, where, errors)
    touches = entry.get("touches")
    refs = set()
    if not isinstance(touches, list) or not touches:
        errors.add(where, "touches", "must be a non-empty list of {kind, name}")
    else:
        for index, item in enumerate(touches):
            if not isinstance(item, dict) or item.get("kind") not in KINDS or not item.get("name"):
                errors.add(where, "touches[%d]" % index, "must be {kind: %s, name: ...}"
                           % "|".join(KINDS))
                continue
            refs.add(_ref(item))
    mapping = _placeholders(target)
    resolved_refs = {_substitute(r, mapping) for r in refs}
    for index, step in enumerate(steps):
        obj = _substitute(step["object"], mapping)
        if step["handler"] not in CREATING_HANDLERS and obj not in resolved_refs:
            errors.add(where, "steps[%d].object" % index,
                       "%s is not in touches (%s): it would not be snapshotted or restored"
                       % (obj, ", ".join(sorted(resolved_refs))))
    symptom = entry.get("symptom")
    if not isinstance(symptom, dict):
        errors.add(where, "symptom", "must be a mapping with description, detect, within_s")
    else:
        extra = set(symptom) - {"description", "detect", "within_s"}
        if extra:
            errors.add(where, "symptom", "unknown key(s) %s" % ", ".join(sorted(extra)))
        if not isinstance(symptom.get("description"), str) or not symptom.get("description"):
            errors.add(where, "symptom.description", "must be a non-empty string")
        _check_detect(_substitute(symptom.get("detect"), mapping), where, "symptom.detect",
                      errors)
        if not isinstance(symptom.get("within_s"), int) or symptom.get("within_s") <= 0:
            errors.add(where, "symptom.within_s", "must be a positive integer (seconds)")
    seed_alert = (scenarios[scenario].get("alert") or {}).get("name") if scenario in scenarios else None
    if seed_alert and entry.get("alert") != seed_alert:
        errors.add(where, "alert", "%s (scenario %s raises %s)"
                   % (_allowed(entry.get("alert"), [seed_alert]), scenario, seed_alert))
    within = (symptom or {}).get("within_s") if isinstance(symptom, dict) else None
    alert_within = entry.get("alert_within_s")
    if not isinstance(alert_within, int) or alert_within <= 0:
        errors.add(where, "alert_within_s", "must be a positive integer (seconds)")
    elif isinstance(within, int) and alert_within < within:
        errors.add(where, "alert_within_s", "%d is before the symptom (within_s %d)"
                   % (alert_within, within))
    hints = entry.get("hints")
    if not isinstance(hints, list) or not hints or not all(isinstance(h, str) and h for h in hints):
        errors.add(where, "hints", "must be a non-empty list of strings")
    if not isinstance(entry.get("root_cause"), str) or not entry.get("root_cause"):
        errors.add(where, "root_cause", "must be a non-empty string")
    for field in ("accepted_fixes", "symptom_only_fixes"):
        fixes = entry.get(field)
        if not isinstance(fixes, list) or (field == "accepted_fixes" and not fixes):
            errors.add(where, field, "must be a %slist of action matchers"
                       % ("non-empty " if field == "accepted_fixes" else ""))
            continue
        for index, fix in enumerate(fixes):
            _check_fix(fix, where, "%s[%d]" % (field, index), errors)
    if "cause_parts" in entry:
        try:
            check_parts(entry["cause_parts"], where)
        except ScoringInputError as exc:
            errors.add(where, exc.field, exc.message)
    rollback = entry.get("rollback", [])
    if not isinstance(rollback, list):
        errors.add(where, "rollback", "must be a list of operations")
    else:
        for index, op in enumerate(rollback):
            if not isinstance(op, dict) or op.get("op") not in ROLLBACK_OPS:
                errors.add(where, "rollback[%d].op" % index,
                           _allowed((op or {}).get("op") if isinstance(op, dict) else op,
                                    ROLLBACK_OPS))
    out = dict(entry)
    out.pop("handler", None)
    out.pop("params", None)
    out["steps"] = steps
    out.setdefault("rollback", [])
    out.setdefault("title", str(entry.get("name", "")).replace("_", " "))
    return out


def _placeholders(target):
    return {"{target_ref}": "%s/%s" % (target.get("kind"), target.get("name")),
            "{target_kind}": target.get("kind"),
            "{target}": target.get("name"),
            "{container}": target.get("container")}


# --------------------------------------------------------------------------------------
# the catalog

class Catalog:
    """Validated scenario records, keyed by id, and faults, keyed ``scenario/variant/name``."""

    def __init__(self, entries, sources=None, scenarios=None):
        self._entries = entries
        self.sources = sources or {}
        self._scenarios = scenarios or {}

    @classmethod
    def from_data(cls, data, source="<data>"):
        """``data`` (faults, and maybe scenarios) beside the collection's own scenarios."""
        own = default_paths()[0]
        return cls._build([(own, _read_yaml(own)), (source, data)])

    @classmethod
    def from_files(cls, paths):
        return cls._build([(path, _read_yaml(path)) for path in paths])

    @classmethod
    def _build(cls, documents):
        errors = _Errors()
        scenarios, fault_lists, sources = {}, [], {}
        for source, data in documents:
            records = data.get("scenarios", []) if isinstance(data, dict) else []
            if isinstance(data, dict):
                extra = set(data) - {"scenarios", "faults"}
                if extra:
                    errors.add(source, "(top level)", "unknown key(s) %s; allowed: scenarios, faults"
                               % ", ".join(sorted(map(str, extra))))
                data = data.get("faults", [])
            if not isinstance(records, list) or not isinstance(data, list):
                errors.add(source, "(top level)", "must be {scenarios: [...], faults: [...]} "
                           "or a list of fault entries")
                continue
            for index, record in enumerate(records):
                sid = record.get("id") if isinstance(record, dict) else "?"
                where = "%s: scenario #%d (%s)" % (source, index + 1, sid)
                valid = validate_scenario(record, where, errors)
                if valid is None:
                    continue
                if sid in scenarios:
                    errors.add(where, "id", "scenario %s is defined twice (also in %s)"
                               % (sid, sources["scenario:" + sid]))
                    continue
                scenarios[sid] = valid
                sources["scenario:" + sid] = source
            fault_lists.append((source, data))
        entries = {}
        for source, data in fault_lists:
            for index, entry in enumerate(data):
                name = "%s/%s/%s" % ((entry or {}).get("scenario"), (entry or {}).get("variant"),
                                     (entry or {}).get("name")) if isinstance(entry, dict) else "?"
                where = "%s: fault #%d (%s)" % (source, index + 1, name)
                valid = _validate(entry, where, errors, scenarios)
                if valid is None:
                    continue
                if name in entries:
                    errors.add(where, "name", "%s is defined twice (also in %s)"
                               % (name, sources[name]))
                    continue
                entries[name] = valid
                sources[name] = source
        if errors.lines:
            raise CatalogError("invalid catalog:\n  " + "\n  ".join(errors.lines))
        return cls(entries, sources, scenarios)

    # -- queries -----------------------------------------------------------------------

    def keys(self, scenario=None, variant=None):
        return sorted(k for k, e in self._entries.items()
                      if (scenario is None or e["scenario"] == scenario)
                      and (variant is None or e["variant"] == variant))

    def names(self, scenario, variant):
        return [k.rsplit("/", 1)[1] for k in self.keys(scenario, variant)]

    def scenario_ids(self):
        return sorted(self._scenarios)

    def scenario(self, scenario):
        """The scenario record (a copy); an unknown id fails listing the valid ones."""
        self.check_names(scenario)
        return copy.deepcopy(self._scenarios[scenario])

    def scenarios(self):
        return [copy.deepcopy(self._scenarios[s]) for s in self.scenario_ids()]

    def alerts(self):
        """Every scenario's seed alert name (the steady state has none of them firing)."""
        return sorted({s["alert"]["name"] for s in self._scenarios.values()})

    def services(self, scenario=None):
        """The services of ``scenario``'s steady state, or of every scenario's (in the
        records' order, each once): their /health must answer."""
        records = [self._scenarios[scenario]] if scenario else [self._scenarios[s] for s in self.scenario_ids()]
        out = []
        for record in records:
            out += [name for name in record["services"] if name not in out]
        return out

    def alert_for_s(self, scenario, overrides=None):
        """Seconds of the scenario alert's ``for``, with the team's override by alert name."""
        return alert_for_s(self._scenarios[scenario], overrides)

    def check_names(self, scenario, variant=None):
        """Unknown scenario or variant: CatalogError listing the valid ones."""
        if scenario not in self._scenarios:
            raise CatalogError("unknown scenario %r; scenarios: %s"
                               % (scenario, ", ".join(self.scenario_ids())))
        variants = self._scenarios[scenario]["variants"]
        if variant is not None and variant not in variants:
            raise CatalogError("unknown variant %r for scenario %s; variants: %s"
                               % (variant, scenario, ", ".join(variants)))

    def variant_of(self, scenario, fault):
        """The variant of ``scenario`` that has ``fault``, when one alone has it. A fault
        of another scenario is named as such, with the playbook that runs it."""
        self.check_names(scenario)
        found = sorted({self._entries[k]["variant"] for k in self.keys(scenario) if k.endswith("/" + str(fault))})
        if len(found) == 1:
            return found[0]
        if found:
            raise CatalogError("fault %r is in several variants of %s (%s): give -e variant=..."
                               % (fault, scenario, ", ".join(found)))
        other = [k for k in self.keys() if k.endswith("/" + str(fault)) and not k.startswith(scenario + "/")]
        if other:
            other_scenario, other_variant = other[0].split("/")[:2]
            raise CatalogError("fault %r belongs to scenario %s (%s), not %s: run %s -e variant=%s -e fault=%s"
                               % (fault, other_scenario, other[0], scenario, playbook_of(other_scenario),
                                  other_variant, fault))
        raise CatalogError("no fault %r in scenario %s; faults there: %s"
                           % (fault, scenario, ", ".join(k.split("/", 1)[1] for k in self.keys(scenario))))

    def lookup(self, scenario, variant, fault, target=None):
        """The resolved entry; ``target`` overrides the default target (``"name"``,
        ``"Kind/name"`` or ``{kind, name, container}``). An empty ``variant`` is the
        one variant that has ``fault``."""
        if not variant:
            variant = self.variant_of(scenario, fault)
        self.check_names(scenario, variant)
        key = "%s/%s/%s" % (scenario, variant, fault)
        if key not in self._entries:
            elsewhere = [k for k in self.keys() if k.endswith("/" + str(fault))]
            where = (" (%s has it%s)" % (", ".join(elsewhere), "" if elsewhere[0].startswith(scenario + "/")
                                         else ": run " + playbook_of(elsewhere[0].split("/")[0]))) if elsewhere else ""
            raise CatalogError("no fault %r in %s/%s%s; faults there: %s"
                               % (fault, scenario, variant, where,
                                  ", ".join(self.names(scenario, variant)) or "none"))
        return resolve(self._entries[key], target)

    def pick(self, scenario, variant=None, seed=None, target=None):
        """A fault of ``scenario`` (and ``variant``, else any variant) chosen by
        ``seed``: the same seed always picks the same fault of the same catalog. A
        seed of None is drawn at random. Returns ``(entry, seed)``."""
        self.check_names(scenario, variant)
        keys = self.keys(scenario, variant)
        if not keys:
            raise CatalogError("no faults in %s/%s" % (scenario, variant or "*"))
        if seed is None:
            seed = random.SystemRandom().randrange(1, 2 ** 31)
        chooser = random.Random("%s|%s|%s" % (scenario, variant or "*", seed))
        key = keys[chooser.randrange(len(keys))]
        entry = self._entries[key]
        return resolve(entry, target), seed

    def entries(self):
        return [copy.deepcopy(self._entries[k]) for k in self.keys()]


def playbook_of(scenario):
    """The drill playbook a user runs for ``scenario`` (drill-outage.yml, ...)."""
    return "drill-%s.yml" % scenario.replace("_", "-")


def _parse_target(default, target):
    if target is None or target == "":
        return dict(default)
    if isinstance(target, str):
        if "/" in target:
            kind, name = target.split("/", 1)
            return {"kind": kind, "name": name, "container": None}
        return {"kind": default.get("kind"), "name": target, "container": None}
    if isinstance(target, dict) and target.get("name"):
        merged = {"kind": default.get("kind"), "container": None}
        merged.update(target)
        return merged
    raise CatalogError("target must be a name, 'Kind/name' or {kind, name, container}, got %r"
                       % (target,))


def resolve(entry, target=None):
    """A deep copy of ``entry`` aimed at ``target`` with placeholders replaced."""
    default = dict(entry["target"])
    default.setdefault("container", None)
    chosen = _parse_target(default, target)
    if chosen.get("kind") not in KINDS:
        raise CatalogError("target kind %r not allowed; allowed: %s"
                           % (chosen.get("kind"), ", ".join(KINDS)))
    mapping = _placeholders(chosen)
    out = _substitute(copy.deepcopy(entry), mapping)
    out["target"] = chosen
    out["key"] = "%s/%s/%s" % (entry["scenario"], entry["variant"], entry["name"])
    for step in out["steps"]:
        if chosen.get("container") and step["object"] == mapping["{target_ref}"]:
            step["params"].setdefault("container", chosen["container"])
    seen, touches = set(), []
    for item in out["touches"]:
        ref = _ref(item)
        if ref not in seen:
            seen.add(ref)
            touches.append({"kind": item["kind"], "name": item["name"]})
    out["touches"] = touches
    return out


_CACHE = {}


def load(paths=None):
    """The catalog from ``scenarios.yml`` and ``faults.yml`` beside this file plus
    ``paths`` (cached)."""
    if isinstance(paths, str):
        paths = [paths]
    own = default_paths()
    files = tuple(own + [p for p in (paths or []) if p not in own])
    if files not in _CACHE:
        _CACHE[files] = Catalog.from_files(files)
    return _CACHE[files]


def lookup(scenario, variant, fault, target=None, paths=None):
    return load(paths).lookup(scenario, variant, fault, target)


def pick(scenario, variant=None, seed=None, target=None, paths=None):
    return load(paths).pick(scenario, variant, seed, target)
