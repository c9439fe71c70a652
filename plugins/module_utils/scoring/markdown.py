# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""incident-record.md and postmortem.md from a scorecard."""

from __future__ import annotations

import re

from .evidence import DESK_SOURCES
from .timeutil import format_duration, format_offset

_STATUS = {'pass': 'pass', 'fail': 'FAIL', 'not_assessed': 'not assessed'}


def md(text):
    """Make user text safe in a Markdown table cell / paragraph: the one escaping helper
    for every trainee-controlled string (desk texts, summaries, actors) these reports show.
    ``<``, ``>`` and ``&`` become HTML entities (Markdown renderers pass raw HTML through),
    ``|`` becomes ``\\|`` (table cells), emphasis and link characters are backslashed,
    line breaks become spaces."""
    if text is None:
        return ''
    text = str(text).replace('\r', ' ').replace('\n', ' ')
    for char, repl in (('&', '&amp;'), ('<', '&lt;'), ('>', '&gt;'), ('|', '\\|'), ('`', '\\`'),
                       ('*', '\\*'), ('_', '\\_'), ('[', '\\['), (']', '\\]')):
        text = text.replace(char, repl)
    return text


def md_block(text):
    """User text as Markdown paragraphs: md() per paragraph (blank lines kept as
    paragraph breaks), and a paragraph that would start a heading, list, quote or rule
    is escaped (``\\#``, ``\\-``, ``1\\.``)."""
    if text is None:
        return ''
    paragraphs = []
    for para in re.split(r'\n\s*\n', str(text).replace('\r\n', '\n').replace('\r', '\n')):
        para = md(' '.join(para.split()))
        if para:
            paragraphs.append(_LINE_START.sub(lambda m: m.group(1) + '\\' + m.group(2), para, count=1))
    return '\n\n'.join(paragraphs)


_LINE_START = re.compile(r'^(\d*)([#+=~-]|(?<=\d)[.)])')


def md_heading(text):
    """User text in a heading line (md(), and no ``#`` closing sequence)."""
    return md(' '.join(str(text or '').split())).replace('#', '\\#')


def _clock(ts):
    if not ts:
        return '-'
    return ts[11:19]


def _metric_line(name, metric):
    line = '%s: %s' % (name, format_duration(metric['seconds']))
    if metric.get('target_s') is not None and metric['seconds'] is not None:
        line += ' (target %s, %s)' % (format_duration(metric['target_s']),
                                      'met' if metric.get('within_target') else 'missed')
    if metric.get('note'):
        line += ' - %s' % md(metric['note'])
    return line


def _find(events, **want):
    for ev in events:
        if all(ev.get(k) == v for k, v in want.items()):
            return ev
    return None


def _what(ev):
    text = md(ev['summary'])
    if ev.get('fix') == 'cause':
        text += ' **(fixes the cause)**'
    elif ev.get('fix') == 'symptom':
        text += ' **(hides the symptom only)**'
    elif ev.get('fix') == 'unlisted':
        text += ' (change)'
    if ev.get('first_action'):
        text += ' **(first trainee action)**'
    return text


def points_by_source_line(totals):
    by = totals.get('points_by_source') or {}
    text = 'Points by source: machine evidence %g, witnessed desk %g, trainer marks %g, self-reported %g' % (
        by.get('machine', 0), by.get('witnessed', 0), by.get('trainer', 0), by.get('self_reported', 0))
    if by.get('self_reported_withheld'):
        text += ' (%g self-reported points not counted)' % by['self_reported_withheld']
    return text + '.'


def key_moments(scorecard):
    events = scorecard['events']
    metrics = scorecard['metrics']
    status_updates = [e for e in events if e['source'] in DESK_SOURCES and e['action'] == 'status_update']
    fixes = [e for e in events if e.get('fix') == 'cause'] or [e for e in events if e.get('fix')]
    first = _find(events, first_action=True)
    rows = [
        ('Fault injected', _find(events, source='timeline', action='fault_injected')),
        ('Alert firing', _find(events, source='timeline', action='alert_firing')),
        ('First action', first),
        ('First status update', status_updates[0] if status_updates else None),
        ('Fix', fixes[0] if fixes else None),
        ('Recovered by the team', _find(events, source='timeline', action='steady_state_restored:team')),
        ('Rollback started', _find(events, source='timeline', action='rollback_started')),
        ('Rollback finished', _find(events, source='timeline', action='rollback_finished')),
        ('Restored by rollback', _find(events, source='timeline', action='steady_state_restored:rollback')),
    ]
    out, missing = [], []
    for label, ev in rows:
        if ev is None:
            missing.append((label, None, None, '-', 'not recorded'))
        else:
            out.append((label, ev['ts'], ev.get('offset_s'), ev.get('actor') or '', ev['summary']))
    # In the order things happened (a first action before the alert comes before it);
    # what was not recorded last.
    out.sort(key=lambda row: row[1])
    return out + missing, status_updates, metrics


