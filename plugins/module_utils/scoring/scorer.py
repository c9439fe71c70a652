# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply a rubric to a drill's timeline and evidence: the scorecard.

The scorecard is a plain dict (schema ``schemas/scorecard.schema.json``,
version :data:`SCORECARD_SCHEMA_VERSION`). Every criterion is ``pass``,
``fail`` or ``not_assessed``; every awarded point cites its evidence.
"""

from __future__ import annotations

import datetime
import math

from .audit import UNCREDITED_ACTIONS
from .errors import ScoringError
from .evidence import DESK_SOURCES, TEAM_SOURCES
from .fixes import DERIVED_ACTIONS, FixCatalog, FixJudgement, describe_rule, is_cosmetic
from .integrity import integrity_section, integrity_warnings, summarize_integrity
from .marks import check_marks_against
from .matching import MatchContext, evaluate
from .metrics import Anchors, compute_metrics
from .timeutil import UTC, format_ts, seconds_between, format_duration

SCORECARD_SCHEMA = 'opsdrill.scorecard'
SCORECARD_SCHEMA_VERSION = '1.1'  # 1.1: optional ``integrity`` (and in the summary)
MAX_CITATIONS = 25


class Outcome(object):
    """Result of one scoring method."""

    def __init__(self, assessed, ratio=0.0, evidence=(), summary='', reason=None, details=None):
        self.assessed = assessed
        self.ratio = max(0.0, min(1.0, float(ratio)))
        self.evidence = list(evidence)
        self.summary = summary
        self.reason = reason
        self.details = details or {}


def _band_ratio(seconds, bands):
    for band in bands:
        if 'within_s' not in band or seconds <= band['within_s']:
            return float(band['ratio']), band
    return 0.0, None


def _band_text(band):
    if band is None:
        return 'beyond every band'
    if 'within_s' in band:
        return 'within %s' % format_duration(band['within_s'])
    return 'beyond the last target'


def _missing_text(missing):
    names = {'audit': 'audit log', 'desk': 'incident desk', 'incident_desk': 'incident desk', 'timeline': 'timeline',
             'catalog': 'catalog entry', 'trainer': 'trainer mark'}
    return ', '.join(names.get(m, m) for m in sorted(missing))


POINT_SOURCES = ('machine', 'witnessed', 'trainer', 'self_reported', 'self_reported_withheld')
# Share of the recovery points by the fix's level (rubric: recovery params.quality).
DEFAULT_RECOVERY_QUALITY = {'cause_fixed': 1.0, 'symptom_only': 0.5, 'no_fix': 0.0}


class Scorer(object):
    def __init__(self, timeline, evidence, rubric, marks=None, catalog_entry=None,
                 catalog_path='<catalog entry>', generated_at=None):
        self.timeline = timeline
        self.evidence = evidence
        self.rubric = rubric
        self.marks = marks or {}
        self.scenario = timeline.scenario
        injected = timeline.first('fault_injected')
        target = injected.data.get('target') if injected is not None else None
        self.catalog = FixCatalog(catalog_entry, catalog_path, target=target) if catalog_entry else None
        self.catalog_entry = catalog_entry
        self.catalog_path = catalog_path
        self.generated_at = generated_at or datetime.datetime.now(UTC)
        self.warnings = []
        # The catalog's rules name the kind of a change (symptom-only, cosmetic); whether
        # the cause is gone is the cluster's word (fix_state), who did it the audit log's.
        self.rule_verdicts = {}
        if self.catalog is not None:
            for item in evidence.from_source('audit'):
                verdict, rule = self.catalog.judge(item)
                if verdict:
                    self.rule_verdicts[id(item)] = (verdict, rule)
        self.fix_items = self._fix_items()
        state = timeline.first('fix_state')
        self.fix = None
        if catalog_entry:
            self.fix = FixJudgement(catalog_entry, state.data if state is not None else None, self.fix_items,
                                    evidence.has('audit'), target=target, path=catalog_path)
        self.judgements = self._judge_items()
        self._fix_assessment = None
        self.anchors = Anchors(timeline, evidence, self.fix_items)
        self.ctx = MatchContext(timeline, evidence, self.anchors, self.judgements, self.catalog is not None)

    # Fix analysis -------------------------------------------------------------
    def _fix_items(self):
        """The trainees' changes in the response window (and requests a rule names)."""
        start = self.timeline.injected_at
        end = self.timeline.response_end_at
        out = []
        for item in self.evidence.from_source('audit'):
            if start is not None and item.ts < start:
                continue
            if end is not None and item.ts > end:
                continue
            if id(item) in self.rule_verdicts or item.mutating:
                out.append(item)
        return out

    def _judge_items(self):
        """id(item) -> ('cause' | 'symptom', rule): 'cause' only for the changes that
        removed a part of the cause the cluster shows gone; restarts, scales and the
        catalog's other rules are 'symptom'; anything else (an annotation) none."""
        cause = set()
        if self.fix is not None and self.fix.cause_fixed:
            cause = set(id(i) for i in self.fix.cause_items())
        out = {}
        for item in self.fix_items:
            if not item.ok or item.details.get('dry_run'):
                continue
            rule = self.rule_verdicts.get(id(item), (None, None))[1]
            if id(item) in cause:
                out[id(item)] = ('cause', rule)
            elif is_cosmetic(item):
                continue  # kubectl annotate / label: no fix of anything, whatever rule its verb matches
            elif id(item) in self.rule_verdicts or item.action in DERIVED_ACTIONS:
                out[id(item)] = ('symptom', rule)
        return out

    def fix_assessment(self):
        """``(info, cause, symptom, other)``; computed once (recovery, problem solving and
        the scorecard all ask)."""
        if self._fix_assessment is None:
            self._fix_assessment = self._assess_fix()
        return self._fix_assessment

    def _assess_fix(self):
        recovered_at = self.timeline.restored_by_team_at
        cause, symptom, other = [], [], []
        for item in self.fix_items:
            verdict, rule = self.judgements.get(id(item), (None, None))
            entry = dict(item.cite(), rule=describe_rule(rule) or None)
            if verdict == 'cause':
                cause.append((item, entry))
            elif verdict == 'symptom':
                symptom.append((item, entry))
            elif item.mutating:
                other.append((item, entry))
        recovered = recovered_at is not None
        missing = []
        if self.fix is None or not self.fix.has_state:
            missing.append("the cluster's fix state (timeline event fix_state)")
        if not self.evidence.has('audit'):
            missing.append('the audit log (who changed what)')
        cause_fixed = self.fix.cause_fixed if self.fix is not None else None
        note = None
        changed = [i for i in self.fix_items if i.mutating or id(i) in self.judgements]
        if self.evidence.has('audit') and not changed:
            # The audit log shows no trainee change at all: nothing of theirs fixed anything.
            level = 'no_fix'
        elif missing:
            level = 'not_assessed'
            note = 'not assessed: needs %s' % ' and '.join(missing)
        elif cause_fixed is None:
            level = 'not_assessed'
            note = 'not assessed: %s' % '; '.join(p['detail'] for p in self.fix.parts if p['fixed'] is None)
        elif cause_fixed and cause:
            level = 'cause_fixed_recovered' if recovered else 'cause_fixed_not_recovered'
        elif symptom:
            level = 'symptom_only_recovered' if recovered else 'symptom_only'
        else:
            level = 'no_fix'
        if level == 'no_fix' and cause_fixed:
            note = 'the cause is gone, but no trainee request changed it'
        parts = []
        for part in (self.fix.parts if self.fix is not None else []):
            parts.append({'part': part['part'], 'fixed': part['fixed'], 'detail': part['detail'],
                          'by': [i.cite() for i in part['by'][:3]]})
        return {
            'level': level,
            'judged_by': 'cluster' if self.fix is not None and self.fix.has_state else None,
            'cause_fixed': cause_fixed,
            'parts': parts,
            'note': note,
            'recovered_by': 'team' if recovered else ('rollback' if self.timeline.restored_by_rollback_at else None),
            'recovery_held_s': self._held_s(),
            'root_cause': self.catalog.root_cause if self.catalog else None,
            'catalog_key': self.catalog.key if self.catalog else None,
            'cause_fixes': [e for dummy, e in cause],
            'symptom_fixes': [e for dummy, e in symptom],
            'unlisted_changes': [e for dummy, e in other],
        }, cause, symptom, other

    def _held_s(self):
        ev = self.timeline.first('steady_state_restored:team')
        try:
            return float(ev.data.get('held_s')) if ev is not None and ev.data.get('held_s') is not None else None
        except (TypeError, ValueError):
            return None

    # Methods --------------------------------------------------------------------
    def _timeline_item(self, key):
        for item in self.ctx.timeline_items():
            if item.action == key or item.action.split(':')[0] == key:
                return item
        return None

    def m_recovery(self, params):
        tl = self.timeline
        if not tl.available:
            return Outcome(False, reason='not assessed: no timeline')
        if tl.injected_at is None:
            return Outcome(False, reason='not assessed: the timeline has no fault_injected event')
        inj = self._timeline_item('fault_injected')
        team = self._timeline_item('steady_state_restored:team')
        if team is not None:
            seconds = seconds_between(tl.injected_at, team.ts)
            ratio, band = _band_ratio(seconds, params['bands'])
            evidence = [inj, team]
            fixes = [i for i in self.fix_items if i.ts <= team.ts]
            evidence.extend(fixes[:3])
            # A recovery is worth what fixed it: a symptom-only one cannot reach full credit.
            quality = dict(DEFAULT_RECOVERY_QUALITY, **(params.get('quality') or {}))
            level = self.fix_assessment()[0]['level'] if self.catalog is not None else 'not_assessed'
            factor_key = {'cause_fixed_recovered': 'cause_fixed', 'cause_fixed_not_recovered': 'cause_fixed',
                          'symptom_only_recovered': 'symptom_only', 'symptom_only': 'symptom_only',
                          'no_fix': 'no_fix'}.get(level)
            reason = None
            if factor_key is None:
                factor = 1.0
                reason = 'the fix could not be judged: recovery points not scaled by it'
            else:
                factor = float(quality[factor_key])
            held = self._held_s()
            summary = 'team restored steady state %s after injection%s (%s)' % (
                format_duration(seconds), ', held %s' % format_duration(held) if held is not None else '',
                _band_text(band))
            if factor_key is not None and factor < 1:
                summary += '; %s: recovery credit x%s' % (factor_key.replace('_', ' '), factor)
            return Outcome(True, ratio * factor, evidence, summary, reason=reason,
                           details={'seconds': seconds, 'quality_factor': factor})
        rollback = self._timeline_item('steady_state_restored:rollback')
        ended = self._timeline_item('response_window_ended')
        evidence = [e for e in (inj, ended, rollback) if e is not None]
        if rollback is not None:
            summary = 'not recovered by the team: steady state came back only through the drill rollback'
        else:
            summary = 'steady state was not restored'
        return Outcome(True, 0.0, evidence, summary)

    def m_fix_quality(self, params):
        missing = set()
        if not self.timeline.available or self.timeline.injected_at is None:
            missing.add('timeline')
        if not self.evidence.has('audit'):
            missing.add('audit')
        if self.catalog is None:
            missing.add('catalog')
        if missing:
            return Outcome(False, reason='not assessed: needs %s' % _missing_text(missing))
        info, cause, symptom, other = self.fix_assessment()
        level = info['level']
        if level == 'not_assessed':
            return Outcome(False, reason=info['note'])
        ratio = params['levels'][level]
        evidence = [i for i, dummy in cause] + [i for i, dummy in symptom] + [i for i, dummy in other]
        state = self._timeline_item('fix_state')
        if state is not None:
            evidence.append(state)
        recovered = self._timeline_item('steady_state_restored:team') or self._timeline_item('steady_state_restored:rollback')
        if recovered is not None:
            evidence.append(recovered)
        texts = {
            'cause_fixed_recovered': 'fixed the cause (%s): the cluster shows the fault\'s change gone and the recovery held',
            'cause_fixed_not_recovered': 'fixed the cause (%s) but the steady state did not return and hold in the window',
            'symptom_only_recovered': 'only hid the symptom (%s): the fault\'s change is still in the cluster',
            'symptom_only': 'changes that did not remove the cause (%s), and no recovery',
            'no_fix': 'no trainee change to the system%s',
        }
        names = [i.action for i, dummy in (cause or symptom)]
        what = ', '.join(sorted(set(names))) if names else ''
        summary = texts[level] % (what if names else '')
        if level == 'no_fix':
            if other:
                summary = 'no fix: only changes that do not touch the cause (%s)' % ', '.join(
                    sorted(set(i.action for i, dummy in other)))
            elif info['recovered_by'] == 'rollback':
                summary = 'no trainee fix; the drill rollback restored the service'
            if info['note']:
                summary += ' (%s)' % info['note']
        unfixed = [p['part'] for p in info['parts'] if p['fixed'] is False]
        if unfixed and level != 'no_fix':
            summary += '; still in place: %s' % ', '.join(unfixed)
        if cause and symptom and cause[0][0].ts > symptom[0][0].ts:
            summary += ' (tried %s first)' % symptom[0][0].action
        return Outcome(True, ratio, evidence, summary, details={'level': level})

    def _steps(self, steps):
        results = []
        total = sum(float(s['weight']) for s in steps)
        for step in steps:
            res = evaluate(step['match'], self.ctx)
            results.append((step, res))
        usable = [(s, r) for s, r in results if r.assessable]
        usable_weight = sum(float(s['weight']) for s, dummy in usable)
        missing = set()
        for dummy, r in results:
            if not r.assessable:
                missing |= r.missing
        step_info = []
        for step, res in results:
            if not res.assessable:
                status = 'not_assessed'
            elif res.ratio >= 1:
                status = 'met'
            elif res.ratio > 0:
                status = 'partial'
            else:
                status = 'missed'
            step_info.append({'id': step['id'], 'title': step.get('title', step['id']), 'weight': step['weight'],
                              'status': status, 'count': len(res.items), 'note': res.note})
        return results, usable, usable_weight, total, missing, step_info

    def m_evidence_steps(self, params):
        results, usable, usable_weight, total, missing, step_info = self._steps(params['steps'])
        if not usable or usable_weight / total < self.rubric.min_assessable_weight:
            return Outcome(False, reason='not assessed: needs %s' % _missing_text(missing),
                           details={'steps': step_info})
        ratio = sum(float(s['weight']) * r.ratio for s, r in usable) / usable_weight
        evidence = []
        for dummy, res in usable:
            evidence.extend(res.items)
        met = [i['title'] for i in step_info if i['status'] == 'met']
        missed = [i['title'] for i in step_info if i['status'] in ('missed', 'partial')]
        summary = []
        if met:
            summary.append('done: ' + '; '.join(met))
        if missed:
            summary.append('missing: ' + '; '.join(missed))
        reason = None
        if missing:
            reason = 'partly assessed: no %s' % _missing_text(missing)
        return Outcome(True, ratio, evidence, ' | '.join(summary), reason=reason, details={'steps': step_info})

    def m_variety(self, params):
        if not self.evidence.has('audit'):
            return Outcome(False, reason='not assessed: needs audit log')
        start, end = self.ctx.window('response')
        firsts = {}
        for item in self.evidence.from_source('audit'):
            if (start and item.ts < start) or (end and item.ts > end):
                continue
            if item.category in params['categories'] and item.category not in firsts:
                firsts[item.category] = item
        ratio = min(1.0, float(len(firsts)) / params['full_at'])
        summary = '%d tool categories used (%s); full credit at %d' % (
            len(firsts), ', '.join(sorted(firsts)) or 'none', params['full_at'])
        return Outcome(True, ratio, sorted(firsts.values(), key=lambda i: i.ts), summary,
                       details={'categories': sorted(firsts)})

    def _reference(self, name, params):
        tl = self.timeline
        allowance = 0.0
        if name == 'alert' and tl.alert_at is not None:
            return tl.alert_at, self._timeline_item('alert_firing'), 0.0, None
        if tl.injected_at is None:
            return None, None, 0.0, None
        if name == 'alert':
            allowance = float(params.get('no_alert_allowance_s', 0))
            if self.catalog_entry and isinstance(self.catalog_entry.get('alert_within_s'), (int, float)):
                allowance = float(self.catalog_entry['alert_within_s'])
            note = 'the alert never fired: measured from the injection, less %s allowance' % format_duration(allowance)
            return tl.injected_at, self._timeline_item('fault_injected'), allowance, note
        return tl.injected_at, self._timeline_item('fault_injected'), 0.0, None

    def m_timeliness(self, params):
        if not self.timeline.available:
            return Outcome(False, reason='not assessed: no timeline')
        ref_ts, ref_item, allowance, note = self._reference(params['reference'], params)
        if ref_ts is None:
            return Outcome(False, reason='not assessed: the timeline has no fault_injected or alert_firing event')
        res = evaluate(params['match'], self.ctx)
        if not res.assessable:
            return Outcome(False, reason='not assessed: needs %s' % _missing_text(res.missing))
        # Requests a trainee was already repeating before the alert (polling) are no response.
        items = [i for i in res.items if i.ts >= (self.timeline.injected_at or ref_ts) and not self.anchors.is_polling(i)]
        if not items:
            return Outcome(True, 0.0, [ref_item] if ref_item else [], 'nothing matching happened in the response window',
                           reason=note)
        first = items[0]
        seconds = max(0.0, seconds_between(ref_ts, first.ts) - allowance)
        ratio, band = _band_ratio(seconds, params['bands'])
        what = 'alert' if params['reference'] == 'alert' and note is None else 'injection'
        summary = 'first %s %s after the %s (%s)' % (first.action.replace('_', ' '), format_duration(seconds), what,
                                                     _band_text(band))
        if self.timeline.alert_at and first.ts < self.timeline.alert_at and params['reference'] == 'alert':
            summary = 'acted before the alert fired (%s)' % first.action.replace('_', ' ')
        return Outcome(True, ratio, [first, ref_item] if ref_item else [first], summary, reason=note,
                       details={'seconds': seconds})

    def m_cadence(self, params):
        if not self.timeline.available or self.timeline.injected_at is None:
            return Outcome(False, reason='not assessed: no timeline with a fault_injected event')
        res = evaluate(params['match'], self.ctx)
        if not res.assessable:
            return Outcome(False, reason='not assessed: needs %s' % _missing_text(res.missing))
        a = self.anchors
        start = {'alert': a.alert or a.injection, 'injection': a.injection,
                 'first_action': a.first_action or a.alert or a.injection}[params.get('from', 'alert')]
        until_name = params.get('until', 'recovery')
        end = (a.recovery if until_name == 'recovery' else None) or a.response_end or a.drill_end
        if end is None or end <= start:
            end = start + datetime.timedelta(seconds=params['every_s'])
        duration = (end - start).total_seconds()
        expected = max(1, int(math.ceil(duration / float(params['every_s']))))
        grace = datetime.timedelta(seconds=params['every_s'])
        items = [i for i in res.items if start <= i.ts <= end + grace]
        ratio = min(1.0, float(len(items)) / expected)
        summary = '%d posted, %d expected (one per %s over %s)' % (len(items), expected, format_duration(params['every_s']),
                                                                   format_duration(duration))
        return Outcome(True, ratio, items, summary, details={'expected': expected, 'count': len(items)})

    def m_trainer(self, params):
        return Outcome(False, reason='not assessed: needs a trainer mark')

    # Criteria -------------------------------------------------------------------
    def score_criterion(self, crit):
        title, params = crit.for_scenario(self.scenario)
        method = getattr(self, 'm_' + crit.method)
        outcome = method(params)
        mark = self.marks.get(crit.id)
        points_max = float(crit.points)
        auto = None
        evidence_items = list(outcome.evidence)
        if mark is not None:
            auto = {
                'status': 'assessed' if outcome.assessed else 'not_assessed',
                'points': round(points_max * outcome.ratio, 2) if outcome.assessed else None,
                'summary': outcome.summary or outcome.reason,
            }
            ratio = mark.ratio(points_max)
            assessed = True
            evidence_items.insert(0, mark.as_evidence(self.generated_at))
            summary = mark.describe()
            reason = None
        else:
            ratio = outcome.ratio
            assessed = outcome.assessed
            summary = outcome.summary
            reason = outcome.reason
        evidence_items = [i for i in evidence_items if i is not None]
        seen, cited = set(), []
        for item in sorted(evidence_items, key=lambda i: (i.source != 'trainer', i.ts)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            cited.append(item)
        pass_points = round(points_max * float(crit.pass_ratio), 2)
        if assessed:
            points = round(points_max * ratio, 2)
            status = 'pass' if points >= pass_points else 'fail'
            if points > 0 and not cited:
                raise ScoringError('criterion %s awarded %s points without evidence' % (crit.id, points))
        else:
            points = None
            status = 'not_assessed'
        return {
            'id': crit.id,
            'group': crit.group,
            'title': title,
            'description': crit.description,
            'method': crit.method,
            'points_max': points_max,
            'points': points,
            'pass_points': pass_points,
            'status': status,
            'required': bool(crit.required),
            'summary': summary or '',
            'reason': reason,
            'evidence': [i.cite() for i in cited[:MAX_CITATIONS]],
            'evidence_total': len(cited),
            'trainer_mark': mark.to_dict() if mark is not None else None,
            'auto': auto,
            'steps': outcome.details.get('steps'),
        }

    def _criteria_by_source(self):
        """Every criterion, scored on the evidence it may use, with its points by source.

        Trust decides: each criterion is scored again on machine evidence alone, then with
        witnessed evidence; what the full evidence adds is self-reported and counts only up
        to the rubric's ``self_reported.max_points`` (default 0: a desk file earns nothing
        and a criterion only it could assess stays not assessed). A trainer mark replaces
        the criterion's automatic score and is the trainer's."""
        crits = self.rubric.criteria_for(self.scenario)

        views = {}

        def view(levels):
            # Scored once per set of sources it keeps: with no witnessed source the machine
            # and witnessed views are one, with nothing withheld it is this scorer.
            kept = frozenset(n for n in self.evidence.available if self.evidence.trust_of(n) in levels)
            if kept == frozenset(self.evidence.available):
                return self
            if kept not in views:
                views[kept] = Scorer(self.timeline, self.evidence.trusted(levels), self.rubric,
                                     catalog_entry=self.catalog_entry, catalog_path=self.catalog_path,
                                     generated_at=self.generated_at)
            return views[kept]

        machine, witnessed = view(('machine',)), view(('machine', 'witnessed'))
        has_self = any(self.evidence.trust_of(n) == 'self_reported' for n in self.evidence.available)
        cap_left = self.rubric.self_reported_max_points
        out = []
        for crit in crits:
            by_source = dict((k, 0.0) for k in POINT_SOURCES)
            if self.marks.get(crit.id) is not None:
                entry = self.score_criterion(crit)
                by_source['trainer'] = entry['points'] or 0.0
                entry['points_by_source'] = by_source
                out.append(entry)
                continue
            machine_points = machine.score_criterion(crit)['points'] or 0.0
            entry = witnessed.score_criterion(crit)
            witnessed_points = entry['points'] or 0.0
            self_points = 0.0
            if has_self:
                full = self.score_criterion(crit)
                self_points = max(0.0, (full['points'] or 0.0) - witnessed_points)
                allowed = round(min(self_points, cap_left), 2)
                cap_left -= allowed
                if self.rubric.self_reported_max_points > 0 and full['status'] != 'not_assessed':
                    # The rubric counts self-reported evidence: scored with it, capped.
                    entry = full
                    entry['points'] = round(witnessed_points + allowed, 2)
                    entry['status'] = 'pass' if entry['points'] >= entry['pass_points'] else 'fail'
                    by_source['self_reported'] = allowed
                elif self_points > 0 or (entry['status'] == 'not_assessed' and full['status'] != 'not_assessed'):
                    note = ('self-reported evidence (the desk file) would add %s points; the rubric allows %s in all'
                            % (round(self_points, 2), self.rubric.self_reported_max_points))
                    entry['reason'] = '%s; %s' % (entry['reason'], note) if entry.get('reason') else note
                by_source['self_reported_withheld'] = round(self_points - by_source['self_reported'], 2)
            by_source['machine'] = round(min(machine_points, witnessed_points), 2)
            by_source['witnessed'] = round(max(0.0, witnessed_points - machine_points), 2)
            entry['points_by_source'] = by_source
            out.append(entry)
        return out

    def score_checklist(self):
        checklist = self.rubric.checklist_for(self.scenario)
        if not checklist:
            return None
        phases = []
        for phase in checklist.get('phases') or []:
            items = []
            for item in phase.get('items') or []:
                mark = self.marks.get(item['id'])
                entry = {'id': item['id'], 'title': item['title'], 'evidence': [], 'note': None, 'trainer_mark': None}
                if mark is not None:
                    entry['status'] = 'done' if mark.passed else 'missed'
                    entry['trainer_mark'] = mark.to_dict()
                    entry['evidence'] = [mark.as_evidence(self.generated_at).cite()]
                elif 'match' not in item:
                    entry['status'] = 'not_assessed'
                    entry['note'] = 'needs a trainer mark'
                else:
                    res = evaluate(item['match'], self.ctx)
                    if not res.assessable:
                        entry['status'] = 'not_assessed'
                        entry['note'] = 'needs %s' % _missing_text(res.missing)
                    else:
                        entry['status'] = 'done' if res.ratio >= 1 else 'missed'
                        entry['evidence'] = [i.cite() for i in res.items[:5]]
                        entry['note'] = res.note
                items.append(entry)
            phases.append({'id': phase.get('id') or phase['title'], 'title': phase['title'], 'items': items})
        return {'title': checklist.get('title') or self.scenario, 'phases': phases}

    def participants(self, criteria):
        people = {}
        start, end = self.ctx.window('response')
        for item in self.evidence.items:
            if item.source not in TEAM_SOURCES or not item.actor:
                continue
            person = people.setdefault(item.actor, {
                'name': item.actor, 'audit_actions': 0, 'desk_entries': 0, 'first_action_at': None,
                'categories': set(), 'changes': 0, 'cause_fixes': 0, 'symptom_fixes': 0, 'criteria': set()})
            in_window = (start is None or item.ts >= start) and (end is None or item.ts <= end)
            if item.source == 'audit':
                if not in_window:
                    continue
                person['audit_actions'] += 1
                if item.category:
                    person['categories'].add(item.category)
                verdict = self.judgements.get(id(item), (None, None))[0]
                if item.mutating or verdict:
                    person['changes'] += 1
                if verdict == 'cause':
                    person['cause_fixes'] += 1
                elif verdict == 'symptom':
                    person['symptom_fixes'] += 1
            else:
                person['desk_entries'] += 1
            if item.action in UNCREDITED_ACTIONS:
                continue  # reading the answer key is not their first action (as in metrics.Anchors)
            if in_window and (person['first_action_at'] is None or item.ts < person['first_action_at']):
                person['first_action_at'] = item.ts
        for crit in criteria:
            for cite in crit['evidence']:
                if cite.get('actor') in people and cite['source'] in TEAM_SOURCES:
                    people[cite['actor']]['criteria'].add(crit['id'])
        out = []
        for person in sorted(people.values(), key=lambda p: (p['first_action_at'] is None, p['first_action_at'] or 0, p['name'])):
            person['first_action_at'] = format_ts(person['first_action_at'])
            person['categories'] = sorted(person['categories'])
            person['criteria'] = sorted(person['criteria'])
            out.append(person)
        return out

    def key_events(self):
        """Timeline for reports: drill events, desk entries, changes, first action."""
        inj = self.timeline.injected_at or self.timeline.started_at
        rows = []
        for item in self.ctx.timeline_items():
            rows.append(item)
        for item in self.evidence.items:
            if item.source in DESK_SOURCES:
                rows.append(item)
            elif item.source == 'audit' and (item.mutating or id(item) in self.judgements):
                rows.append(item)
        first = self.anchors.first_action_item
        if first is not None and first not in rows:
            rows.append(first)
        rows.sort(key=lambda i: i.ts)
        out = []
        for item in rows:
            cite = item.cite()
            cite['offset_s'] = seconds_between(inj, item.ts)
            verdict = self.judgements.get(id(item), (None, None))[0]
            if verdict:
                cite['fix'] = verdict
            elif item.source == 'audit' and item.mutating:
                cite['fix'] = 'unlisted'
            if item is first:
                cite['first_action'] = True
            if item.source == 'incident_desk' and item.action == 'postmortem':
                cite['details'] = _postmortem_event_details(item.details)
            out.append(cite)
        return out

    def actions(self):
        out = []
        for item in self.evidence.from_source('audit'):
            cite = item.cite()
            cite['category'] = item.category
            verdict = self.judgements.get(id(item), (None, None))[0]
            if verdict:
                cite['fix'] = verdict
            out.append(cite)
        return out

    def score(self, sources=None, rubric_origin=None):
        rubric = self.rubric
        if self.marks:
            criteria_points = dict((c.id, float(c.points)) for c in rubric.criteria)
            check_marks_against(self.marks, criteria_points, rubric.checklist_ids(),
                                lambda m: (m.origin or '<trainer marks>').split('#')[0])
        criteria = self._criteria_by_source()
        groups = []
        for group in rubric.groups:
            members = [c for c in criteria if c['group'] == group['id']]
            assessed = [c for c in members if c['status'] != 'not_assessed']
            groups.append({
                'id': group['id'], 'title': group.get('title') or group['id'],
                'points': round(sum(c['points'] for c in assessed), 2),
                'points_assessed_max': round(sum(c['points_max'] for c in assessed), 2),
                'points_max': round(sum(c['points_max'] for c in members), 2),
            })
        assessed = [c for c in criteria if c['status'] != 'not_assessed']
        points = round(sum(c['points'] for c in assessed), 2)
        assessed_max = round(sum(c['points_max'] for c in assessed), 2)
        total_max = round(sum(c['points_max'] for c in criteria), 2)
        percent = round(100.0 * points / assessed_max, 1) if assessed_max else None
        coverage = round(assessed_max / total_max, 3) if total_max else 0.0
        required = dict((c.id, bool(c.required)) for c in rubric.criteria)
        required_failed = [c['id'] for c in criteria if required.get(c['id']) and c['status'] == 'fail']
        if percent is None:
            result = 'not_assessed'
        elif coverage < rubric.min_coverage:
            result = 'incomplete'
            self.warnings.append('only %d%% of the rubric could be assessed (needs %d%%): no overall result'
                                 % (int(coverage * 100), int(rubric.min_coverage * 100)))
        elif required_failed:
            result = 'fail'
            self.warnings.append('required criteria failed: %s' % ', '.join(required_failed))
        else:
            result = 'pass' if percent >= rubric.pass_percent else 'fail'
        fix_info = self.fix_assessment()[0] if self.catalog is not None else None
        tl = self.timeline
        if self.catalog_entry and tl.fault and self.catalog_entry.get('name') and self.catalog_entry['name'] != tl.fault:
            self.warnings.append('catalog entry %r does not match the drill fault %r' % (self.catalog_entry['name'], tl.fault))
        if not tl.available:
            self.warnings.append('no timeline: timings and recovery are not assessed')
        integrity = integrity_section(self.evidence, tl.injected_at or tl.started_at)
        # First: the trainer must see them before any other remark.
        self.warnings[:0] = integrity_warnings(integrity)
        return {
            'schema': SCORECARD_SCHEMA,
            'schema_version': SCORECARD_SCHEMA_VERSION,
            'generated_at': format_ts(self.generated_at),
            'drill': {
                'drill_id': tl.drill_id, 'scenario': tl.scenario, 'variant': tl.variant, 'fault': tl.fault,
                'namespace': tl.namespace, 'started_at': format_ts(tl.started_at),
                'finished_at': format_ts(tl.finished_at), 'result': tl.result,
                'timeline_file': tl.path,
            },
            'rubric': {'name': rubric.name, 'version': rubric.version, 'source': rubric_origin or rubric.origin,
                       'pass_percent': rubric.pass_percent},
            'metrics': compute_metrics(tl, self.anchors, rubric.targets, self.catalog_entry),
            'phases': tl.phases(),
            'sources': sources if sources is not None else self.evidence.describe_sources(),
            'participants': self.participants(criteria),
            'fix_assessment': fix_info,
            'criteria': criteria,
            'groups': groups,
            'checklist': self.score_checklist(),
            'events': self.key_events(),
            'actions': self.actions(),
            'integrity': integrity,
            'totals': {
                'points': points, 'points_assessed_max': assessed_max, 'points_max': total_max,
                'percent': percent, 'pass_percent': rubric.pass_percent, 'result': result,
                'coverage': coverage, 'required_failed': required_failed,
                'assessed': len(assessed), 'not_assessed': len(criteria) - len(assessed),
                'passed': len([c for c in criteria if c['status'] == 'pass']),
                'failed': len([c for c in criteria if c['status'] == 'fail']),
                'points_by_source': dict((k, round(sum(c['points_by_source'][k] for c in criteria), 2))
                                         for k in POINT_SOURCES),
            },
            'warnings': list(self.warnings),
        }


def _postmortem_event_details(details):
    """What the reports show of a post-mortem the desk witnessed: the summary text, the
    sections (review / improvements headings with their text, action items with owners),
    the desk record's id and the one it supersedes."""
    out = {'text': str(details.get('text') or '')}
    sections = details.get('sections') or {}
    out['sections'] = {
        part: dict((str(k), str(v if v is not None else '')) for k, v in (sections.get(part) or {}).items())
        if isinstance(sections.get(part), dict) else {}
        for part in ('review', 'improvements')
    }
    out['sections']['action_items'] = [
        {'title': str(a.get('title') or ''), 'owner': str(a.get('owner') or '')}
        for a in sections.get('action_items') or [] if isinstance(a, dict)]
    for key in ('record', 'supersedes'):
        if details.get(key):
            out[key] = str(details[key])
    return out


def score_drill(timeline, evidence, rubric, marks=None, catalog_entry=None, catalog_path='<catalog entry>',
                generated_at=None, sources=None):
    """Score one drill; returns the scorecard dict."""
    scorer = Scorer(timeline, evidence, rubric, marks=marks, catalog_entry=catalog_entry,
                    catalog_path=catalog_path, generated_at=generated_at)
    return scorer.score(sources=sources)


def summarize(scorecard, reports=None):
    """Compact summary for set_stats / AWX."""
    metrics = scorecard['metrics']
    return {
        'schema_version': scorecard['schema_version'],
        'drill_id': scorecard['drill']['drill_id'],
        'scenario': scorecard['drill']['scenario'],
        'fault': scorecard['drill']['fault'],
        'result': scorecard['totals']['result'],
        'points': scorecard['totals']['points'],
        'points_assessed_max': scorecard['totals']['points_assessed_max'],
        'points_max': scorecard['totals']['points_max'],
        'percent': scorecard['totals']['percent'],
        'time_to_detect_s': metrics['time_to_detect']['seconds'],
        'time_to_acknowledge_s': metrics['time_to_acknowledge']['seconds'],
        'time_to_recover_s': metrics['time_to_recover']['seconds'],
        'recovered_by': metrics['time_to_recover'].get('recovered_by'),
        'rollback_s': metrics['rollback']['seconds'],
        'criteria': dict((c['id'], {'status': c['status'], 'points': c['points'], 'points_max': c['points_max']})
                         for c in scorecard['criteria']),
        'participants': [p['name'] for p in scorecard['participants']],
        'reports': reports or {},
        'warnings': scorecard['warnings'],
        # None for a scorecard written before schema 1.1
        'integrity': summarize_integrity(scorecard['integrity']) if scorecard.get('integrity') else None,
    }
