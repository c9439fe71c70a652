# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scenario records: validation, and the alert rule each one renders.

A record (``scenarios.yml``, or a team catalog file's ``scenarios:``) owns every fact of
a scenario: its title and situation, its variants, its seed alert, the seed's Expected
Actions (a checklist the scorecard scores) and Follow-up headings, and the services of
its steady state. Everything else (monitoring's rules, the drill engine's waits and
briefing, the rubric's checklist, the choices of a playbook) derives from it.
"""
from __future__ import annotations

import copy
import re
import string

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.errors import ScoringInputError
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.rubric import validate_checklists

__all__ = ["EXPR_MODES", "EXPR_PLACEHOLDERS", "alert_for_s", "alert_rule", "check_fields", "validate_scenario"]

_REQUIRED = ("id", "title", "situation", "variants", "services", "alert", "expected_actions", "followup")
_OPTIONAL = ("seed",)
_ALERT_REQUIRED = ("name", "service", "for", "expr")
_ALERT_OPTIONAL = ("severity", "threshold", "labels", "annotations")
# Monitoring modes of roles/monitoring; "default" stands for those not named.
EXPR_MODES = ("default", "standalone", "external", "operator")
EXPR_PLACEHOLDERS = ("namespace", "rate_window", "threshold", "threshold_percent", "for")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^[0-9]+[smh]$")


def _placeholders_in(text):
    # Only ${name}: Prometheus' own templating ($value, $labels) passes through.
    return {m.group("braced") for m in string.Template.pattern.finditer(text) if m.group("braced")}


def _check_text(text, where, field, errors):
    if not isinstance(text, str) or not text.strip():
        errors.add(where, field, "must be a non-empty string")
        return
    unknown = _placeholders_in(text) - set(EXPR_PLACEHOLDERS)
    if unknown:
        errors.add(where, field, "unknown placeholder(s) %s; allowed: %s"
                   % (", ".join("${%s}" % n for n in sorted(unknown)),
                      ", ".join("${%s}" % n for n in EXPR_PLACEHOLDERS)))


def _check_alert(alert, where, errors):
    if not isinstance(alert, dict):
        errors.add(where, "alert", "must be a mapping with %s" % ", ".join(_ALERT_REQUIRED))
        return
    for key in _ALERT_REQUIRED:
        if key not in alert:
            errors.add(where, "alert." + key, "missing")
    extra = set(alert) - set(_ALERT_REQUIRED) - set(_ALERT_OPTIONAL)
    if extra:
        errors.add(where, "alert", "unknown key(s) %s; allowed: %s"
                   % (", ".join(sorted(extra)), ", ".join(_ALERT_REQUIRED + _ALERT_OPTIONAL)))
    if "name" in alert and not _ALERT_NAME.match(str(alert["name"])):
        errors.add(where, "alert.name", "must be a Prometheus alert name, got %r" % (alert["name"],))
    if "for" in alert and not _DURATION.match(str(alert["for"])):
        errors.add(where, "alert.for", "must be a duration like 30s, 2m or 1h, got %r" % (alert["for"],))
    if "threshold" in alert and not (isinstance(alert["threshold"], (int, float))
                                     and not isinstance(alert["threshold"], bool)):
        errors.add(where, "alert.threshold", "must be a number, got %r" % (alert["threshold"],))
    expr = alert.get("expr")
    if isinstance(expr, dict):
        extra = set(expr) - set(EXPR_MODES)
        if extra:
            errors.add(where, "alert.expr", "unknown mode(s) %s; allowed: %s"
                       % (", ".join(sorted(extra)), ", ".join(EXPR_MODES)))
        if "default" not in expr and not {"standalone", "external", "operator"} <= set(expr):
            errors.add(where, "alert.expr", "needs a default, or one expression per mode "
                       "(standalone, external, operator)")
        for mode, text in expr.items():
            _check_text(text, where, "alert.expr.%s" % mode, errors)
    elif "expr" in alert:
        _check_text(expr, where, "alert.expr", errors)
    for key in ("labels", "annotations"):
        value = alert.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            errors.add(where, "alert." + key, "must be a mapping of strings")
            continue
        for name, text in value.items():
            _check_text(text, where, "alert.%s.%s" % (key, name), errors)


def check_fields(value, where, errors, label, required, optional):
    """Whether ``value`` is a mapping; its missing and unknown fields go to ``errors``
    (a scenario record, a fault entry)."""
    if not isinstance(value, dict):
        errors.add(where, label, "must be a mapping")
        return False
    for key in required:
        if key not in value:
            errors.add(where, key, "missing")
    extra = set(value) - set(required) - set(optional)
    if extra:
        errors.add(where, label, "unknown field(s) %s; allowed: %s"
                   % (", ".join(sorted(map(str, extra))), ", ".join(tuple(required) + tuple(optional))))
    return True


def validate_scenario(record, where, errors):
    """The record, normalised (a copy), or None; problems go to ``errors``."""
    if not check_fields(record, where, errors, "(scenario)", _REQUIRED, _OPTIONAL):
        return None
    if not _NAME.match(str(record.get("id") or "")):
        errors.add(where, "id", "must be snake_case ([a-z][a-z0-9_]*), got %r" % (record.get("id"),))
    for key in ("title", "situation"):
        if key in record and (not isinstance(record[key], str) or not record[key].strip()):
            errors.add(where, key, "must be a non-empty string")
    for key in ("variants", "services"):
        value = record.get(key)
        if key in record and (not isinstance(value, list) or not value
                              or not all(isinstance(v, str) and _NAME.match(v.replace("-", "_"))
                                         for v in value)
                              or len(set(value)) != len(value)):
            errors.add(where, key, "must be a non-empty list of distinct names")
    if "alert" in record:
        _check_alert(record["alert"], where, errors)
    if "expected_actions" in record or "followup" in record:
        try:
            validate_checklists({record.get("id"): record.get("expected_actions")},
                                {record.get("id"): record.get("followup")}, where)
        except ScoringInputError as exc:
            errors.add(where, exc.field.replace("checklists.%s" % record.get("id"), "expected_actions")
                       .replace("followup.%s" % record.get("id"), "followup"), exc.message)
    out = copy.deepcopy(record)
    if isinstance(out.get("alert"), dict):
        out["alert"].setdefault("severity", "critical")
    return out


def _duration_s(text):
    return int(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


def alert_for(record, overrides=None):
    """The alert's ``for`` duration: the record's, or the team's override by alert name."""
    return str((overrides or {}).get(record["alert"]["name"]) or record["alert"]["for"])


def alert_for_s(record, overrides=None):
    return _duration_s(alert_for(record, overrides))


def alert_rule(record, namespace, mode="standalone", rate_window="1m", for_overrides=None,
               threshold_overrides=None):
    """The Prometheus alerting rule (a dict) of ``record`` for the drill ``namespace``."""
    alert = record["alert"]
    threshold = (threshold_overrides or {}).get(alert["name"], alert.get("threshold"))
    values = {"namespace": namespace, "rate_window": rate_window, "for": alert_for(record, for_overrides),
              "threshold": "" if threshold is None else threshold,
              "threshold_percent": "" if threshold is None else int(round(float(threshold) * 100))}

    def fill(text):
        return re.sub(r"\$\{(%s)\}" % "|".join(EXPR_PLACEHOLDERS), lambda m: str(values[m.group(1)]), text)

    expr = alert["expr"]
    if isinstance(expr, dict):
        expr = expr.get(mode) or expr["default"]
    labels = {"severity": alert.get("severity", "critical"), "service": alert["service"],
              "namespace": namespace}
    labels.update({k: fill(v) for k, v in (alert.get("labels") or {}).items()})
    return {"alert": alert["name"], "expr": fill(expr).strip(), "for": values["for"],
            "labels": labels,
            "annotations": {k: fill(v) for k, v in (alert.get("annotations") or {}).items()}}