def render_incident_record(scorecard):
    drill = scorecard['drill']
    totals = scorecard['totals']
    lines = ['# Incident record: %s' % md(drill.get('drill_id') or 'drill'), '']
    lines.append('*Drill record generated by opsdrill from the drill timeline and evidence; times are UTC.*')
    lines.append('')
    lines.append('| | |')
    lines.append('|---|---|')
    for label, key in (('Scenario', 'scenario'), ('Variant', 'variant'), ('Fault', 'fault'), ('Namespace', 'namespace'),
                       ('Started', 'started_at'), ('Finished', 'finished_at'), ('Drill result', 'result')):
        lines.append('| %s | %s |' % (label, md(drill.get(key)) or '-'))
    people = ', '.join(md(p['name']) for p in scorecard['participants']) or 'none recorded'
    lines.append('| Responders | %s |' % people)
    fix = scorecard.get('fix_assessment') or {}
    if fix.get('root_cause'):
        lines.append('| Root cause (catalog) | %s |' % md(fix['root_cause']))
    lines.append('')
    lines.extend(_integrity_lines(scorecard))
    lines.append('## Key moments')
    lines.append('')
    lines.append('| Moment | Time | T+ | Who | Detail |')
    lines.append('|---|---|---|---|---|')
    rows, status_updates, metrics = key_moments(scorecard)
    for label, ts, offset, who, detail in rows:
        lines.append('| %s | %s | %s | %s | %s |' % (label, _clock(ts), format_offset(offset), md(who), md(detail)))
    lines.append('')
    lines.append('## Timings')
    lines.append('')
    for name, key in (('Detection latency (the monitoring: injection to Prometheus firing)', 'time_to_detect'),
                      ('Time to acknowledge (the team: alert to an explicit acknowledgement)', 'time_to_acknowledge'),
                      ('First response (alert to the first request that is not polling)', 'first_response'),
                      ('Time to recover (team, held)', 'time_to_recover'), ('Rollback', 'rollback'),
                      ('Response window', 'response_window')):
        if key in metrics:
            lines.append('- ' + _metric_line(name, metrics[key]))
    lines.append('')
    lines.append('## Status updates')
    lines.append('')
    if status_updates:
        for ev in status_updates:
            lines.append('- %s (%s) %s: %s' % (_clock(ev['ts']), format_offset(ev.get('offset_s')), md(ev.get('actor')),
                                               md(ev['summary'])))
    else:
        lines.append('- none recorded on the incident desk')
    lines.append('')
    lines.append('## Timeline')
    lines.append('')
    lines.append('| Time | T+ | Source | Who | What |')
    lines.append('|---|---|---|---|---|')
    for ev in scorecard['events']:
        lines.append('| %s | %s | %s | %s | %s |' % (_clock(ev['ts']), format_offset(ev.get('offset_s')), ev['source'],
                                                     md(ev.get('actor') or ''), _what(ev)))
    lines.append('')
    lines.append('## Score')
    lines.append('')
    pct = '-' if totals['percent'] is None else '%g%%' % totals['percent']
    lines.append('**%s**: %g of %g assessed points (%s); %d criteria not assessed.' % (
        totals['result'].upper().replace('_', ' '), totals['points'], totals['points_assessed_max'], pct,
        totals['not_assessed']))
    lines.extend(['', points_by_source_line(totals)])
    if (scorecard.get('integrity') or {}).get('review_required'):
        lines.append('')
        lines.append('**Trainer review required**: see Integrity above.')
    lines.append('')
    return '\n'.join(lines)


