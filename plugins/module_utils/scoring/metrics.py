# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drill timings: time to detect, acknowledge, recover; rollback; phases.

* time to detect      fault_injected -> alert_firing
* time to acknowledge alert_firing -> first trainee action (audit or desk)
* time to recover     fault_injected -> steady_state_restored (by: team);
                      recovery by the drill's rollback is *not* a recovery
* rollback            rollback_started -> rollback_finished
"""

from __future__ import annotations

from .audit import UNCREDITED_ACTIONS
from .timeutil import format_ts, seconds_between

TEAM_SOURCES = ('audit', 'desk')


def _metric(seconds, start, end, note=None, target=None, **extra):
    out = {'seconds': seconds, 'from': format_ts(start), 'to': format_ts(end), 'note': note}
    if target is not None:
        out['target_s'] = target
        out['within_target'] = None if seconds is None else seconds <= target
    out.update(extra)
    return out


class Anchors(object):
    """Moments matchers refer to (``after: first_fix`` ...)."""

    def __init__(self, timeline, evidence, fix_items):
        self.injection = timeline.injected_at
        self.alert = timeline.alert_at
        self.response_end = timeline.response_end_at
        self.recovery = timeline.restored_by_team_at
        self.drill_start = timeline.started_at
        self.drill_end = timeline.finished_at
        # Reading the drill's answer key is no acknowledgement of the alert.
        team = [i for i in evidence.items if i.source in TEAM_SOURCES and i.action not in UNCREDITED_ACTIONS]
        if self.injection is not None:
            team = [i for i in team if i.ts >= self.injection]
        if self.response_end is not None:
            team = [i for i in team if i.ts <= self.response_end]
        self.first_action_item = team[0] if team else None
        self.first_action = team[0].ts if team else None
        self.first_fix_item = fix_items[0] if fix_items else None
        self.first_fix = fix_items[0].ts if fix_items else None

    def get(self, name):
        return {
            'injection': self.injection, 'alert': self.alert, 'first_action': self.first_action,
            'first_fix': self.first_fix, 'recovery': self.recovery, 'response_end': self.response_end,
        }.get(name)


def compute_metrics(timeline, anchors, targets, catalog_entry=None):
    targets = dict(targets or {})
    if catalog_entry and isinstance(catalog_entry.get('alert_within_s'), (int, float)):
        targets['time_to_detect_s'] = catalog_entry['alert_within_s']
    inj, alert = timeline.injected_at, timeline.alert_at
    metrics = {}

    if not timeline.available:
        note = 'no timeline'
    elif inj is None:
        note = 'no fault_injected event'
    elif alert is None:
        note = 'the alert never fired'
    else:
        note = None
    metrics['time_to_detect'] = _metric(seconds_between(inj, alert), inj, alert, note,
                                        targets.get('time_to_detect_s'))

    first = anchors.first_action
    acted_before_alert = bool(first and alert and first < alert)
    if alert is None:
        ack_note = 'the alert never fired' if timeline.available else 'no timeline'
        ack = None
    elif first is None:
        ack_note = 'no trainee action found (audit log / desk)'
        ack = None
    else:
        ack = max(0.0, seconds_between(alert, first))
        ack_note = 'first action came before the alert fired' if acted_before_alert else None
    item = anchors.first_action_item
    metrics['time_to_acknowledge'] = _metric(
        ack, alert, first, ack_note, targets.get('time_to_acknowledge_s'),
        acted_before_alert=acted_before_alert,
        first_action=item.cite() if item else None,
    )

    team_at = timeline.restored_by_team_at
    rollback_at = timeline.restored_by_rollback_at
    if team_at is not None:
        recovered_by = 'team'
        rec_note = None
    elif rollback_at is not None:
        recovered_by = 'rollback'
        rec_note = 'not recovered by the team; steady state came back only through the drill rollback'
    else:
        recovered_by = None
        rec_note = 'steady state was not restored' if timeline.available else 'no timeline'
    if inj is None and timeline.available:
        rec_note = 'no fault_injected event'
    metrics['time_to_recover'] = _metric(seconds_between(inj, team_at), inj, team_at, rec_note,
                                         targets.get('time_to_recover_s'), recovered_by=recovered_by)

    rb_start = timeline.ts_of('rollback_started')
    rb_end = timeline.ts_of('rollback_finished')
    rb_note = None
    if rb_start is None:
        rb_note = 'no rollback_started event'
    elif rb_end is None:
        rb_note = 'rollback did not finish'
    metrics['rollback'] = _metric(seconds_between(rb_start, rb_end), rb_start, rb_end, rb_note)

    ws = timeline.ts_of('response_window_started')
    we = timeline.ts_of('response_window_ended')
    metrics['response_window'] = _metric(seconds_between(ws, we), ws, we,
                                         None if (ws and we) else 'response window incomplete',
                                         reason=timeline.window_end_reason)
    return metrics
