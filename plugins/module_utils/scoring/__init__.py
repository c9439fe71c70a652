# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""opsdrill drill scoring: plain Python, no Ansible needed.

One concern per file:

- ``timeline``     timeline.jsonl events, key moments, phases
- ``evidence``     EvidenceItem, the EvidenceSource interface
- ``audit``        Kubernetes audit log -> classified trainee actions
- ``desk``         incident desk entries (JSON file for now)
- ``marks``        trainer marks
- ``fixes``        catalog accepted_fixes / symptom_only_fixes judgement
- ``rubric``       rubric data: load, validate, extend
- ``matching``     rubric ``match`` expressions over the evidence
- ``metrics``      time to detect / acknowledge / recover, rollback
- ``integrity``    trainees who read the drill's answer key (the drill state)
- ``scorer``       the scorecard
- ``inputs``       gather inputs from paths and vars, then score
- ``reports``      scorecard.json, junit.xml and the file writer
- ``markdown``     incident-record.md, postmortem.md
- ``html_report``  scorecard.html
- ``console``      console table and progress line
"""

from __future__ import annotations

import importlib

# Public names and the submodule that defines them. They are imported on first
# use (PEP 562), so a caller that needs only the console line does not pay for
# compiling the whole package. Code that runs as an Ansible module imports from
# the submodules directly, which is what AnsiballZ follows.
_EXPORTS = {
    'ScoringError': 'errors', 'ScoringInputError': 'errors',
    'EvidenceItem': 'evidence', 'EvidenceSource': 'evidence', 'EvidenceSet': 'evidence',
    'StaticSource': 'evidence', 'MissingSource': 'evidence',
    'AuditLogSource': 'audit',
    'DeskSource': 'desk', 'DESK_KINDS': 'desk',
    'Timeline': 'timeline', 'load_timeline': 'timeline', 'parse_timeline_lines': 'timeline',
    'TIMELINE_FILENAME': 'timeline',
    'load_marks': 'marks', 'parse_marks': 'marks',
    'load_rubric': 'rubric', 'rubric_from_data': 'rubric', 'Rubric': 'rubric',
    'score_drill': 'scorer', 'summarize': 'scorer', 'SCORECARD_SCHEMA': 'scorer',
    'SCORECARD_SCHEMA_VERSION': 'scorer',
    'build_scorecard': 'inputs',
    'write_reports': 'reports', 'render_all': 'reports', 'REPORT_FILES': 'reports', 'headline': 'reports',
    'render_table': 'console', 'render_progress': 'console', 'progress_fields': 'console',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    value = getattr(importlib.import_module('.' + module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
