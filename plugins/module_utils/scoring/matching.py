# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evaluate a rubric ``match`` against the evidence.

A match says which evidence satisfies a step or checklist item::

    {actions: [logs], where: {previous: true}}      # audit actions
    {kinds: [status_update], after: first_fix}      # desk entries
    {events: [steady_state_restored:team]}          # timeline events
    {fix: cause | symptom | any}                    # trainee changes judged by the catalog
    {participants_min: 2}                           # distinct responders
    {any_of: [match, ...]}
    min_count: N       - N items needed (fewer give partial credit)
    after: injection | alert | first_action | first_fix
    window: response | after_injection | drill | any
            (default: audit and fixes ``response``, desk ``after_injection``)

The result says whether the match could be assessed at all: a match over
an unavailable source is *not assessable*, which is not the same as zero.
"""

from __future__ import annotations

from .audit import UNCREDITED_ACTIONS
from .evidence import DESK_SOURCES, SOURCE_FAMILIES, TEAM_SOURCES, EvidenceItem

# Parts of another kubectl command, and reads of the drill's answer key (flagged
# for the trainer, never credited - not even by ``actions: [any]``).
NOT_COUNTED_ACTIONS = frozenset(('resolve_log_pods', 'resolve_target')) | UNCREDITED_ACTIONS


class MatchResult(object):
    __slots__ = ('assessable', 'missing', 'items', 'ratio', 'note')

    def __init__(self, assessable, missing=(), items=(), ratio=0.0, note=None):
        self.assessable = assessable
        self.missing = set(missing)
        self.items = list(items)
        self.ratio = ratio
        self.note = note


class MatchContext(object):
    """Everything a match can look at."""

    def __init__(self, timeline, evidence, anchors, judgements, has_catalog):
        self.timeline = timeline
        self.evidence = evidence
        self.anchors = anchors
        self.judgements = judgements  # id(item) -> ('cause'|'symptom'|None, rule)
        self.has_catalog = has_catalog
        self._timeline_items = None

    def timeline_items(self):
        if self._timeline_items is None:
            items = []
            for ev in self.timeline.events:
                summary = ev.key().replace('_', ' ')
                if ev.data.get('reason'):
                    summary += ' (%s)' % ev.data['reason']
                items.append(EvidenceItem(ev.ts, 'timeline', ev.key(), summary,
                                          ref='%s:%d' % ('timeline.jsonl', ev.line), details=dict(ev.data)))
            self._timeline_items = items
        return self._timeline_items

    def window(self, name):
        a = self.anchors
        if name == 'response':
            return a.injection, a.response_end
        if name == 'after_injection':
            return a.injection, None
        if name == 'drill':
            return a.drill_start, a.drill_end
        return None, None

    def is_fix(self, item, which):
        verdict = self.judgements.get(id(item), (None, None))[0]
        if which == 'any':
            return verdict is not None or item.mutating
        return verdict == which


def _in_window(items, start, end):
    return [i for i in items if (start is None or i.ts >= start) and (end is None or i.ts <= end)]


def _where_ok(item, where):
    for key, wanted in (where or {}).items():
        value = item.details.get(key)
        if isinstance(wanted, list):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def evaluate(match, ctx):
    if 'any_of' in match:
        results = [evaluate(sub, ctx) for sub in match['any_of']]
        usable = [r for r in results if r.assessable]
        if not usable:
            missing = set()
            for r in results:
                missing |= r.missing
            return MatchResult(False, missing, note='; '.join(r.note for r in results if r.note) or None)
        items = {}
        for r in usable:
            for item in r.items:
                items[id(item)] = item
        best = max(usable, key=lambda r: r.ratio)
        return MatchResult(True, items=sorted(items.values(), key=lambda i: i.ts), ratio=best.ratio, note=best.note)

    ev = ctx.evidence
    if 'actions' in match or 'fix' in match:
        source, default_window = 'audit', 'response'
    elif 'kinds' in match:
        source, default_window = 'desk', 'after_injection'
    elif 'events' in match:
        source, default_window = 'timeline', 'any'
    else:
        source, default_window = None, 'response'

    # Availability ------------------------------------------------------------
    if source == 'timeline' and not ctx.timeline.available:
        return MatchResult(False, {'timeline'}, note='no timeline')
    if source in ('audit', 'desk') and not ev.has_any(SOURCE_FAMILIES[source]):
        return MatchResult(False, {source}, note='no %s evidence' % ('audit log' if source == 'audit' else 'incident desk'))
    if 'fix' in match and match['fix'] in ('cause', 'symptom') and not ctx.has_catalog:
        return MatchResult(False, {'catalog'}, note='no catalog entry to tell cause from symptom')
    if 'participants_min' in match and not ev.has_any(TEAM_SOURCES):
        return MatchResult(False, {'audit', 'desk'}, note='no audit log or desk evidence')

    # Candidates ----------------------------------------------------------------
    if 'actions' in match:
        wanted = set(match['actions'])
        pool = [i for i in ev.from_source('audit')
                if i.action not in NOT_COUNTED_ACTIONS and ('any' in wanted or wanted.intersection(i.names))]
    elif 'fix' in match:
        pool = [i for i in ev.from_source('audit') if ctx.is_fix(i, match['fix'])]
    elif 'kinds' in match:
        wanted = set(match['kinds'])
        pool = [i for i in ev.from_sources(DESK_SOURCES)
                if ('any' in wanted or i.action in wanted) and not i.details.get('empty')]
    elif 'events' in match:
        wanted = set(match['events'])
        pool = [i for i in ctx.timeline_items() if i.action in wanted or i.action.split(':')[0] in wanted]
    else:  # participants_min; reading the answer key does not make a responder
        pool = [i for i in ev.items if i.source in TEAM_SOURCES and i.action not in UNCREDITED_ACTIONS]
    pool = [i for i in pool if _where_ok(i, match.get('where'))]
    start, end = ctx.window(match.get('window', default_window))
    pool = _in_window(pool, start, end)

    note = None
    after = match.get('after')
    if after:
        anchor = ctx.anchors.get(after)
        if anchor is None and after == 'alert':
            anchor = ctx.anchors.injection
        if anchor is None and after in ('first_fix', 'first_action'):
            note = 'no %s happened' % after.replace('_', ' ')
            pool = []
        elif anchor is not None:
            strictly_after = after == 'first_fix'
            pool = [i for i in pool if (i.ts > anchor if strictly_after else i.ts >= anchor)]

    if 'participants_min' in match:
        firsts = {}
        for item in pool:
            if item.actor and item.actor not in firsts:
                firsts[item.actor] = item
        need = match['participants_min']
        return MatchResult(True, items=sorted(firsts.values(), key=lambda i: i.ts),
                           ratio=min(1.0, float(len(firsts)) / need),
                           note='%d responder(s) active' % len(firsts))

    need = match.get('min_count', 1)
    ratio = min(1.0, float(len(pool)) / need)
    if need > 1 and pool and len(pool) < need:
        note = '%d of %d expected' % (len(pool), need)
    return MatchResult(True, items=pool, ratio=ratio, note=note)
