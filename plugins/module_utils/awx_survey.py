# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX survey of the drill job template, built from the catalog.

    from ansible_collections.opsdrill.drills.plugins.module_utils import awx_survey, catalog
    spec = awx_survey.survey_spec(catalog.load(), options, limits, defaults={"scenario": "outage"})

Each question's variable is a command-line variable of playbooks/drill.yml, so that AWX
passes the answers as the extra vars the drill validates. The choices come from the
catalog: scenario ids, the variants of every scenario (an AWX survey cannot make one
answer depend on another; the drill refuses a variant its scenario does not have), and
the fault names of every scenario. Variant and fault are optional: left empty the drill
picks among the scenario's faults by the seed, and the fault stays hidden. The other
questions are required, their default answer the playbook's own default (``options``), so
that a launch without a prompt (a schedule, a workflow node) passes valid values.
"""
from __future__ import annotations

__all__ = ["QUESTIONS", "SurveyError", "fault_names", "survey_spec", "variant_names"]

# A namespace is a DNS label (Kubernetes): at most 63 characters.
NAMESPACE_MAX_LENGTH = 63

# variable -> (AWX type, question name, description, required). The order is the survey's.
QUESTIONS = {
    "scenario": ("multiplechoice", "Scenario", "The scenario record of the catalog.", True),
    "variant": ("multiplechoice", "Variant",
                "A variant of the scenario; empty: any variant of it. A variant of another scenario is refused.",
                False),
    "fault": ("multiplechoice", "Fault",
              "Empty (recommended): the drill picks a fault by the seed and only the trainer's briefing names it. "
              "A fault of another scenario or variant is refused.", False),
    "drill_namespace": ("text", "Drill namespace",
                        "The namespace of the team's stack (labelled opsdrill.io/drill-target=true).", True),
    "response_window_s": ("integer", "Response window (s)",
                          "Seconds the team has after the alert fires to restore the steady state.", True),
    "drill_seed": ("integer", "Seed", "Seed of the fault pick; 0 draws one (the drill records it).", True),
}


class SurveyError(ValueError):
    """The survey cannot be built as asked (unknown variable, default not a choice)."""


def variant_names(cat):
    """The variants of every scenario, each once, in scenario then record order."""
    out = []
    for sid in cat.scenario_ids():
        out += [name for name in cat.scenario(sid)["variants"] if name not in out]
    return out


def fault_names(cat):
    """The fault names of every scenario and variant, each once, sorted."""
    return sorted({key.rsplit("/", 1)[1] for key in cat.keys()})


def _bounds(variable, kind, options, limits):
    """min/max of a question: the drill's own limits for numbers (playbooks/vars/inputs.yml,
    by the role variable the playbook variable forwards to), a DNS label's length for text."""
    if kind == "text":
        return 1, NAMESPACE_MAX_LENGTH
    if kind != "integer":
        return None, None
    spec = (options or {}).get(variable) or {}
    limit = (limits or {}).get(spec.get("forwards") or variable) or {}
    return limit.get("min"), limit.get("max")


def _question(variable, cat, options, limits, defaults):
    kind, name, description, required = QUESTIONS[variable]
    low, high = _bounds(variable, kind, options, limits)
    question = {"question_name": name, "question_description": description, "variable": variable,
                "type": kind, "required": required, "min": low, "max": high}
    if kind == "multiplechoice":
        question["choices"] = {"scenario": cat.scenario_ids, "variant": lambda: variant_names(cat),
                               "fault": lambda: fault_names(cat)}[variable]()
    value = defaults.get(variable, ((options or {}).get(variable) or {}).get("default"))
    if value in (None, ""):
        # AWX's "no default"; an empty variant or fault is the drill's own default (it picks).
        value = ""
    elif kind == "multiplechoice" and value not in question["choices"]:
        raise SurveyError("default %s=%r is not a choice; choices: %s"
                          % (variable, value, ", ".join(question["choices"])))
    question["default"] = value
    return question


def survey_spec(cat, options=None, limits=None, defaults=None, variables=None, name="opsdrill drill",
                description="The playbook's command-line variables."):
    """The AWX ``survey_spec`` of a job template of an opsdrill playbook (the drill's by default).

    ``cat``: a loaded catalog; ``options``: the playbook's options as ``inputs.playbook_options``
    resolves them (``forwards``: the role variable; ``default``), to check the names, find the
    limits and the default answers; ``limits``: variable -> {min, max}
    (``opsdrill_inputs_limits``); ``defaults``: variable -> default answer, over the
    playbook's; ``variables``: the questions to ask, in QUESTIONS order (default all)."""
    defaults = dict(defaults or {})
    variables = list(QUESTIONS) if variables is None else list(variables)
    unknown = sorted(set(variables) - set(QUESTIONS)) + sorted(set(defaults) - set(variables))
    if unknown:
        raise SurveyError("no survey question for %s; questions: %s" % (", ".join(unknown), ", ".join(variables)))
    if options is not None:
        # The playbooks refuse unknown extra vars: a question must be one of their variables.
        missing = [v for v in variables if v not in options]
        if missing:
            raise SurveyError("%s: not a variable of the playbook" % ", ".join(missing))
    ordered = [v for v in QUESTIONS if v in variables]
    return {"name": name, "description": description,
            "spec": [_question(v, cat, options, limits, defaults) for v in ordered]}