def _integrity_lines(scorecard):
    """Who read the drill's answer key; nothing when nobody did (or no audit log)."""
    integrity = scorecard.get('integrity') or {}  # absent before scorecard schema 1.1
    if not integrity.get('review_required'):
        return []
    lines = ['## Integrity: trainer review required', '',
             "The audit log shows trainees reaching for the drill itself: its answer key (the drill state), "
             "its own objects, its monitoring or the steady-state label (column What). "
             'No points were deducted: the trainer decides, with trainer marks if needed.', '',
             '| Who | What | First | Last | Requests | Object | Shown |', '|---|---|---|---|---|---|---|']
    for found in integrity['findings']:
        lines.append('| %s | %s | %s %s | %s %s | %d | %s %s | %s |' % (
            md(found['actor']), md(found.get('what') or 'answer_key'), _clock(found['first_at']), format_offset(found['first_offset_s']),
            _clock(found['last_at']), format_offset(found['last_offset_s']), found['requests'], found['kind'],
            md('%s/%s' % (found['namespace'], found['name']) if found['namespace'] else found['name']),
            'yes' if found['shown'] else 'no (refused)'))
    lines.append('')
    return lines


def render_postmortem(scorecard, followup=None):
    followup = followup or {}
    drill = scorecard['drill']
    metrics = scorecard['metrics']
    fix = scorecard.get('fix_assessment') or {}
    crit = dict((c['id'], c) for c in scorecard['criteria'])
    lines = ['# Post-mortem (draft): %s' % md(drill.get('drill_id') or 'drill'), '']
    lines.append('*Draft written by opsdrill. Replace the prompts in italics; keep it blameless.*')
    lines.append('')
    lines.append('## Summary')
    lines.append('')
    lines.append('Training drill **%s / %s / %s** in namespace `%s`.' % (
        md(drill.get('scenario') or '?'), md(drill.get('variant') or '?'), md(drill.get('fault') or '?'),
        md(drill.get('namespace') or '?')))
    rec = metrics['time_to_recover']
    if rec.get('recovered_by') == 'team':
        lines.append('The team restored service %s after the fault was injected.' % format_duration(rec['seconds']))
    elif rec.get('recovered_by') == 'rollback':
        lines.append('The team did not restore service within the response window; the drill rollback did.')
    else:
        lines.append('Service was not restored during the drill.')
    lines.append('')
    lines.extend(_team_postmortem_lines(scorecard))
    lines.append('## Impact')
    lines.append('')
    lines.append('*Which users and services were affected, and for how long?*')
    lines.append('')
    lines.append('## Root cause')
    lines.append('')
    lines.append(md(fix.get('root_cause')) if fix.get('root_cause') else '*Not known from the catalog: describe it.*')
    if fix.get('level'):
        lines.append('')
        lines.append('Fix assessment: `%s`.' % fix['level'])
        for entry in fix.get('cause_fixes') or []:
            lines.append('- cause fixed: %s %s (%s)' % (_clock(entry['ts']), md(entry['summary']), md(entry.get('actor'))))
        for entry in fix.get('symptom_fixes') or []:
            lines.append('- symptom only: %s %s (%s)' % (_clock(entry['ts']), md(entry['summary']), md(entry.get('actor'))))
        for entry in fix.get('unlisted_changes') or []:
            lines.append('- other change: %s %s (%s)' % (_clock(entry['ts']), md(entry['summary']), md(entry.get('actor'))))
    lines.append('')
    lines.append('## Timeline')
    lines.append('')
    rows, dummy_updates, dummy_metrics = key_moments(scorecard)
    for label, ts, offset, who, detail in rows:
        if ts:
            lines.append('- %s %s %s: %s%s' % (_clock(ts), format_offset(offset), label, md(detail),
                                               ' (%s)' % md(who) if who else ''))
    lines.append('')
    # Seed follow-up: Review / Improvements / Action Items
    findings = {
        'response effectiveness': _crit_line(crit, ('process.response_time', 'technical.problem_solving')),
        'recovery time': _metric_line('Time to recover', rec),
        'resolution time': _metric_line('Time to recover', rec),
        'communication quality': _crit_line(crit, ('process.communication', 'documentation.status_updates')),
        'documentation completeness': _crit_line(crit, ('documentation.incident_record', 'documentation.recovery_steps',
                                                        'documentation.postmortem')),
    }
    lines.append('## Review')
    lines.append('')
    for title in followup.get('review') or ['Response effectiveness', 'Recovery time', 'Communication quality',
                                            'Documentation completeness']:
        lines.append('### %s' % md(title))
        lines.append('')
        lines.append(findings.get(title.lower()) or '*To be written.*')
        lines.append('')
    suggestions = _suggestions(scorecard)
    lines.append('## Improvements')
    lines.append('')
    for title in followup.get('improvements') or ['Process updates', 'Tool enhancements', 'Training needs',
                                                  'Documentation updates']:
        lines.append('### %s' % md(title))
        lines.append('')
        hint = suggestions.get(title.lower())
        lines.append(hint if hint else '*What should change?*')
        lines.append('')
    lines.append('## Action Items')
    lines.append('')
    for index, title in enumerate(followup.get('action_items') or ['Update procedures', 'Enhance monitoring',
                                                                   'Improve automation', 'Document lessons'], 1):
        lines.append('%d. [ ] %s - owner: *TBD*, due: *TBD*' % (index, md(title)))
    lines.append('')
    return '\n'.join(lines)


