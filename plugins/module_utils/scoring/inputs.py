# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gather a drill's inputs from paths and variables, then score it.

Used by the ``drill_scorecard`` module and the ``drill_scorecard`` callback,
so both read the same things the same way.
"""

from __future__ import annotations

import json
import os

from .audit import AuditLogSource, DEFAULT_TRAINEE_GROUPS
from .datafile import load_data_file
from .desk import DeskSource, IncidentDeskSource
from .errors import ScoringInputError
from .evidence import EvidenceSet, MissingSource
from .marks import load_marks
from .rubric import load_rubric
from .scorer import score_drill
from .timeline import load_timeline, timeline_path

# Files in the artifacts dir that may carry the catalog entry of the drill's
# fault (written by the drill playbooks): {"catalog_entry": {...}} or {"fault": {...}}.
STATE_FILES = ('drill-state.json', 'drill_state.json', 'briefing.json')
STATE_KEYS = ('catalog_entry', 'fault_entry', 'fault')
# The team's incident desk entries, when no desk file or entries are given
# (the drill engine's default, drill_engine_desk_file empty).
DESK_FILENAME = 'desk.json'


def find_catalog_entry(artifacts_dir):
    """(entry, path) from the drill state/briefing files, or (None, None)."""
    if not artifacts_dir:
        return None, None
    for name in STATE_FILES:
        path = os.path.join(artifacts_dir, name)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, 'r', encoding='utf-8') as handle:
                data = json.load(handle)
        except ValueError as exc:
            raise ScoringInputError(path, '(document)', 'not valid JSON: %s' % exc)
        if not isinstance(data, dict):
            continue
        for key in STATE_KEYS:
            entry = data.get(key)
            if isinstance(entry, dict) and ('accepted_fixes' in entry or 'symptom_only_fixes' in entry):
                return entry, '%s#%s' % (path, key)
    return None, None


def find_desk_file(artifacts_dir):
    """``<artifacts_dir>/desk.json`` when the team wrote one there, else None."""
    if not artifacts_dir:
        return None
    path = os.path.join(artifacts_dir, DESK_FILENAME)
    return path if os.path.isfile(path) else None


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(',') if v.strip()]
    return [str(v) for v in value if v]


def build_scorecard(artifacts_dir=None, timeline_file=None, audit_log=None, audit_text=None,
                    audit_label=None, desk_file=None, desk_entries=None, witnessed_entries=None, trainer_marks=None,
                    trainer_marks_file=None, trainees=None, trainee_groups=None, namespaces=None,
                    rubric_file=None, catalog_entry=None, catalog_entry_file=None, generated_at=None, rubric=None):
    """Score a drill from its inputs; returns (scorecard, rubric).

    Every input is optional except that a scorecard without a timeline is
    mostly "not assessed". Malformed inputs raise ScoringInputError. ``rubric``: a Rubric
    (a module is given one); else ``rubric_file`` or the default is read (controller).
    """
    tl_path = timeline_path(artifacts_dir, timeline_file)
    timeline = load_timeline(tl_path)
    rubric = rubric if rubric is not None else load_rubric(rubric_file or None)

    groups = _as_list(trainee_groups) if trainee_groups is not None else list(DEFAULT_TRAINEE_GROUPS)
    ns = _as_list(namespaces) or ([timeline.namespace] if timeline.namespace else None)
    sources = []
    if audit_text is not None or audit_log:
        # Only the drill's own time: earlier drills in the namespace are in the same log.
        # Open-ended while the drill has no drill_finished (scored during or after a killed run).
        sources.append(AuditLogSource(path=audit_log or None, text=audit_text, label=audit_label,
                                      trainees=_as_list(trainees), trainee_groups=groups, namespaces=ns,
                                      since=timeline.started_at, until=timeline.ts_of('drill_finished')))
    else:
        sources.append(MissingSource('audit', 'no audit log given'))
    if witnessed_entries is not None:
        sources.append(IncidentDeskSource(witnessed_entries, label='incident desk'))
    else:
        sources.append(MissingSource('incident_desk', 'no incident desk service for this drill'))
    if desk_entries is None and not desk_file:
        desk_file = find_desk_file(artifacts_dir)
    if desk_entries is not None or desk_file:
        sources.append(DeskSource(path=desk_file or None, entries=desk_entries,
                                  label=desk_file or '<desk_entries var>'))
    else:
        sources.append(MissingSource('desk', 'no incident desk entries given (and no %s in the artifacts dir)'
                                     % DESK_FILENAME))
    evidence = EvidenceSet(sources)
    source_info = evidence.describe_sources()
    source_info.insert(0, {'name': 'timeline', 'label': tl_path or '<none>', 'available': timeline.available,
                           'items': len(timeline.events),
                           **({} if timeline.available else {'note': 'timeline file not found' if tl_path else 'no timeline given'})})

    marks = load_marks(trainer_marks_file or None, trainer_marks or None)
    source_info.append({'name': 'trainer', 'label': trainer_marks_file or ('<trainer_marks var>' if trainer_marks else '<none>'),
                        'available': bool(marks), 'items': len(marks),
                        **({} if marks else {'note': 'no trainer marks given'})})

    catalog_path = '<catalog_entry var>'
    if catalog_entry is None and catalog_entry_file:
        catalog_entry = load_data_file(catalog_entry_file)
        catalog_path = catalog_entry_file
        if isinstance(catalog_entry, list):
            # a whole faults.yml: pick the drill's fault
            wanted = [e for e in catalog_entry if isinstance(e, dict) and e.get('name') == timeline.fault
                      and (not timeline.scenario or e.get('scenario') == timeline.scenario)
                      and (not timeline.variant or e.get('variant') == timeline.variant)]
            if not wanted:
                raise ScoringInputError(catalog_entry_file, '(top level)', 'no entry for fault %s/%s/%s' % (
                    timeline.scenario, timeline.variant, timeline.fault))
            catalog_entry = wanted[0]
    if catalog_entry is None:
        catalog_entry, found = find_catalog_entry(artifacts_dir)
        if found:
            catalog_path = found
    source_info.append({'name': 'catalog', 'label': catalog_path if catalog_entry else '<none>',
                        'available': catalog_entry is not None, 'items': 1 if catalog_entry else 0,
                        **({} if catalog_entry else {'note': 'no catalog entry: fixes cannot be told from symptom hiding'})})
    scorecard = score_drill(timeline, evidence, rubric, marks=marks, catalog_entry=catalog_entry,
                            catalog_path=catalog_path, generated_at=generated_at, sources=source_info)
    return scorecard, rubric
