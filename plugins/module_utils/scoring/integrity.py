# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integrity of a drill's evidence: trainees who read the drill's answer key.

The drill engine keeps its state (scenario, variant, fault, the objects before
the fault) in the drill namespace, where trainees with ``edit`` can read it and
RBAC cannot hide it. The audit log shows who did (``read_drill_state``,
audit.py). The scorecard's ``integrity`` section lists every such request and
one finding per person and object, each also a warning.

It costs no points: a ``get`` looks the same whether kubectl printed the table
(name, data count, age) or the data, and the scorer cannot know why someone
looked. It makes ``review_required`` true; the trainer decides, with trainer
marks if points should change (docs/scoring.md, "Integrity").
"""

from __future__ import annotations

from .audit import DRILL_STATE_PREFIX, UNCREDITED_ACTIONS
from .timeutil import format_offset, seconds_between

LIMITATION = ('only requests that name the drill state count (get, or watch/list by its name): a list of all '
              'configmaps or secrets looks the same in the audit log whether kubectl printed the table or the '
              'data, and tools that show objects from their own watch cache (k9s, Lens) leave no such request')


def _kind(resource):
    """``configmaps`` -> ``configmap``; ``leases`` -> ``lease`` (a request into a control namespace)."""
    resource = resource or 'object'
    return resource[:-1] if resource.endswith('s') else resource


def _what(action, details):
    """answer_key, drill_objects (the control namespace), monitoring or selector_label."""
    if action == 'tamper_monitoring':
        return 'monitoring'
    if action == 'tamper_selector':
        return 'selector_label'
    if (details.get('resource') in ('configmaps', 'secrets')
            and str(details.get('name') or '').startswith(DRILL_STATE_PREFIX)):
        return 'answer_key'
    return 'drill_objects'


# How a finding reads, by what it touched: (done, attempted, object).
_WORDING = {
    'answer_key': ('read', 'tried to read', "the drill's answer key"),
    'drill_objects': ('reached', 'tried to reach', "the drill's own objects"),
    'monitoring': ('changed', 'tried to change', "the drill's monitoring"),
    'selector_label': ('changed', 'tried to change', 'the steady-state label of'),
}


def drill_state_reads(evidence, reference):
    """Every read of the drill state, as citations with where, how and T+ (from ``reference``)."""
    reads = []
    for item in evidence.from_source('audit'):
        if item.action not in UNCREDITED_ACTIONS:
            continue
        det = item.details
        read = item.cite()
        read.update(offset_s=seconds_between(reference, item.ts), kind=_kind(det.get('resource')),
                    namespace=det.get('namespace'), name=det.get('name') or '*', verb=det.get('verb'),
                    what=_what(item.action, det),
                    ok=bool(item.ok), code=det.get('code'))
        reads.append(read)
    return reads


def _findings(reads):
    """One finding per person and object: a watch loop or repeated gets are one thing to review."""
    findings = {}
    for read in reads:
        key = (read.get('actor'), read['kind'], read['namespace'], read['name'], read['what'])
        found = findings.get(key)
        if found is None:
            found = findings[key] = {
                'actor': read.get('actor'), 'what': read['what'], 'kind': read['kind'],
                'namespace': read['namespace'], 'name': read['name'],
                'first_at': read['ts'], 'first_offset_s': read['offset_s'], 'last_at': read['ts'],
                'last_offset_s': read['offset_s'], 'requests': 0, 'refused': 0, 'shown': False}
        found['requests'] += 1
        found['last_at'], found['last_offset_s'] = read['ts'], read['offset_s']
        if read['ok']:
            found['shown'] = True
        else:
            found['refused'] += 1
    return list(findings.values())


def integrity_section(evidence, reference):
    """The scorecard's ``integrity``: checked, review_required, findings, drill_state_reads, note.

    ``reference`` is the moment offsets count from (the injection, else the
    drill start); reads before it get a negative offset (``T-0:05``).
    """
    checked = evidence.has('audit')
    reads = drill_state_reads(evidence, reference) if checked else []
    return {
        'checked': checked,
        'review_required': bool(reads),
        'findings': _findings(reads),
        'drill_state_reads': reads,
        'note': LIMITATION if checked else 'no audit log: reads of the drill state cannot be seen',
    }


def _when(ts, offset_s):
    if offset_s is None:
        return '%s UTC' % (ts or '')[11:19]
    return format_offset(offset_s)


def describe_finding(finding):
    """One line: ``trainee-1 read the drill's answer key (configmap opsdrill-drill-state) at T+0:42``, how often."""
    done, attempted, what = _WORDING[finding.get('what') or 'answer_key']
    verb = done if finding['shown'] else attempted
    text = "%s %s %s (%s %s) at %s" % (
        finding['actor'], verb, what, finding['kind'], finding['name'] or 'all',
        _when(finding['first_at'], finding['first_offset_s']))
    if finding['requests'] > 1:
        text += ' (%d requests, the last at %s)' % (finding['requests'], _when(finding['last_at'], finding['last_offset_s']))
    if not finding['shown']:
        text += ' - refused, nothing shown' if finding.get('what') in (None, 'answer_key', 'drill_objects') \
            else ' - refused, nothing changed'
    return text


def integrity_warnings(section):
    """One warning per finding, saying that no points were taken."""
    return ['%s: trainer review required (no points deducted)' % describe_finding(f) for f in section['findings']]


def summarize_integrity(section):
    """The part of ``integrity`` for set_stats: every finding, not every request."""
    return {'checked': section['checked'], 'review_required': section['review_required'],
            'findings': [dict(f) for f in section['findings']]}
