# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scorecard.html: one self-contained page for trainers.

Inline CSS and an inline SVG timeline chart; no scripts, fonts or images
from anywhere else. Evidence sits in <details> elements, which open without
JavaScript. Every piece of text that comes from a drill input is escaped.
"""

from __future__ import annotations

import datetime
import html

from .evidence import DESK_SOURCES
from .markdown import points_by_source_line
from .timeutil import parse_ts, format_duration, format_offset

CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;background:#f4f5f7;color:#1f2933;font-size:14px;line-height:1.45}
header{background:#1f2933;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header .sub{color:#cbd2d9}
main{padding:18px 28px;max-width:1280px}
section{background:#fff;border:1px solid #e4e7eb;border-radius:6px;padding:14px 18px;margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{background:#f5f7fa;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.pass,.done{background:#e3f9e5;color:#0e5814}
.fail,.missed{background:#ffe3e3;color:#8a041a}
.not_assessed{background:#e4e7eb;color:#3e4c59}
.result{font-size:15px;padding:3px 12px}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{flex:1 1 180px;border:1px solid #e4e7eb;border-radius:6px;padding:10px 12px;background:#fafbfc}
.kpi .v{font-size:22px;font-weight:700}
.kpi .l{color:#52606d;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .n{color:#52606d;font-size:12px}
.bar{background:#e4e7eb;border-radius:3px;height:8px;width:120px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:8px;border-radius:3px;background:#3ebd93}
.bar span.low{background:#ef4e4e}
details{margin-top:4px}
summary{cursor:pointer;color:#2680c2}
ul.ev{margin:4px 0 0;padding-left:18px}
ul.ev li{margin:2px 0}
.src{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;color:#52606d}
.muted{color:#7b8794}
.warn{background:#fffbea;border-color:#f7c948}
.review{background:#ffe3e3;border-color:#e12d39}
.chart{width:100%;height:auto;display:block}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:10px}
.phase{border:1px solid #e4e7eb;border-radius:6px;padding:8px 10px}
.phase ul{list-style:none;margin:0;padding:0}
.phase li{margin:3px 0}
"""

PHASE_COLORS = {
    'preparation': '#9aa5b1', 'detection': '#f0b429', 'response_window': '#62b0e8',
    'rollback': '#a368fc', 'verification': '#3ebd93', 'symptom_onset': '#f9703e',
}
MARKERS = (
    ('fault_injected', 'fault injected', '#d64545'),
    ('alert_firing', 'alert firing', '#de911d'),
    ('steady_state_restored:team', 'recovered by team', '#199473'),
    ('rollback_started', 'rollback started', '#7c5dfa'),
    ('steady_state_restored:rollback', 'restored by rollback', '#9446ed'),
)
CATEGORY_COLORS = {
    'status': '#2680c2', 'events': '#40c3f7', 'logs': '#0b69a3', 'dependencies': '#7cc4fa',
    'metrics': '#2cb1bc', 'endpoints': '#14919b', 'changes': '#8719e0', 'recovery': '#1f2933',
    'config': '#f0b429', 'exec': '#cb6e17', 'other': '#9aa5b1',
}


def e(text):
    """Escape any value for HTML text or attribute use."""
    return html.escape('' if text is None else str(text), quote=True)


def _ts(value):
    try:
        return parse_ts(value) if value else None
    except ValueError:
        return None


