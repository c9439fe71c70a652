# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trainer marks: a trainer's judgement per criterion (or checklist item).

Shape (YAML or JSON file, or a dict from playbook vars)::

    technical.problem_solving: {score: 8, note: "found the lowered limit"}
    documentation.postmortem:  {pass: true, note: "clear and honest"}
    outage.investigation.identify_cause: {pass: false}

``score`` is points (0 .. the criterion's points); ``pass`` gives full or no
points. A mark overrides the automatic score; the automatic result and its
evidence stay in the scorecard next to it.
"""

from __future__ import annotations

from .datafile import load_data_file
from .errors import ScoringInputError
from .evidence import EvidenceItem


class TrainerMark(object):
    __slots__ = ('target', 'score', 'passed', 'note', 'by', 'ts', 'origin')

    def __init__(self, target, score=None, passed=None, note=None, by=None, ts=None, origin=None):
        self.target = target
        self.score = score
        self.passed = passed
        self.note = note
        self.by = by
        self.ts = ts
        self.origin = origin

    def ratio(self, points):
        if self.score is not None:
            return (float(self.score) / points) if points else 0.0
        return 1.0 if self.passed else 0.0

    def describe(self):
        if self.score is not None:
            text = 'trainer mark: %g points' % self.score
        else:
            text = 'trainer mark: %s' % ('pass' if self.passed else 'fail')
        if self.note:
            text += ' (%s)' % self.note
        return text

    def to_dict(self):
        out = {'note': self.note, 'by': self.by}
        if self.score is not None:
            out['score'] = self.score
        else:
            out['pass'] = bool(self.passed)
        return out

    def as_evidence(self, ts):
        return EvidenceItem(ts, 'trainer', 'trainer_mark', self.describe(), actor=self.by,
                            ref=self.origin, details=self.to_dict())


def parse_marks(data, path='<trainer marks>'):
    """Validate the marks mapping; returns {target_id: TrainerMark}."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScoringInputError(path, '(top level)', 'must be a mapping of criterion id to {score|pass, note}')
    if isinstance(data.get('marks'), dict) and set(data) <= {'marks', 'trainer'}:
        trainer = data.get('trainer')
        data = data['marks']
    else:
        trainer = None
    marks = {}
    for target, body in data.items():
        field = str(target)
        if not isinstance(target, str) or not target:
            raise ScoringInputError(path, field, 'criterion ids must be non-empty strings')
        if isinstance(body, bool):
            body = {'pass': body}
        elif isinstance(body, (int, float)):
            body = {'score': body}
        if not isinstance(body, dict):
            raise ScoringInputError(path, field, 'must be a mapping with score or pass (and note)')
        unknown = set(body) - {'score', 'pass', 'result', 'note', 'by'}
        if unknown:
            raise ScoringInputError(path, '%s.%s' % (field, sorted(unknown)[0]),
                                    'unknown key; allowed: score, pass, result, note, by')
        score = body.get('score')
        passed = body.get('pass')
        if 'result' in body:
            if body['result'] not in ('pass', 'fail'):
                raise ScoringInputError(path, '%s.result' % field, 'must be "pass" or "fail"')
            passed = body['result'] == 'pass'
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float)) or score < 0):
            raise ScoringInputError(path, '%s.score' % field, 'must be a number >= 0, got %r' % (score,))
        if passed is not None and not isinstance(passed, bool):
            raise ScoringInputError(path, '%s.pass' % field, 'must be true or false, got %r' % (passed,))
        if score is None and passed is None:
            raise ScoringInputError(path, field, 'needs score (points) or pass (true/false)')
        if score is not None and passed is not None:
            raise ScoringInputError(path, field, 'give score or pass, not both')
        note = body.get('note')
        if note is not None and not isinstance(note, str):
            raise ScoringInputError(path, '%s.note' % field, 'must be a string')
        by = body.get('by', trainer)
        marks[target] = TrainerMark(target, score=score, passed=passed, note=note, by=by,
                                    origin='%s#%s' % (path, target))
    return marks


def load_marks(path=None, data=None):
    """Marks from a file and/or a dict (vars); the dict wins per id."""
    marks = {}
    if path:
        marks.update(parse_marks(load_data_file(path), path))
    if data:
        marks.update(parse_marks(data, '<trainer_marks var>'))
    return marks


def check_marks_against(marks, criteria_points, checklist_ids, path_of):
    """Unknown ids and scores above a criterion's points are input errors."""
    for target, mark in marks.items():
        origin = path_of(mark)
        if target in criteria_points:
            points = criteria_points[target]
            if mark.score is not None and mark.score > points:
                raise ScoringInputError(origin, '%s.score' % target,
                                        'is %g but the criterion has only %g points' % (mark.score, points))
        elif target in checklist_ids:
            if mark.score is not None:
                raise ScoringInputError(origin, '%s.score' % target,
                                        'checklist items take pass: true/false, not a score')
        else:
            raise ScoringInputError(origin, target, 'no criterion or checklist item with this id in the rubric')
