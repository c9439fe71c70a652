# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a scorecard's reports into the drill's artifacts dir.

scorecard.json      the scorecard (schemas/scorecard.schema.json)
junit.xml           one testcase per criterion (failed below the pass mark,
                    skipped when not assessed) + one suite of expected actions
incident-record.md  the incident timeline filled in
postmortem.md       post-mortem draft with the seeds' follow-up sections
scorecard.html      self-contained page for trainers (inline CSS and SVG)
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET

from .html_report import render_html
from .markdown import render_incident_record, render_postmortem
from .timeutil import format_duration

REPORT_FILES = {
    'json': 'scorecard.json',
    'junit': 'junit.xml',
    'incident_record': 'incident-record.md',
    'postmortem': 'postmortem.md',
    'html': 'scorecard.html',
}


def render_json(scorecard):
    return json.dumps(scorecard, indent=2, sort_keys=False, ensure_ascii=False) + '\n'


def _evidence_lines(entries):
    lines = []
    for cite in entries:
        who = ' [%s]' % cite['actor'] if cite.get('actor') else ''
        lines.append('%s %s%s: %s' % (cite.get('ts') or '-', cite['source'], who, cite['summary']))
    return '\n'.join(lines)


def render_junit(scorecard):
    drill = scorecard['drill']
    totals = scorecard['totals']
    name = 'opsdrill.scorecard.%s' % (drill.get('drill_id') or 'drill')
    suites = ET.Element('testsuites', name='opsdrill')
    criteria = scorecard['criteria']
    suite = ET.SubElement(suites, 'testsuite', name=name, tests=str(len(criteria)),
                          failures=str(totals['failed']), skipped=str(totals['not_assessed']), errors='0',
                          timestamp=scorecard['generated_at'] or '')
    props = ET.SubElement(suite, 'properties')
    for key in ('drill_id', 'scenario', 'variant', 'fault', 'namespace'):
        if drill.get(key):
            ET.SubElement(props, 'property', name=key, value=str(drill[key]))
    for key, metric in scorecard['metrics'].items():
        ET.SubElement(props, 'property', name='%s_s' % key,
                      value='' if metric['seconds'] is None else str(metric['seconds']))
    ET.SubElement(props, 'property', name='percent', value='' if totals['percent'] is None else str(totals['percent']))
    ET.SubElement(props, 'property', name='result', value=totals['result'])
    integrity = scorecard.get('integrity')  # absent before scorecard schema 1.1
    if integrity is not None:
        ET.SubElement(props, 'property', name='trainer_review_required',
                      value='true' if integrity['review_required'] else 'false')
    for crit in criteria:
        case = ET.SubElement(suite, 'testcase', classname='opsdrill.%s' % crit['group'],
                             name='%s: %s' % (crit['id'], crit['title']), time='0')
        case.set('assertions', '1')
        if crit['status'] == 'not_assessed':
            ET.SubElement(case, 'skipped', message=crit.get('reason') or 'not assessed')
        elif crit['status'] == 'fail':
            failure = ET.SubElement(case, 'failure', type='below_threshold',
                                    message='%g/%g points, below the pass mark of %g' % (
                                        crit['points'], crit['points_max'], crit['pass_points']))
            failure.text = crit['summary']
        out = ['%s/%s points - %s' % (crit['points'] if crit['points'] is not None else '-', crit['points_max'],
                                      crit['summary'] or crit.get('reason') or '')]
        if crit['evidence']:
            out.append(_evidence_lines(crit['evidence']))
        ET.SubElement(case, 'system-out').text = '\n'.join(out)
    checklist = scorecard.get('checklist')
    if checklist:
        items = [(p, i) for p in checklist['phases'] for i in p['items']]
        cl = ET.SubElement(suites, 'testsuite', name='opsdrill.expected_actions.%s' % (drill.get('scenario') or ''),
                           tests=str(len(items)),
                           failures=str(len([1 for dummy, i in items if i['status'] == 'missed'])),
                           skipped=str(len([1 for dummy, i in items if i['status'] == 'not_assessed'])), errors='0')
        for phase, item in items:
            case = ET.SubElement(cl, 'testcase', classname='opsdrill.expected_actions.%s' % phase['id'],
                                 name='%s: %s' % (item['id'], item['title']), time='0')
            if item['status'] == 'not_assessed':
                ET.SubElement(case, 'skipped', message='not assessed: %s' % (item.get('note') or ''))
            elif item['status'] == 'missed':
                ET.SubElement(case, 'failure', type='missed', message=item.get('note') or 'no evidence found')
            if item['evidence']:
                ET.SubElement(case, 'system-out').text = _evidence_lines(item['evidence'])
    suites.set('tests', str(sum(int(s.get('tests')) for s in suites)))
    suites.set('failures', str(sum(int(s.get('failures')) for s in suites)))
    suites.set('skipped', str(sum(int(s.get('skipped')) for s in suites)))
    _indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding='unicode') + '\n'


def _indent(elem, level=0):
    pad = '\n' + '  ' * level
    if len(elem):
        if not elem.text or not elem.text.strip():
            elem.text = pad + '  '
        for child in elem:
            _indent(child, level + 1)
        if not child.tail or not child.tail.strip():
            child.tail = pad
    if level and (not elem.tail or not elem.tail.strip()):
        elem.tail = pad


def render_all(scorecard, rubric=None):
    followup = {}
    if rubric is not None and scorecard['drill'].get('scenario'):
        followup = rubric.followup.get(scorecard['drill']['scenario']) or {}
    elif rubric is not None and rubric.followup:
        followup = next(iter(rubric.followup.values()))
    return {
        'json': render_json(scorecard),
        'junit': render_junit(scorecard),
        'incident_record': render_incident_record(scorecard),
        'postmortem': render_postmortem(scorecard, followup),
        'html': render_html(scorecard),
    }


def _write_if_changed(path, content):
    if os.path.isfile(path):
        with open(path, 'r', encoding='utf-8') as handle:
            if handle.read() == content:
                return False
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def write_reports(scorecard, artifacts_dir, rubric=None, formats=None, check_mode=False):
    """Write the reports; returns ({format: path}, changed)."""
    rendered = render_all(scorecard, rubric)
    paths, changed = {}, False
    if not check_mode and not os.path.isdir(artifacts_dir):
        os.makedirs(artifacts_dir)
    for key, filename in REPORT_FILES.items():
        if formats and key not in formats:
            continue
        path = os.path.join(artifacts_dir, filename)
        paths[key] = path
        if check_mode:
            if not os.path.isfile(path):
                changed = True
            else:
                with open(path, 'r', encoding='utf-8') as handle:
                    changed = changed or handle.read() != rendered[key]
        else:
            changed = _write_if_changed(path, rendered[key]) or changed
    return paths, changed


def headline(scorecard):
    """One line: result, points, timings."""
    totals = scorecard['totals']
    metrics = scorecard['metrics']
    pct = '-' if totals['percent'] is None else '%g%%' % totals['percent']
    rec = metrics['time_to_recover']
    return '%s %g/%g (%s) detect %s ack %s recover %s%s' % (
        totals['result'].upper(), totals['points'], totals['points_assessed_max'], pct,
        format_duration(metrics['time_to_detect']['seconds']), format_duration(metrics['time_to_acknowledge']['seconds']),
        format_duration(rec['seconds']), ' (%s)' % rec['recovered_by'] if rec.get('recovered_by') else '')
