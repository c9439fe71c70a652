# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incident desk evidence.

Until the incident desk service exists, its entries come from a JSON file
(schema: ``schemas/desk.schema.json``)::

    [{"ts": "2026-11-22T17:33:05Z", "author": "trainee-1",
      "kind": "status_update", "text": "Backend down, investigating"}]

The desk is the team's shared record, so every entry counts for the team;
``author`` is kept so the scorecard can show who wrote what.
"""

from __future__ import annotations

import json
import os

from .datafile import read_input_text
from .errors import ScoringInputError
from .evidence import EvidenceItem, EvidenceSource
from .timeutil import parse_ts

DESK_KINDS = (
    'acknowledge', 'status_update', 'team_coordination', 'user_notification',
    'management_brief', 'incident_log', 'postmortem', 'document_fix',
)

KIND_TITLES = {
    'acknowledge': 'acknowledged the alert',
    'status_update': 'status update',
    'team_coordination': 'team coordination',
    'user_notification': 'user notification',
    'management_brief': 'management brief',
    'incident_log': 'incident log entry',
    'postmortem': 'post-mortem',
    'document_fix': 'documented the fix',
}

_SUMMARY_TEXT_CHARS = 140


def entry_summary(kind, text):
    """One line for reports: the kind's title and the text, squeezed and cut short."""
    short = ' '.join(text.split())
    if len(short) > _SUMMARY_TEXT_CHARS:
        short = short[:_SUMMARY_TEXT_CHARS - 3] + '...'
    return '%s: %s' % (KIND_TITLES[kind], short) if short else KIND_TITLES[kind]


def parse_desk_entries(entries, path='<desk entries>'):
    """Validate desk entries (a list of dicts) and make EvidenceItems."""
    if isinstance(entries, dict) and isinstance(entries.get('entries'), list):
        entries = entries['entries']
    if not isinstance(entries, list):
        raise ScoringInputError(path, '(top level)', 'must be a JSON array of desk entries')
    items = []
    for index, entry in enumerate(entries):
        field = '[%d]' % index
        if not isinstance(entry, dict):
            raise ScoringInputError(path, field, 'each desk entry must be an object')
        for key in ('ts', 'author', 'kind', 'text'):
            if key not in entry:
                raise ScoringInputError(path, '%s.%s' % (field, key), 'required field missing')
        try:
            ts = parse_ts(entry['ts'])
        except (TypeError, ValueError) as exc:
            raise ScoringInputError(path, '%s.ts' % field, 'not an ISO 8601 timestamp: %s' % exc)
        author = entry['author']
        if not isinstance(author, str) or not author.strip():
            raise ScoringInputError(path, '%s.author' % field, 'must be a non-empty string')
        kind = entry['kind']
        if kind not in DESK_KINDS:
            raise ScoringInputError(path, '%s.kind' % field, 'must be one of %s, got %r' % (', '.join(DESK_KINDS), kind))
        text = entry['text']
        if not isinstance(text, str):
            raise ScoringInputError(path, '%s.text' % field, 'must be a string')
        summary = entry_summary(kind, text)
        items.append(EvidenceItem(
            ts, 'desk', kind, summary, actor=author.strip(),
            ref='%s%s' % (os.path.basename(str(path)), field),
            details={'kind': kind, 'text': text, 'empty': not text.strip()},
            category='communication',
        ))
    return items


def read_desk_file(path, label=None):
    """The EvidenceItems of a desk file (JSON, at most MAX_INPUT_FILE_BYTES)."""
    label = label or path
    text = read_input_text(path)
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise ScoringInputError(label, '(top level)', 'not valid JSON: %s' % exc)
    return parse_desk_entries(entries, label)


class DeskSource(EvidenceSource):
    """Desk entries from a JSON file or from a list given directly."""

    name = 'desk'
    # A file the team (or anyone) writes: its authors and times are claims, not evidence.
    trust = 'self_reported'

    def __init__(self, path=None, entries=None, label=None):
        self.path = path
        self._entries = entries
        self._label = label or path or '<desk entries>'
        self._items = None

    @property
    def available(self):
        if self._entries is not None:
            return True
        return bool(self.path) and os.path.isfile(self.path)

    @property
    def label(self):
        return self._label

    @property
    def note(self):
        if self.available:
            return None
        if self.path:
            return 'desk file %s not found' % self.path
        return 'no incident desk entries given'

    def collect(self):
        if self._items is None:
            entries = self._entries
            if entries is None:
                self._items = read_desk_file(self.path, self._label)
            else:
                self._items = parse_desk_entries(entries, self._label)
        return list(self._items)


class IncidentDeskSource(DeskSource):
    """Entries the incident desk service witnessed (docs/incident-desk.md): the desk
    authenticated each author with the API server and stamped each entry with its own
    clock, so they are evidence, unlike a desk file. Records as ``GET
    /api/drills/<id>/entries`` gives them (``scoring_kind`` the desk's mapping)."""

    name = 'incident_desk'
    trust = 'witnessed'

    def __init__(self, records, label=None):
        super().__init__(entries=records, label=label or '<incident desk>')

    def collect(self):
        if self._items is None:
            self._items = [item for item in (witnessed_item(r, self._label) for r in self._entries) if item]
        return list(self._items)


def postmortem_details(record):
    """Completeness of a post-mortem record: every Follow-up heading the drill offered has
    text, and action items exist, each with an owner."""
    sections = record.get('sections') or {}
    offered = (record.get('data') or {}).get('followup') or {}
    filled = {}
    for part in ('review', 'improvements'):
        given = sections.get(part) or {}
        headings = offered.get(part) or list(given)
        filled[part] = bool(headings) and all(str(given.get(h) or '').strip() for h in headings)
    items = [a for a in sections.get('action_items') or [] if isinstance(a, dict) and str(a.get('title') or '').strip()]
    return {
        'sections_complete': filled['review'] and filled['improvements'],
        'action_items': len(items),
        'action_items_owned': bool(items) and all(str(a.get('owner') or '').strip() for a in items),
    }


def witnessed_item(record, label):
    """One desk record as an EvidenceItem, or None for records that are not team entries
    (alerts, marks, the controller's own)."""
    kind = record.get('scoring_kind')
    if kind not in DESK_KINDS:
        return None
    text = str(record.get('text') or '')
    details = {'kind': kind, 'text': text, 'empty': not text.strip() and kind not in ('acknowledge', 'postmortem'),
               'desk_kind': record.get('kind'), 'record': record.get('id'), 'witnessed': True}
    for key in ('audience', 'role', 'supersedes'):
        if record.get(key):
            details[key] = record[key]
    if kind == 'postmortem':
        details.update(postmortem_details(record))
        if isinstance(record.get('sections'), dict):
            # Kept for the reports (postmortem.md shows the team's own post-mortem).
            details['sections'] = record['sections']
    if record.get('kind') == 'role' and record.get('role'):
        text = 'took the role %s' % str(record['role']).replace('_', ' ')
    summary = entry_summary(kind, text)
    return EvidenceItem(parse_ts(record['ts']), 'incident_desk', kind, summary, actor=record.get('author'),
                        ref='%s#%s' % (label, record.get('id')), details=details, category='communication')
