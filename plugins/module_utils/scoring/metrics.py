# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drill timings: the monitoring's and the people's, kept apart.

* time to detect      fault_injected -> alert_firing (Prometheus' own firing time): the
                      monitoring's detection latency, not the team's
* time to acknowledge alert_firing -> the first explicit acknowledgement after it: a
                      witnessed desk ``acknowledge`` entry or an Alertmanager silence a
                      trainee created (audit log). Any other request is no acknowledgement,
                      and neither is a self-reported desk file's entry.
* first response      alert_firing -> the first trainee request after the alert that is not
                      one they were already repeating before it (polling)
* time to recover     fault_injected -> steady_state_restored (by: team, held);
                      recovery by the drill's rollback is *not* a recovery
* rollback            rollback_started -> rollback_finished
"""

from __future__ import annotations

from .audit import UNCREDITED_ACTIONS
from .evidence import TEAM_SOURCES
from .timeutil import format_ts, seconds_between

ACKNOWLEDGEMENTS = ('acknowledge', 'silence_alert')
# A request seen this many times before the alert is polling: its repeats after the alert
# are no response to it.
POLLING_MIN_BEFORE_ALERT = 2


def request_signature(item):
    """What makes two requests the same request (a loop's repeats)."""
    det = item.details or {}
    return (item.source, item.actor, item.action, det.get('verb'), det.get('resource'), det.get('subresource'),
            det.get('name'), det.get('proxy_path'))


def polling_signatures(items, alert):
    """Signatures of requests repeated before ``alert`` (none without an alert)."""
    if alert is None:
        return set()
    counts = {}
    for item in items:
        if item.ts < alert and item.source == 'audit':
            sig = request_signature(item)
            counts[sig] = counts.get(sig, 0) + 1
    return set(sig for sig, count in counts.items() if count >= POLLING_MIN_BEFORE_ALERT)


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
        # A self-reported entry's time is a claim: it is no response and no acknowledgement.
        team = [i for i in evidence.items if i.source in TEAM_SOURCES and i.action not in UNCREDITED_ACTIONS
                and evidence.trust_of(i.source) != 'self_reported']
        if self.injection is not None:
            team = [i for i in team if i.ts >= self.injection]
        if self.response_end is not None:
            team = [i for i in team if i.ts <= self.response_end]
        self.polling = polling_signatures(team, self.alert)
        # A loop already running before the alert is no response to it.
        team = [i for i in team if not self.is_polling(i)]
        self.first_action_item = team[0] if team else None
        self.first_action = team[0].ts if team else None
        after = [i for i in team if self.alert is None or i.ts >= self.alert]
        self.first_response_item = after[0] if after and self.alert is not None else None
        acks = [i for i in team if i.action in ACKNOWLEDGEMENTS and self.alert is not None and i.ts >= self.alert]
        self.acknowledgement = acks[0] if acks else None
        self.first_fix_item = fix_items[0] if fix_items else None
        self.first_fix = fix_items[0].ts if fix_items else None

    def is_polling(self, item):
        return request_signature(item) in self.polling

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

    ack_item = anchors.acknowledgement
    if alert is None:
        ack_note = 'the alert never fired' if timeline.available else 'no timeline'
    elif ack_item is None:
        ack_note = 'no acknowledgement after the alert (a desk acknowledge or an Alertmanager silence)'
    else:
        ack_note = None
    metrics['time_to_acknowledge'] = _metric(
        seconds_between(alert, ack_item.ts) if ack_item is not None and alert is not None else None,
        alert, ack_item.ts if ack_item is not None else None, ack_note, targets.get('time_to_acknowledge_s'),
        acknowledged_by=ack_item.cite() if ack_item is not None else None,
    )
    first = anchors.first_action
    acted_before_alert = bool(first and alert and first < alert)
    response = anchors.first_response_item
    metrics['first_response'] = _metric(
        seconds_between(alert, response.ts) if response is not None and alert is not None else None,
        alert, response.ts if response is not None else None,
        None if response is not None else ('the alert never fired' if alert is None else 'no trainee request after the alert'),
        acted_before_alert=acted_before_alert, polling_ignored=len(anchors.polling),
        first_action=response.cite() if response is not None else None,
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
