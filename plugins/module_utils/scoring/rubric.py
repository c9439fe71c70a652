# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rubric: criteria, points, thresholds and checklists, read from data.

The default rubric is ``rubrics/default.yml``, read on the controller (action
plugins pass modules the data). The checklists (the seeds' Expected Actions) and
follow-up headings come from the catalog's scenario records. A team's rubric is a YAML/JSON file of
the same format; with ``extends: default`` it only lists what differs:
criteria with a known id replace the default's, new ids are added,
``disable: [ids]`` drops criteria, and mappings (targets, checklists,
followup) are merged key by key.
"""

from __future__ import annotations

import copy
import os

from .datafile import load_data_file
from .errors import ScoringInputError

RUBRIC_SCHEMA = 1
METHODS = ('recovery', 'fix_quality', 'evidence_steps', 'variety', 'timeliness', 'cadence', 'trainer')
FIX_LEVELS = ('cause_fixed_recovered', 'cause_fixed_not_recovered', 'symptom_only_recovered', 'symptom_only',
              'no_fix')
RECOVERY_QUALITY = ('cause_fixed', 'symptom_only', 'no_fix')
MATCH_KEYS = frozenset(('source', 'actions', 'kinds', 'events', 'where', 'after', 'window',
                        'min_count', 'fix', 'participants_min', 'any_of'))
ANCHORS = ('injection', 'alert', 'first_action', 'first_fix')
WINDOWS = ('response', 'after_injection', 'drill', 'any')
_HERE = os.path.dirname(os.path.abspath(__file__))
# The arguments the rubric's action plugin (plugin_utils/rubric_action.py) reads and sets
# for drill_scorecard and drill_desk (doc fragment opsdrill.drills.rubric).
RUBRIC_ARGUMENT_SPEC = {'catalog_paths': {'type': 'list', 'elements': 'path', 'default': []},
                        'rubric': {'type': 'dict'}}
DEFAULT_RUBRIC_PATH = os.path.join(_HERE, 'rubrics', 'default.yml')


class Criterion(object):
    __slots__ = ('id', 'group', 'title', 'description', 'points', 'method', 'params',
                 'pass_ratio', 'scenarios', 'scenario_titles', 'scenario_params', 'required')

    def __init__(self, **kw):
        for key in self.__slots__:
            setattr(self, key, kw.get(key))

    def for_scenario(self, scenario):
        """(title, params) with the scenario's overrides applied."""
        title = (self.scenario_titles or {}).get(scenario) or self.title
        params = dict(self.params or {})
        params.update((self.scenario_params or {}).get(scenario) or {})
        return title, params


class Rubric(object):
    def __init__(self, data, origin):
        self.origin = origin
        self.data = data
        self.name = data.get('name', 'rubric')
        self.version = str(data.get('version', '1'))
        self.pass_percent = float(data.get('pass_percent', 70))
        self.pass_ratio = float(data.get('pass_ratio', 0.6))
        self.min_assessable_weight = float(data.get('min_assessable_weight', 0.5))
        self.min_coverage = float(data.get('min_coverage', 0.5))
        # Points self-reported evidence (a desk file anyone could write) may earn in all.
        self.self_reported_max_points = float((data.get('self_reported') or {}).get('max_points', 0))
        self.targets = dict(data.get('targets') or {})
        self.groups = [dict(g) for g in data.get('groups') or []]
        self.criteria = [Criterion(**dict(c, pass_ratio=c.get('pass_ratio', self.pass_ratio)))
                         for c in data.get('criteria') or []]
        self.checklists = data.get('checklists') or {}
        self.followup = data.get('followup') or {}

    def criteria_for(self, scenario):
        return [c for c in self.criteria if not c.scenarios or scenario in c.scenarios]

    def checklist_for(self, scenario):
        return self.checklists.get(scenario) if scenario else None

    def checklist_ids(self):
        ids = set()
        for checklist in self.checklists.values():
            for phase in checklist.get('phases') or []:
                for item in phase.get('items') or []:
                    ids.add(item['id'])
        return ids

    def group_title(self, group_id):
        for group in self.groups:
            if group.get('id') == group_id:
                return group.get('title') or group_id
        return group_id


# Validation -------------------------------------------------------------------
def _fail(path, field, message):
    raise ScoringInputError(path, field, message)


def _number(value, path, field, minimum=None, maximum=None, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        _fail(path, field, 'must be %s, got %r' % ('an integer' if integer else 'a number', value))
    if minimum is not None and value < minimum:
        _fail(path, field, 'must be >= %s, got %r' % (minimum, value))
    if maximum is not None and value > maximum:
        _fail(path, field, 'must be <= %s, got %r' % (maximum, value))
    return value


def _str_list(value, path, field):
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        _fail(path, field, 'must be a non-empty list of strings')


def validate_match(match, path, field):
    if not isinstance(match, dict) or not match:
        _fail(path, field, 'must be a non-empty mapping')
    unknown = set(match) - MATCH_KEYS
    if unknown:
        _fail(path, '%s.%s' % (field, sorted(unknown)[0]), 'unknown key; allowed: %s' % ', '.join(sorted(MATCH_KEYS)))
    if 'any_of' in match:
        subs = match['any_of']
        if not isinstance(subs, list) or not subs:
            _fail(path, field + '.any_of', 'must be a non-empty list of matchers')
        for index, sub in enumerate(subs):
            validate_match(sub, path, '%s.any_of[%d]' % (field, index))
        if len(match) > 1:
            _fail(path, field, 'any_of cannot be combined with other keys')
        return
    kinds = [k for k in ('actions', 'kinds', 'events', 'fix', 'participants_min') if k in match]
    if len(kinds) != 1:
        _fail(path, field, 'needs exactly one of actions, kinds, events, fix, participants_min')
    for key in ('actions', 'kinds', 'events'):
        if key in match:
            _str_list(match[key], path, '%s.%s' % (field, key))
    if 'fix' in match and match['fix'] not in ('cause', 'symptom', 'any'):
        _fail(path, field + '.fix', 'must be cause, symptom or any')
    if 'participants_min' in match:
        _number(match['participants_min'], path, field + '.participants_min', 1, integer=True)
    if 'min_count' in match:
        _number(match['min_count'], path, field + '.min_count', 1, integer=True)
    if 'after' in match and match['after'] not in ANCHORS:
        _fail(path, field + '.after', 'must be one of %s' % ', '.join(ANCHORS))
    if 'window' in match and match['window'] not in WINDOWS:
        _fail(path, field + '.window', 'must be one of %s' % ', '.join(WINDOWS))
    if 'where' in match and not isinstance(match['where'], dict):
        _fail(path, field + '.where', 'must be a mapping of detail field to value (or list of values)')
    if 'source' in match and match['source'] not in ('audit', 'desk', 'timeline'):
        _fail(path, field + '.source', 'must be audit, desk or timeline')


def _validate_bands(bands, path, field):
    if not isinstance(bands, list) or not bands:
        _fail(path, field, 'must be a non-empty list of {within_s, ratio}')
    last = -1
    for index, band in enumerate(bands):
        where = '%s[%d]' % (field, index)
        if not isinstance(band, dict):
            _fail(path, where, 'must be a mapping')
        _number(band.get('ratio'), path, where + '.ratio', 0, 1)
        if 'within_s' in band:
            value = _number(band['within_s'], path, where + '.within_s', 0)
            if value <= last:
                _fail(path, where + '.within_s', 'bands must be in increasing within_s order')
            last = value
        elif index != len(bands) - 1:
            _fail(path, where + '.within_s', 'only the last band may leave out within_s')


def validate_params(method, params, path, field):
    if not isinstance(params, dict):
        _fail(path, field, 'must be a mapping')
    if method == 'recovery':
        _validate_bands(params.get('bands'), path, field + '.bands')
        quality = params.get('quality', {})
        if not isinstance(quality, dict):
            _fail(path, field + '.quality', 'must be a mapping of fix level to ratio')
        for key, value in quality.items():
            if key not in RECOVERY_QUALITY:
                _fail(path, '%s.quality.%s' % (field, key), 'unknown; allowed: %s' % ', '.join(RECOVERY_QUALITY))
            _number(value, path, '%s.quality.%s' % (field, key), 0, 1)
    elif method == 'fix_quality':
        levels = params.get('levels')
        if not isinstance(levels, dict):
            _fail(path, field + '.levels', 'must be a mapping of level to ratio')
        for level in FIX_LEVELS:
            if level not in levels:
                _fail(path, '%s.levels.%s' % (field, level), 'missing (levels: %s)' % ', '.join(FIX_LEVELS))
            _number(levels[level], path, '%s.levels.%s' % (field, level), 0, 1)
        for level in levels:
            if level not in FIX_LEVELS:
                _fail(path, '%s.levels.%s' % (field, level), 'unknown level')
    elif method == 'evidence_steps':
        steps = params.get('steps')
        if not isinstance(steps, list) or not steps:
            _fail(path, field + '.steps', 'must be a non-empty list')
        seen = set()
        for index, step in enumerate(steps):
            where = '%s.steps[%d]' % (field, index)
            if not isinstance(step, dict):
                _fail(path, where, 'must be a mapping')
            if not isinstance(step.get('id'), str) or not step['id']:
                _fail(path, where + '.id', 'must be a non-empty string')
            if step['id'] in seen:
                _fail(path, where + '.id', 'duplicate step id %r' % step['id'])
            seen.add(step['id'])
            _number(step.get('weight'), path, where + '.weight', 0)
            validate_match(step.get('match'), path, where + '.match')
        if sum(float(s['weight']) for s in steps) <= 0:
            _fail(path, field + '.steps', 'weights add up to 0')
    elif method == 'variety':
        _str_list(params.get('categories'), path, field + '.categories')
        _number(params.get('full_at'), path, field + '.full_at', 1, integer=True)
    elif method == 'timeliness':
        if params.get('reference') not in ('alert', 'injection'):
            _fail(path, field + '.reference', 'must be alert or injection')
        validate_match(params.get('match'), path, field + '.match')
        _validate_bands(params.get('bands'), path, field + '.bands')
        if 'no_alert_allowance_s' in params:
            _number(params['no_alert_allowance_s'], path, field + '.no_alert_allowance_s', 0)
    elif method == 'cadence':
        validate_match(params.get('match'), path, field + '.match')
        _number(params.get('every_s'), path, field + '.every_s', 1)
        if params.get('from', 'alert') not in ('alert', 'injection', 'first_action'):
            _fail(path, field + '.from', 'must be alert, injection or first_action')
        if params.get('until', 'recovery') not in ('recovery', 'response_end'):
            _fail(path, field + '.until', 'must be recovery or response_end')


def validate_rubric(data, path):
    """Raise ScoringInputError(path, field, ...) on the first problem."""
    if not isinstance(data, dict):
        _fail(path, '(top level)', 'a rubric must be a mapping')
    if data.get('schema', RUBRIC_SCHEMA) != RUBRIC_SCHEMA:
        _fail(path, 'schema', 'unsupported rubric schema %r (this opsdrill reads %d)' % (data.get('schema'), RUBRIC_SCHEMA))
    for key, low, high in (('pass_percent', 0, 100), ('pass_ratio', 0, 1), ('min_assessable_weight', 0, 1),
                           ('min_coverage', 0, 1)):
        if key in data:
            _number(data[key], path, key, low, high)
    self_reported = data.get('self_reported', {})
    if not isinstance(self_reported, dict) or set(self_reported) - {'max_points'}:
        _fail(path, 'self_reported', 'must be a mapping with max_points')
    if 'max_points' in self_reported:
        _number(self_reported['max_points'], path, 'self_reported.max_points', 0)
    targets = data.get('targets', {})
    if not isinstance(targets, dict):
        _fail(path, 'targets', 'must be a mapping')
    for key, value in targets.items():
        _number(value, path, 'targets.%s' % key, 0)
    groups = data.get('groups')
    if not isinstance(groups, list) or not groups:
        _fail(path, 'groups', 'must be a non-empty list of {id, title}')
    group_ids = set()
    for index, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get('id'), str) or not group['id']:
            _fail(path, 'groups[%d].id' % index, 'must be a non-empty string')
        group_ids.add(group['id'])
    criteria = data.get('criteria')
    if not isinstance(criteria, list) or not criteria:
        _fail(path, 'criteria', 'must be a non-empty list')
    ids = set()
    for index, crit in enumerate(criteria):
        field = 'criteria[%d]' % index
        if not isinstance(crit, dict):
            _fail(path, field, 'must be a mapping')
        cid = crit.get('id')
        if not isinstance(cid, str) or not cid:
            _fail(path, field + '.id', 'must be a non-empty string')
        field = 'criteria[%d] (%s)' % (index, cid)
        if cid in ids:
            _fail(path, field + '.id', 'duplicate criterion id')
        ids.add(cid)
        unknown = set(crit) - set(Criterion.__slots__)
        if unknown:
            _fail(path, '%s.%s' % (field, sorted(unknown)[0]), 'unknown key')
        if crit.get('group') not in group_ids:
            _fail(path, field + '.group', 'must be one of the groups: %s' % ', '.join(sorted(group_ids)))
        if not isinstance(crit.get('title'), str) or not crit['title']:
            _fail(path, field + '.title', 'must be a non-empty string')
        _number(crit.get('points'), path, field + '.points', 0)
        if crit.get('method') not in METHODS:
            _fail(path, field + '.method', 'must be one of %s, got %r' % (', '.join(METHODS), crit.get('method')))
        if 'pass_ratio' in crit:
            _number(crit['pass_ratio'], path, field + '.pass_ratio', 0, 1)
        if 'required' in crit and not isinstance(crit['required'], bool):
            _fail(path, field + '.required', 'must be true or false')
        if 'scenarios' in crit:
            _str_list(crit['scenarios'], path, field + '.scenarios')
        for key in ('scenario_titles', 'scenario_params'):
            if key in crit and not isinstance(crit[key], dict):
                _fail(path, '%s.%s' % (field, key), 'must be a mapping of scenario to value')
        validate_params(crit['method'], crit.get('params') or {}, path, field + '.params')
        for scenario, override in (crit.get('scenario_params') or {}).items():
            merged = dict(crit.get('params') or {})
            if not isinstance(override, dict):
                _fail(path, '%s.scenario_params.%s' % (field, scenario), 'must be a mapping')
            merged.update(override)
            validate_params(crit['method'], merged, path, '%s.scenario_params.%s' % (field, scenario))
    validate_checklists(data.get('checklists', {}), data.get('followup', {}), path, ids)


def validate_checklists(checklists, followup, path, criterion_ids=()):
    """The Expected Actions checklists and Follow-up headings, per scenario (a scenario
    record's ``expected_actions`` and ``followup`` arrive here too)."""
    ids = set(criterion_ids)
    if not isinstance(checklists, dict):
        _fail(path, 'checklists', 'must be a mapping of scenario to checklist')
    item_ids = set()
    for scenario, checklist in checklists.items():
        field = 'checklists.%s' % scenario
        if not isinstance(checklist, dict) or not isinstance(checklist.get('phases'), list):
            _fail(path, field + '.phases', 'must be a list of phases')
        for pindex, phase in enumerate(checklist['phases']):
            pfield = '%s.phases[%d]' % (field, pindex)
            if not isinstance(phase, dict) or not isinstance(phase.get('items'), list):
                _fail(path, pfield + '.items', 'must be a list of items')
            if not isinstance(phase.get('title'), str):
                _fail(path, pfield + '.title', 'must be a string')
            for iindex, item in enumerate(phase['items']):
                ifield = '%s.items[%d]' % (pfield, iindex)
                if not isinstance(item, dict) or not isinstance(item.get('id'), str) or not item['id']:
                    _fail(path, ifield + '.id', 'must be a non-empty string')
                if item['id'] in item_ids or item['id'] in ids:
                    _fail(path, ifield + '.id', 'duplicate id %r' % item['id'])
                item_ids.add(item['id'])
                if not isinstance(item.get('title'), str):
                    _fail(path, ifield + '.title', 'must be a string')
                if 'match' in item:
                    validate_match(item['match'], path, ifield + '.match')
    if not isinstance(followup, dict):
        _fail(path, 'followup', 'must be a mapping of scenario to sections')
    for scenario, sections in followup.items():
        if not isinstance(sections, dict):
            _fail(path, 'followup.%s' % scenario, 'must be a mapping')
        for key in ('review', 'improvements', 'action_items'):
            if key in sections:
                _str_list(sections[key], path, 'followup.%s.%s' % (scenario, key))


# Loading ----------------------------------------------------------------------
def read_rubric_data(path=None):
    """``(data, origin)``: the rubric file at ``path`` or ``rubrics/default.yml``, as
    data. YAML is read on the controller (an action plugin or a test): a module is given
    the data, never the file."""
    if path:
        return load_data_file(path), path
    return load_data_file(DEFAULT_RUBRIC_PATH), 'default'


def with_scenarios(data, scenarios):
    """The rubric ``data`` with each scenario record's checklist and follow-up as the base
    its own ``checklists``/``followup`` refine (the records own the seeds' Expected
    Actions; a team rubric may still replace a scenario's checklist)."""
    merged = copy.deepcopy(data)
    for key, field in (('checklists', 'expected_actions'), ('followup', 'followup')):
        base = dict((s['id'], copy.deepcopy(s[field])) for s in scenarios or [] if s.get(field))
        base.update(merged.get(key) or {})
        merged[key] = base
    return merged


def _merge(base, overlay, path):
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if key in ('extends', 'criteria', 'disable'):
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            inner = dict(merged[key])
            inner.update(value)
            merged[key] = inner
        else:
            merged[key] = copy.deepcopy(value)
    criteria = list(merged.get('criteria') or [])
    index_of = dict((c.get('id'), i) for i, c in enumerate(criteria))
    for index, crit in enumerate(overlay.get('criteria') or []):
        if not isinstance(crit, dict) or 'id' not in crit:
            _fail(path, 'criteria[%d].id' % index, 'must be a non-empty string')
        if crit['id'] in index_of:
            criteria[index_of[crit['id']]] = copy.deepcopy(crit)
        else:
            criteria.append(copy.deepcopy(crit))
    disable = overlay.get('disable') or []
    if not isinstance(disable, list):
        _fail(path, 'disable', 'must be a list of criterion ids')
    known = set(c.get('id') for c in criteria)
    for index, cid in enumerate(disable):
        if cid not in known:
            _fail(path, 'disable[%d]' % index, 'no criterion %r to disable' % (cid,))
    merged['criteria'] = [c for c in criteria if c.get('id') not in disable]
    return merged


def rubric_from_data(data, origin, scenarios=None):
    """A validated Rubric from ``data``; ``extends: default`` reads the default rubric
    (controller only). ``scenarios``: the catalog's scenario records."""
    if isinstance(data, dict) and data.get('extends') is not None:
        if data['extends'] != 'default':
            _fail(origin, 'extends', 'only "default" can be extended')
        base, dummy = read_rubric_data()
        data = _merge(base, data, origin)
    data = with_scenarios(data, scenarios)
    validate_rubric(data, origin)
    return Rubric(data, origin)


def load_rubric(path=None, scenarios=None):
    """The rubric at ``path`` (YAML/JSON), or the default one, with the checklists of
    ``scenarios`` (default: the collection's own scenario records). Controller only."""
    if scenarios is None:
        from ..catalog import load as load_catalog
        scenarios = load_catalog().scenarios()
    data, origin = read_rubric_data(path)
    return rubric_from_data(data, origin, scenarios)