def _nice_step(span_s):
    for step in (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span_s / step <= 12:
            return step
    return 14400


def render_chart(scorecard):
    """The SVG timeline: phases, milestones, and one lane per responder."""
    events = scorecard['events']
    actions = scorecard['actions']
    drill_stamps = [_ts(x['ts']) for x in events if x['source'] == 'timeline']
    for phase in scorecard['phases']:
        drill_stamps.extend([_ts(phase['start']), _ts(phase['end'])])
    drill_stamps = [s for s in drill_stamps if s is not None]
    team_stamps = [_ts(x['ts']) for x in events + actions if x['source'] != 'timeline']
    team_stamps = [s for s in team_stamps if s is not None]
    if not drill_stamps and not team_stamps:
        return '<p class="muted" id="timeline-chart-missing">No timeline events to draw.</p>'
    if drill_stamps:
        # The drill's own span; team entries long after it (a post-mortem
        # written the next day) would squeeze the chart, so they are left out.
        t0, t1 = min(drill_stamps), max(drill_stamps)
        t0 = min([t0] + [s for s in team_stamps if s >= t0 - datetime.timedelta(minutes=5)])
    else:
        t0, t1 = min(team_stamps), max(team_stamps)
    span = max((t1 - t0).total_seconds(), 60.0)
    t1 = t0 + datetime.timedelta(seconds=span * 1.02)
    span = (t1 - t0).total_seconds()
    hidden = len([s for s in team_stamps if s > t1 or s < t0])
    inj = next((_ts(x['ts']) for x in events if x['source'] == 'timeline' and x['action'] == 'fault_injected'), None) or t0

    people = [p['name'] for p in scorecard['participants']]
    width, left, right = 1200, 170, 24
    plot_w = width - left - right

    def x(ts):
        return left + (ts - t0).total_seconds() / span * plot_w

    # milestone labels: stack them in rows so they never overlap
    label_rows = []
    placed = []
    for key, label, color in MARKERS:
        ev = next((x_ for x_ in events if x_['source'] == 'timeline' and x_['action'] == key), None)
        if ev is None:
            continue
        px = x(_ts(ev['ts']))
        half = 3.3 * len(label) + 4
        row = 0
        while row < len(label_rows) and any(abs(px - other) < half + oh for other, oh in label_rows[row]):
            row += 1
        if row == len(label_rows):
            label_rows.append([])
        label_rows[row].append((px, half))
        placed.append((ev, px, label, color, row))
    top = 14 + 13 * max(1, len(label_rows)) + 6
    phase_h, lane_h = 40, 32
    lane_tops = [top] + [top + phase_h + i * lane_h for i in range(len(people))]
    lanes_bottom = top + phase_h + lane_h * len(people)
    height = lanes_bottom + 74

    out = ['<svg id="timeline-chart" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" '
           'role="img" aria-labelledby="chart-title">' % (width, height),
           '<title id="chart-title">Drill timeline</title>',
           '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (width, height)]
    # lanes
    for index, name in enumerate(['Drill phases'] + people):
        y = lane_tops[index]
        h = phase_h if index == 0 else lane_h
        fill = '#f5f7fa' if index % 2 == 0 else '#ffffff'
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>' % (left, y, plot_w, h, fill))
        out.append('<text class="lane-label" x="%d" y="%d" font-size="12" text-anchor="end" fill="#3e4c59">%s</text>'
                   % (left - 8, y + h / 2 + 4, e(name if len(name) <= 22 else name[:21] + '...')))
    # axis ticks, relative to the injection
    step = _nice_step(span)
    first_tick = -((inj - t0).total_seconds() // step) * step
    tick = first_tick
    while True:
        pos_s = (inj - t0).total_seconds() + tick
        if pos_s > span + 0.001:
            break
        if pos_s >= -0.001:
            px = left + pos_s / span * plot_w
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e4e7eb"/>' % (px, top, px, lanes_bottom))
            out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#52606d">%s</text>'
                       % (px, lanes_bottom + 14, e(format_offset(tick))))
        tick += step
    # phase bars, two rows so that overlapping phases stay visible
    y = top + 7
    for phase in scorecard['phases']:
        color = PHASE_COLORS.get(phase['name'])
        start, end = _ts(phase['start']), _ts(phase['end'])
        if not color or start is None or end is None:
            continue
        bar_y = y + (15 if phase['name'] in ('detection', 'rollback', 'symptom_onset') else 0)
        out.append('<rect class="phase-bar" x="%.1f" y="%d" width="%.1f" height="9" rx="2" fill="%s" opacity="0.85">'
                   '<title>%s: %s</title></rect>'
                   % (x(start), bar_y, max(2.0, x(end) - x(start)), color, e(phase['title']), e(format_duration(phase['seconds']))))
    # milestones
    for ev, px, label, color, row in placed:
        label_y = 14 + 13 * row
        out.append('<line class="milestone" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" '
                   'stroke-dasharray="4 3"><title>%s %s</title></line>' % (px, label_y + 3, px, lanes_bottom, color, e(label), e(ev['ts'])))
        out.append('<text class="milestone-label" x="%.1f" y="%d" font-size="11" fill="%s" text-anchor="middle">%s</text>'
                   % (px, label_y, color, e(label)))
    # responder lanes
    lane_of = dict((name, i + 1) for i, name in enumerate(people))
    for act in actions:
        lane = lane_of.get(act.get('actor'))
        ts = _ts(act['ts'])
        if lane is None or ts is None:
            continue
        if ts < t0 or ts > t1:
            continue
        cy = lane_tops[lane] + lane_h / 2
        px = x(ts)
        title = '%s %s: %s' % (act['ts'][11:19], act.get('actor') or '', act['summary'])
        if act.get('action') == 'read_drill_state':
            out.append('<circle class="answer-key-mark" cx="%.1f" cy="%.1f" r="6" fill="#ffffff" stroke="#e12d39" '
                       'stroke-width="3"><title>%s (read the drill\'s answer key)</title></circle>' % (px, cy, e(title)))
        elif act.get('fix') in ('cause', 'symptom'):
            color = '#199473' if act['fix'] == 'cause' else '#e12d39'
            what = 'fixes the cause' if act['fix'] == 'cause' else 'symptom only'
            out.append('<path class="fix-mark" d="M%.1f %.1f l7 -7 l7 7 l-7 7 z" fill="%s" stroke="#1f2933" stroke-width="1">'
                       '<title>%s (%s)</title></path>' % (px - 7, cy, color, e(title), what))
        else:
            color = CATEGORY_COLORS.get(act.get('category') or 'other', '#9aa5b1')
            out.append('<circle class="action-mark" cx="%.1f" cy="%.1f" r="4.5" fill="%s"><title>%s</title></circle>'
                       % (px, cy, color, e(title)))
    for ev in events:
        if ev['source'] not in DESK_SOURCES:
            continue
        lane = lane_of.get(ev.get('actor'))
        ts = _ts(ev['ts'])
        if lane is None or ts is None:
            continue
        if ts < t0 or ts > t1:
            continue
        cy = lane_tops[lane] + lane_h / 2
        out.append('<rect class="desk-mark" x="%.1f" y="%.1f" width="9" height="9" fill="#ffffff" stroke="#3e4c59" '
                   'stroke-width="1.5"><title>%s %s: %s</title></rect>'
                   % (x(ts) - 4.5, cy - 4.5, e(ev['ts'][11:19]), e(ev.get('actor')), e(ev['summary'])))
    # legend
    ly = lanes_bottom + 34
    lx = left
    legend = [('circle', '#2680c2', 'kubectl action (colour = tool)'), ('rect', '#ffffff', 'desk entry'),
              ('diamond', '#199473', 'fix of the cause'), ('diamond', '#e12d39', 'symptom-only fix')]
    bars = (('detection', 'detection'), ('response_window', 'response window'), ('rollback', 'rollback'),
            ('verification', 'verification'))
    legend += [('bar', PHASE_COLORS[k], t) for k, t in bars]
    if any(act.get('action') == 'read_drill_state' for act in actions):
        legend.append(('ring', '#e12d39', 'answer key read'))  # short: the legend is one row
    for shape, color, text in legend:
        if shape == 'circle':
            out.append('<circle cx="%d" cy="%d" r="4.5" fill="%s"/>' % (lx + 5, ly, color))
        elif shape == 'rect':
            out.append('<rect x="%d" y="%d" width="9" height="9" fill="#fff" stroke="#3e4c59" stroke-width="1.5"/>'
                       % (lx + 1, ly - 4))
        elif shape == 'ring':
            out.append('<circle cx="%d" cy="%d" r="5" fill="#fff" stroke="%s" stroke-width="3"/>' % (lx + 5, ly, color))
        elif shape == 'diamond':
            out.append('<path d="M%d %d l6 -6 l6 6 l-6 6 z" fill="%s" stroke="#1f2933"/>' % (lx, ly, color))
        else:
            out.append('<rect x="%d" y="%d" width="16" height="8" rx="2" fill="%s"/>' % (lx - 2, ly - 4, color))
        out.append('<text x="%d" y="%d" font-size="11" fill="#3e4c59">%s</text>' % (lx + 18, ly + 4, e(text)))
        lx += 26 + 6 * len(text)
    if hidden:
        out.append('<text x="%d" y="%d" font-size="11" fill="#7b8794">%d entr%s outside the drill window not drawn '
                   '(listed in the tables below)</text>' % (left, ly + 22, hidden, 'y' if hidden == 1 else 'ies'))
    out.append('</svg>')
    return '\n'.join(out)


def _badge(status, text=None):
    return '<span class="badge %s">%s</span>' % (e(status), e(text or status.replace('_', ' ')))


def _evidence_list(cites):
    if not cites:
        return '<span class="muted">no evidence</span>'
    rows = []
    for cite in cites:
        who = ' <b>%s</b>' % e(cite['actor']) if cite.get('actor') else ''
        ref = ' <span class="src">%s</span>' % e(cite['ref']) if cite.get('ref') else ''
        rows.append('<li><span class="src">%s %s</span>%s %s%s</li>' % (
            e((cite.get('ts') or '')[11:19]), e(cite['source']), who, e(cite['summary']), ref))
    return '<ul class="ev">%s</ul>' % ''.join(rows)


def _kpi(label, metric, extra=''):
    value = format_duration(metric['seconds'])
    note = []
    if metric.get('target_s') is not None:
        if metric['seconds'] is None:
            note.append('target %s' % format_duration(metric['target_s']))
        else:
            note.append('target %s (%s)' % (format_duration(metric['target_s']), 'met' if metric.get('within_target') else 'missed'))
    if extra:
        note.append(extra)
    if metric.get('note'):
        note.append(metric['note'])
    return ('<div class="kpi"><div class="l">%s</div><div class="v">%s</div><div class="n">%s</div></div>'
            % (e(label), e(value), e('; '.join(note))))


def _integrity_section(integrity):
    """Who read the drill's answer key, first on the page: the trainer reviews it."""
    rows = ''.join('<tr><td><b>%s</b></td><td>%s %s</td><td>%s %s</td><td>%d</td><td>%s <span class="src">%s</span></td>'
                   '<td>%s</td></tr>' % (
                       e(f['actor']), e((f['first_at'] or '')[11:19]), e(format_offset(f['first_offset_s'])),
                       e((f['last_at'] or '')[11:19]), e(format_offset(f['last_offset_s'])), f['requests'], e(f['kind']),
                       e('%s/%s' % (f['namespace'], f['name']) if f['namespace'] else f['name']),
                       'yes' if f['shown'] else 'no (refused)')
                   for f in integrity['findings'])
    reads = _evidence_list(integrity['drill_state_reads'])
    only_reads = all((f.get('what') or 'answer_key') == 'answer_key' for f in integrity['findings'])
    title = "the drill's answer key was read" if only_reads else 'trainees reached for the drill itself'
    return ('<section class="review" id="integrity"><h2>Trainer review required: %s</h2>' % title
            + '<p>The audit log shows trainees reading the drill state (scenario, variant and fault), reaching '
            'for its own objects, its monitoring or the steady-state label. No points were '
            'deducted: review it, and use trainer marks if points should change.</p>'
            '<table><tr><th>Who</th><th>First</th><th>Last</th><th>Requests</th><th>Object</th><th>Shown</th></tr>%s</table>'
            '<details><summary>Requests (%d)</summary>%s</details><p class="muted">Limits of this check: %s</p></section>'
            % (rows, len(integrity['drill_state_reads']), reads, e(integrity.get('note') or '')))


def render_html(scorecard):
    drill = scorecard['drill']
    totals = scorecard['totals']
    metrics = scorecard['metrics']
    pct = '-' if totals['percent'] is None else '%g%%' % totals['percent']
    title = 'opsdrill scorecard - %s' % (drill.get('drill_id') or 'drill')
    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<title>%s</title>' % e(title), '<style>%s</style></head><body>' % CSS]
    parts.append('<header><h1>%s</h1><div class="sub">%s / %s / %s &middot; namespace %s &middot; scored %s</div>'
                 % (e(title), e(drill.get('scenario') or '?'), e(drill.get('variant') or '?'), e(drill.get('fault') or '?'),
                    e(drill.get('namespace') or '?'), e(scorecard['generated_at'])))
    integrity = scorecard.get('integrity') or {}  # absent before scorecard schema 1.1
    review = ' %s' % _badge('fail', 'TRAINER REVIEW REQUIRED') if integrity.get('review_required') else ''
    parts.append('<div style="margin-top:8px">%s%s <b>%g</b> of %g assessed points (%s) &middot; %d of %d criteria assessed'
                 ' &middot; rubric %s %s</div></header><main>'
                 % (_badge(totals['result'], totals['result'].replace('_', ' ').upper()).replace('class="badge', 'class="badge result'),
                    review, totals['points'], totals['points_assessed_max'], e(pct), totals['assessed'],
                    totals['assessed'] + totals['not_assessed'], e(scorecard['rubric']['name']), e(scorecard['rubric']['version'])))
    if integrity.get('review_required'):
        parts.append(_integrity_section(integrity))
    if scorecard['warnings']:
        parts.append('<section class="warn"><h2>Warnings</h2><ul>%s</ul></section>'
                     % ''.join('<li>%s</li>' % e(w) for w in scorecard['warnings']))
    rec = metrics['time_to_recover']
    parts.append('<section><h2>Timings</h2><div class="kpis">%s%s%s%s</div></section>' % (
        _kpi('Detection latency', metrics['time_to_detect'], 'the monitoring'),
        _kpi('Time to acknowledge', metrics['time_to_acknowledge'], 'the team'),
        _kpi('Time to recover', rec, 'by the team' if rec.get('recovered_by') == 'team' else ''),
        _kpi('Rollback', metrics['rollback'])))
    parts.append('<section><h2>Timeline</h2>%s</section>' % render_chart(scorecard))
    # groups
    rows = ''.join('<tr><td>%s</td><td>%g / %g</td><td>%g</td></tr>' % (
        e(g['title']), g['points'], g['points_assessed_max'], g['points_max']) for g in scorecard['groups'])
    parts.append('<section><h2>Groups</h2><table><tr><th>Group</th><th>Points / assessed</th><th>Max</th></tr>%s</table>'
                 '<p>%s</p></section>' % (rows, e(points_by_source_line(scorecard['totals']))))
    # criteria
    crit_rows = []
    for crit in scorecard['criteria']:
        if crit['points'] is None:
            points = '<span class="muted">-</span> / %g' % crit['points_max']
            meter = ''
        else:
            share = crit['points'] / crit['points_max'] if crit['points_max'] else 0
            points = '%g / %g' % (crit['points'], crit['points_max'])
            meter = '<div class="bar"><span class="%s" style="width:%d%%"></span></div>' % (
                'low' if crit['status'] == 'fail' else '', int(round(share * 100)))
        detail = [e(crit['summary'])]
        if crit.get('reason'):
            detail.append('<div class="muted">%s</div>' % e(crit['reason']))
        if crit.get('auto'):
            detail.append('<div class="muted">automatic: %s points - %s</div>' % (
                e(crit['auto']['points'] if crit['auto']['points'] is not None else 'not assessed'), e(crit['auto']['summary'])))
        if crit.get('steps'):
            detail.append('<div class="muted">%s</div>' % '; '.join(
                '%s: %s' % (e(s['title']), e(s['status'].replace('_', ' '))) for s in crit['steps']))
        more = ''
        if crit['evidence_total'] > len(crit['evidence']):
            more = '<div class="muted">%d more not shown</div>' % (crit['evidence_total'] - len(crit['evidence']))
        if crit['evidence_total']:
            detail.append('<details><summary>Evidence (%d)</summary>%s%s</details>' % (
                crit['evidence_total'], _evidence_list(crit['evidence']), more))
        elif crit['status'] != 'not_assessed':
            detail.append('<div class="muted">no matching evidence</div>')
        crit_rows.append('<tr id="criterion-%s" data-criterion="%s"><td><b>%s</b><div class="src">%s</div></td>'
                         '<td>%s</td><td>%s %s</td><td>%s</td></tr>'
                         % (e(crit['id']), e(crit['id']), e(crit['title']), e(crit['id']), _badge(crit['status']),
                            points, meter, ''.join(detail)))
    parts.append('<section><h2>Criteria</h2><table><tr><th style="width:22%%">Criterion</th><th>Status</th>'
                 '<th style="width:190px">Points</th><th>Evidence behind the score</th></tr>%s</table></section>'
                 % ''.join(crit_rows))
    # checklist
    checklist = scorecard.get('checklist')
    if checklist:
        blocks = []
        for phase in checklist['phases']:
            items = []
            for item in phase['items']:
                tip = '; '.join('%s %s' % ((c.get('ts') or '')[11:19], c['summary']) for c in item['evidence'][:3])
                note = item.get('note') or ''
                items.append('<li id="check-%s" title="%s">%s %s <span class="muted">%s</span></li>' % (
                    e(item['id']), e(tip), _badge(item['status'], {'done': 'done', 'missed': 'missed'}.get(item['status'], 'n/a')),
                    e(item['title']), e(note)))
            blocks.append('<div class="phase"><h3>%s</h3><ul>%s</ul></div>' % (e(phase['title']), ''.join(items)))
        parts.append('<section><h2>%s</h2><div class="grid">%s</div></section>' % (e(checklist['title']), ''.join(blocks)))
    # fix assessment
    fix = scorecard.get('fix_assessment')
    if fix:
        lines = ['<p>Level: <b>%s</b>%s</p>' % (e(fix['level']), ' &middot; root cause: %s' % e(fix['root_cause']) if fix.get('root_cause') else '')]
        for label, key in (('Fixes of the cause', 'cause_fixes'), ('Symptom-only fixes', 'symptom_fixes'),
                           ('Other changes', 'unlisted_changes')):
            if fix.get(key):
                lines.append('<h3>%s</h3>%s' % (e(label), _evidence_list(fix[key])))
        parts.append('<section><h2>Fix assessment</h2>%s</section>' % ''.join(lines))
    # participants
    prow = ''.join('<tr><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%d / %d</td><td>%s</td></tr>' % (
        e(p['name']), e((p['first_action_at'] or '-')[11:19]), p['audit_actions'], p['desk_entries'], p['cause_fixes'],
        p['symptom_fixes'], e(', '.join(p['categories']))) for p in scorecard['participants'])
    parts.append('<section><h2>Responders</h2><table><tr><th>Who</th><th>First action</th><th>kubectl actions</th>'
                 '<th>Desk entries</th><th>Cause / symptom fixes</th><th>Tools</th></tr>%s</table></section>'
                 % (prow or '<tr><td colspan="6" class="muted">no trainee activity found</td></tr>'))
    # phases and sources
    ph = ''.join('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="muted">%s</td></tr>' % (
        e(p['title']), e((p['start'] or '-')[11:19]), e((p['end'] or '-')[11:19]), e(format_duration(p['seconds'])),
        e(p['note'] or '')) for p in scorecard['phases'])
    parts.append('<section><h2>Phases</h2><table><tr><th>Phase</th><th>Start</th><th>End</th><th>Duration</th><th></th></tr>'
                 '%s</table></section>' % ph)
    src = ''.join('<tr><td>%s</td><td class="src">%s</td><td>%s</td><td>%d</td><td class="muted">%s</td></tr>' % (
        e(s['name']), e(s['label']), 'yes' if s['available'] else 'no', s['items'], e(s.get('note') or ''))
        for s in scorecard['sources'])
    parts.append('<section><h2>Evidence sources</h2><table><tr><th>Source</th><th>Where</th><th>Available</th><th>Items</th>'
                 '<th></th></tr>%s</table></section>' % src)
    parts.append('<p class="muted">Scorecard schema %s %s. Generated by opsdrill.</p></main></body></html>'
                 % (e(scorecard['schema']), e(scorecard['schema_version'])))
    return '\n'.join(parts) + '\n'
