# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill timeline: ``timeline.jsonl`` events (docs/contracts.md section 3).

This file only reads events and names the drill's key moments and phases;
it does not score anything.
"""

from __future__ import annotations

import json
import os

from .errors import ScoringInputError
from .timeutil import parse_ts, seconds_between, format_ts

TIMELINE_FILENAME = 'timeline.jsonl'

KNOWN_EVENTS = (
    'drill_started', 'preflight_passed', 'briefing_written', 'snapshot_taken',
    'deadman_armed', 'fault_injected', 'symptom_observed', 'alert_firing',
    'response_window_started', 'steady_state_restored', 'response_window_ended', 'fix_state',
    'rollback_started', 'rollback_finished', 'verify_passed', 'verify_failed',
    'deadman_disarmed', 'drill_finished', 'drill_failed',
)

# Phases: (name, title, start events, end events). A phase's start is the first
# start event; its end the first end event at or after the start.
PHASES = (
    ('preparation', 'Preparation (start to injection)', ('drill_started',), ('fault_injected',)),
    ('symptom_onset', 'Injection to first symptom', ('fault_injected',), ('symptom_observed',)),
    ('detection', 'Detection (injection to alert)', ('fault_injected',), ('alert_firing',)),
    ('response_window', 'Response window', ('response_window_started',), ('response_window_ended',)),
    ('recovery', 'Recovery by the team (injection to steady state)', ('fault_injected',), ('steady_state_restored:team',)),
    ('rollback', 'Rollback', ('rollback_started',), ('rollback_finished',)),
    ('verification', 'Verification after rollback', ('rollback_finished',), ('verify_passed', 'verify_failed')),
    ('wrap_up', 'Wrap-up (verification to end)', ('verify_passed', 'verify_failed'), ('drill_finished',)),
    ('total', 'Whole drill', ('drill_started',), ('drill_finished', 'drill_failed')),
)


class TimelineEvent(object):
    """One line of timeline.jsonl."""

    __slots__ = ('ts', 'event', 'data', 'raw', 'line')

    def __init__(self, ts, event, data, raw, line):
        self.ts = ts
        self.event = event
        self.data = data
        self.raw = raw
        self.line = line

    @property
    def restored_by(self):
        by = self.data.get('by') if isinstance(self.data, dict) else None
        return by if isinstance(by, str) else None

    def key(self):
        """``event`` or ``event:by`` for steady_state_restored."""
        if self.event == 'steady_state_restored' and self.restored_by:
            return '%s:%s' % (self.event, self.restored_by)
        return self.event

    def to_dict(self):
        return {'ts': format_ts(self.ts), 'event': self.event, 'data': self.data}

    def __repr__(self):
        return 'TimelineEvent(%s %s)' % (format_ts(self.ts), self.key())


class Timeline(object):
    """Events of one drill, sorted by time, with its key moments named."""

    def __init__(self, events, path=None):
        self.path = path
        self.events = sorted(events, key=lambda e: (e.ts, e.line))
        self._infer_restored_by()
        head = self.events[0].raw if self.events else {}
        self.drill_id = self._first_field('drill_id') or head.get('drill_id')
        self.scenario = self._first_field('scenario')
        self.variant = self._first_field('variant')
        self.fault = self._first_field('fault')
        self.namespace = self._first_field('namespace')

    @property
    def available(self):
        return bool(self.events)

    def _first_field(self, name):
        for ev in self.events:
            value = ev.raw.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    def _infer_restored_by(self):
        # steady_state_restored without data.by: before the rollback started it
        # can only be the team's doing; after, the rollback's.
        rollback = self.first('rollback_started')
        for ev in self.events:
            if ev.event == 'steady_state_restored' and not ev.restored_by:
                inferred = 'team' if rollback is None or ev.ts < rollback.ts else 'rollback'
                ev.data = dict(ev.data or {}, by=inferred, by_inferred=True)

    def first(self, *keys, after=None):
        """First event whose name or ``name:by`` key is one of ``keys``."""
        for ev in self.events:
            if after is not None and ev.ts < after:
                continue
            if ev.event in keys or ev.key() in keys:
                return ev
        return None

    def all(self, *keys):
        return [ev for ev in self.events if ev.event in keys or ev.key() in keys]

    # Key moments -----------------------------------------------------------
    def ts_of(self, *keys):
        ev = self.first(*keys)
        return ev.ts if ev else None

    @property
    def started_at(self):
        return self.ts_of('drill_started') or (self.events[0].ts if self.events else None)

    @property
    def finished_at(self):
        return self.ts_of('drill_finished') or (self.events[-1].ts if self.events else None)

    @property
    def injected_at(self):
        return self.ts_of('fault_injected')

    @property
    def alert_at(self):
        return self.ts_of('alert_firing')

    @property
    def restored_by_team_at(self):
        return self.ts_of('steady_state_restored:team')

    @property
    def restored_by_rollback_at(self):
        return self.ts_of('steady_state_restored:rollback')

    @property
    def response_end_at(self):
        """End of the window in which trainee actions count."""
        return (self.ts_of('response_window_ended') or self.ts_of('rollback_started')
                or self.ts_of('drill_finished', 'drill_failed'))

    @property
    def window_end_reason(self):
        ev = self.first('response_window_ended')
        if ev and isinstance(ev.data, dict):
            return ev.data.get('reason')
        return None

    @property
    def result(self):
        ev = self.first('drill_finished')
        if ev and isinstance(ev.data, dict):
            return ev.data.get('result')
        return None

    def phases(self):
        """Every phase: name, title, start, end, seconds, note."""
        out = []
        for name, title, starts, ends in PHASES:
            start_ev = self.first(*starts)
            end_ev = self.first(*ends, after=start_ev.ts) if start_ev else None
            note = None
            if start_ev is None:
                note = 'no %s event' % ' / '.join(starts)
            elif end_ev is None:
                note = 'no %s event' % ' / '.join(ends)
            out.append({
                'name': name,
                'title': title,
                'start': format_ts(start_ev.ts) if start_ev else None,
                'end': format_ts(end_ev.ts) if end_ev else None,
                'seconds': seconds_between(start_ev.ts, end_ev.ts) if (start_ev and end_ev) else None,
                'note': note,
            })
        return out


def _require(cond, path, field, message):
    if not cond:
        raise ScoringInputError(path, field, message)


def parse_timeline_lines(lines, path='<timeline>'):
    """Parse JSON lines into TimelineEvents; blank lines are skipped."""
    events = []
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            line = line.decode('utf-8', 'replace')
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ScoringInputError(path, 'line %d' % number, 'not valid JSON: %s' % exc)
        _require(isinstance(obj, dict), path, 'line %d' % number, 'each line must be a JSON object')
        event = obj.get('event')
        _require(isinstance(event, str) and event, path, 'line %d: event' % number,
                 'missing or not a string')
        ts = None
        if obj.get('epoch') is not None:
            try:
                ts = parse_ts(float(obj['epoch']))
            except (TypeError, ValueError):
                raise ScoringInputError(path, 'line %d: epoch' % number, 'not a number: %r' % (obj['epoch'],))
        elif obj.get('ts') is not None:
            try:
                ts = parse_ts(obj['ts'])
            except ValueError as exc:
                raise ScoringInputError(path, 'line %d: ts' % number, 'not an ISO 8601 timestamp: %s' % exc)
        _require(ts is not None, path, 'line %d: ts' % number, 'each event needs ts or epoch')
        data = obj.get('data', {})
        _require(data is None or isinstance(data, dict), path, 'line %d: data' % number,
                 'must be an object')
        events.append(TimelineEvent(ts, event, data or {}, obj, number))
    return Timeline(events, path=path)


def load_timeline(path):
    """Read ``timeline.jsonl``; a missing file gives an empty Timeline."""
    if path is None or not os.path.exists(path):
        return Timeline([], path=path)
    with open(path, 'r', encoding='utf-8') as handle:
        return parse_timeline_lines(handle, path=path)


def timeline_path(artifacts_dir=None, timeline_file=None):
    if timeline_file:
        return timeline_file
    if artifacts_dir:
        return os.path.join(artifacts_dir, TIMELINE_FILENAME)
    return None