def team_postmortem(scorecard):
    """The post-mortem the team wrote on the incident desk (the scorecard event of source
    ``incident_desk``, action ``postmortem``, with its ``details``): the latest one that no
    other supersedes, or None."""
    written = [ev for ev in scorecard.get('events') or []
               if ev.get('source') == 'incident_desk' and ev.get('action') == 'postmortem' and ev.get('details')]
    superseded = set(ev['details'].get('supersedes') for ev in written if ev['details'].get('supersedes'))
    current = [ev for ev in written if not ev['details'].get('record') or ev['details']['record'] not in superseded]
    return (current or written or [None])[-1]


def _team_postmortem_lines(scorecard):
    ev = team_postmortem(scorecard)
    if ev is None:
        return []
    details = ev['details']
    sections = details.get('sections') or {}
    lines = ["## The team's post-mortem (incident desk)", '']
    lines.append('*Written on the incident desk by %s; server time %s%s.*' % (
        md(ev.get('actor') or 'unknown'), md(ev.get('ts') or '-'),
        ' (record %s)' % md(details['record']) if details.get('record') else ''))
    lines.append('')
    summary = md_block(details.get('text'))
    if summary:
        lines.extend([summary, ''])
    for part, title in (('review', 'Review'), ('improvements', 'Improvements')):
        given = sections.get(part) or {}
        lines.extend(['### %s' % title, ''])
        if not given:
            lines.extend(['*None written.*', ''])
        for heading, text in given.items():
            lines.extend(['#### %s' % md_heading(heading), '', md_block(text) or '*Empty.*', ''])
    lines.extend(['### Action items', ''])
    items = sections.get('action_items') or []
    for item in items:
        title = md(' '.join(str(item.get('title') or '').split())) or '*untitled*'
        lines.append('- %s \u2014 owner: %s' % (title, md(item.get('owner')) or '*none*'))
    if not items:
        lines.append('- *none written*')
    lines.append('')
    return lines


def _crit_line(crit, ids):
    parts = []
    for cid in ids:
        c = crit.get(cid)
        if not c:
            continue
        if c['status'] == 'not_assessed':
            parts.append('%s: not assessed (%s)' % (md(c['title']), md(c.get('reason') or '')))
        else:
            parts.append('%s: %g/%g, %s - %s' % (md(c['title']), c['points'], c['points_max'], _STATUS[c['status']],
                                                 md(c['summary'])))
    return '\n'.join('- ' + p for p in parts) if parts else None


def _suggestions(scorecard):
    metrics = scorecard['metrics']
    crit = dict((c['id'], c) for c in scorecard['criteria'])
    out = {}
    if metrics['time_to_detect']['seconds'] is None and scorecard['drill'].get('scenario'):
        out['monitoring'] = 'The alert never fired: check the alert rule for this fault.'
        out['tool enhancements'] = 'The alert never fired: check the alert rule for this fault.'
    elif metrics['time_to_detect'].get('within_target') is False:
        out['monitoring'] = 'The alert fired later than its target: tune the alert rule.'
        out['tool enhancements'] = out['monitoring']
    fix = scorecard.get('fix_assessment') or {}
    if fix.get('level') in ('symptom_only', 'symptom_only_recovered'):
        out['training needs'] = 'The fix hid the symptom only: train root-cause analysis for this fault.'
        out['error handling'] = out['training needs']
    comm = crit.get('process.communication')
    if comm and comm['status'] == 'fail':
        out['process updates'] = 'Communication fell short: agree who posts status updates and how often.'
    docs = [c for cid, c in crit.items() if cid.startswith('documentation.') and c['status'] == 'fail']
    if docs:
        out['documentation updates'] = 'Missing documentation: %s.' % ', '.join(md(c['title']) for c in docs)
        out['documentation'] = out['documentation updates']
    return out
