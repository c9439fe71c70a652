# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Console output: the compact scorecard table and the recovery progress line."""

from __future__ import annotations

from .timeutil import format_duration

_STATUS = {'pass': 'PASS', 'fail': 'FAIL', 'not_assessed': 'n/a', 'incomplete': 'INCOMPLETE'}


def render_table(summary_or_scorecard, width=78):
    """Compact table from a scorecard or its summary (see scorer.summarize)."""
    sc = summary_or_scorecard
    if 'totals' in sc:  # full scorecard
        drill = sc['drill']
        totals = sc['totals']
        metrics = sc['metrics']
        rows = [(c['id'], c['status'], c['points'], c['points_max']) for c in sc['criteria']]
        head = dict(drill_id=drill.get('drill_id'), scenario=drill.get('scenario'), fault=drill.get('fault'),
                    result=totals['result'], points=totals['points'], assessed=totals['points_assessed_max'],
                    maximum=totals['points_max'], percent=totals['percent'],
                    detect=metrics['time_to_detect']['seconds'], ack=metrics['time_to_acknowledge']['seconds'],
                    recover=metrics['time_to_recover']['seconds'], by=metrics['time_to_recover'].get('recovered_by'),
                    rollback=metrics['rollback']['seconds'], warnings=sc.get('warnings') or [])
    else:
        rows = [(cid, c['status'], c['points'], c['points_max']) for cid, c in sc['criteria'].items()]
        head = dict(drill_id=sc.get('drill_id'), scenario=sc.get('scenario'), fault=sc.get('fault'),
                    result=sc['result'], points=sc['points'], assessed=sc['points_assessed_max'],
                    maximum=sc['points_max'], percent=sc['percent'], detect=sc.get('time_to_detect_s'),
                    ack=sc.get('time_to_acknowledge_s'), recover=sc.get('time_to_recover_s'),
                    by=sc.get('recovered_by'), rollback=sc.get('rollback_s'), warnings=sc.get('warnings') or [])
    name_w = max([len('criterion')] + [len(r[0]) for r in rows])
    name_w = min(name_w, width - 20)
    lines = []
    title = 'drill %s' % (head['drill_id'] or '?')
    if head['scenario']:
        title += ' [%s/%s]' % (head['scenario'], head['fault'] or '?')
    lines.append(title)
    lines.append('  detect %s | ack %s | recover %s%s | rollback %s' % (
        format_duration(head['detect']), format_duration(head['ack']), format_duration(head['recover']),
        ' (%s)' % head['by'] if head['by'] else '', format_duration(head['rollback'])))
    lines.append('  %-*s  %-6s %11s' % (name_w, 'criterion', 'status', 'points'))
    lines.append('  ' + '-' * (name_w + 20))
    for cid, status, points, points_max in rows:
        pts = '-' if points is None else '%g' % points
        lines.append('  %-*s  %-6s %11s' % (name_w, cid[:name_w], _STATUS.get(status, status), '%s/%g' % (pts, points_max)))
    lines.append('  ' + '-' * (name_w + 20))
    pct = '-' if head['percent'] is None else '%g%%' % head['percent']
    lines.append('  %-*s  %-6s %11s' % (name_w, 'TOTAL', _STATUS.get(head['result'], head['result']),
                                        '%g/%g' % (head['points'], head['assessed'])))
    not_assessed = len([r for r in rows if r[1] == 'not_assessed'])
    lines.append('  %s of the assessed points; %d of %d criteria not assessed (rubric max %g)' % (
        pct, not_assessed, len(rows), head['maximum']))
    integrity = sc.get('integrity') or {}  # absent before scorecard schema 1.1
    if integrity.get('review_required'):
        findings = integrity.get('findings') or []
        shown = set(f['actor'] for f in findings if f['shown'])
        readers = sorted(set(f['actor'] if f['actor'] in shown else '%s (refused)' % f['actor'] for f in findings))
        if all((f.get('what') or 'answer_key') == 'answer_key' for f in findings):
            lines.append("  TRAINER REVIEW REQUIRED: the drill's answer key was read by %s" % ', '.join(readers))
        else:
            lines.append("  TRAINER REVIEW REQUIRED: %s reached for the drill itself (answer key, its own "
                         "objects, monitoring or steady-state label; see the warnings)" % ', '.join(readers))
    for warning in head['warnings']:
        lines.append('  ! %s' % warning)
    return '\n'.join(lines)


def _first(result, *keys):
    for key in keys:
        cur = result
        for part in key.split('.'):
            if not isinstance(cur, dict) or part not in cur:
                cur = None
                break
            cur = cur[part]
        if cur is not None:
            return cur
    return None


def _pods_ready(result):
    ready = _first(result, 'pods_ready', 'opsdrill_progress.pods_ready', 'ready_replicas', 'status.readyReplicas')
    total = _first(result, 'pods_total', 'opsdrill_progress.pods_total', 'replicas', 'status.replicas')
    if ready is None and isinstance(result.get('resources'), list):
        pods = [r for r in result['resources'] if isinstance(r, dict) and r.get('kind', 'Pod') == 'Pod']
        if pods:
            total = len(pods)
            ready = 0
            for pod in pods:
                conds = _first(pod, 'status.conditions') or []
                if any(isinstance(c, dict) and c.get('type') == 'Ready' and c.get('status') == 'True' for c in conds):
                    ready += 1
    return ready, total


def progress_fields(result, elapsed_s):
    """Pull elapsed time, alert state and pods ready out of a task result.

    Recognised keys (flat or under ``opsdrill_progress``): ``elapsed_s``,
    ``alert_state``, ``pods_ready``/``pods_total``; Deployment status fields;
    a ``kubernetes.core.k8s_info`` result's pods.
    """
    result = result if isinstance(result, dict) else {}
    elapsed = _first(result, 'elapsed_s', 'opsdrill_progress.elapsed_s')
    if not isinstance(elapsed, (int, float)):
        elapsed = elapsed_s
    alert = _first(result, 'alert_state', 'opsdrill_progress.alert_state', 'alert.state')
    ready, total = _pods_ready(result)
    return {
        'elapsed_s': elapsed, 'alert_state': alert, 'pods_ready': ready, 'pods_total': total,
        'attempt': result.get('attempts'), 'retries': result.get('retries'),
    }


def render_progress(fields, label='waiting for recovery'):
    parts = ['[opsdrill] %s' % label, 'elapsed %s' % format_duration(fields.get('elapsed_s'))]
    parts.append('alert %s' % (fields.get('alert_state') or 'unknown'))
    if fields.get('pods_ready') is not None:
        if fields.get('pods_total') is not None:
            parts.append('pods ready %s/%s' % (fields['pods_ready'], fields['pods_total']))
        else:
            parts.append('pods ready %s' % fields['pods_ready'])
    else:
        parts.append('pods ready ?')
    if fields.get('attempt') is not None and fields.get('retries') is not None:
        parts.append('check %s/%s' % (fields['attempt'], fields['retries']))
    return ' | '.join(parts)
