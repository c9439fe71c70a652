# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence items and the EvidenceSource interface.

Every observation that can earn points is an :class:`EvidenceItem`: it keeps
its timestamp, its source and a one-line summary, so a scorecard can cite it.
A source that was not given (or could not be read) is *unavailable*; criteria
that depend only on unavailable sources are reported "not assessed".
"""

from __future__ import annotations

import abc

from .timeutil import format_ts


class EvidenceItem(object):
    """One observation.

    ``source``  name of the source (``audit``, ``desk``, ``timeline``, ``trainer``)
    ``action``  what was done, in the source's vocabulary (``logs``, ``status_update`` ...)
    ``actor``   who did it (username / author) or None
    ``aliases`` further action names this item satisfies (``cache_flush`` is also ``exec``)
    ``category`` coarse tool category used for the tool-usage criterion
    ``ref``     locator in the source (``audit.log:42``)
    ``details`` source-specific fields (verb, resource, name, previous ...)
    """

    __slots__ = ('ts', 'source', 'action', 'actor', 'summary', 'ref', 'details',
                 'aliases', 'category', 'ok', 'mutating')

    def __init__(self, ts, source, action, summary, actor=None, ref=None, details=None,
                 aliases=(), category=None, ok=True, mutating=False):
        self.ts = ts
        self.source = source
        self.action = action
        self.actor = actor
        self.summary = summary
        self.ref = ref
        self.details = details or {}
        self.aliases = tuple(aliases)
        self.category = category
        self.ok = ok
        self.mutating = mutating

    @property
    def names(self):
        return (self.action,) + self.aliases

    def cite(self):
        """The citation written into scorecards."""
        out = {
            'source': self.source,
            'ts': format_ts(self.ts),
            'summary': self.summary,
            'action': self.action,
        }
        if self.actor:
            out['actor'] = self.actor
        if self.ref:
            out['ref'] = self.ref
        return out

    def __repr__(self):
        return 'EvidenceItem(%s %s %s %s)' % (self.source, format_ts(self.ts), self.actor, self.action)


class EvidenceSource(abc.ABC):
    """A provider of evidence items.

    Implementations: :class:`~.audit.AuditLogSource` (Kubernetes audit log),
    :class:`~.desk.DeskSource` (incident desk entries). A future incident desk
    service only needs ``name``, ``label``, ``available`` and ``collect()``.
    """

    #: short machine name, used in citations and ``match.source`` of rubrics
    name = 'evidence'
    #: how far its items can be trusted (TRUST_LEVELS): ``machine`` (the cluster, the
    #: audit log, Prometheus), ``witnessed`` (a service we run recorded author and time),
    #: ``self_reported`` (whatever the team wrote)
    trust = 'machine'

    @property
    @abc.abstractmethod
    def available(self):
        """True when the source was given and could be read."""

    @property
    def label(self):
        """Human description (file path or URL) for reports."""
        return self.name

    @property
    def note(self):
        """Why the source is unavailable, or extra information."""
        return None

    @abc.abstractmethod
    def collect(self):
        """Return a list of EvidenceItem, any order."""


TRUST_LEVELS = ('machine', 'witnessed', 'self_reported')

# The team's written record: the incident desk service (witnessed: it authenticated the
# author and stamped the time) and a desk file (self-reported import). Criteria that match
# desk kinds read both; the trust views keep them apart.
DESK_SOURCES = ('incident_desk', 'desk')
TEAM_SOURCES = ('audit',) + DESK_SOURCES
SOURCE_FAMILIES = {'audit': ('audit',), 'desk': DESK_SOURCES}


class EvidenceSet(object):
    """Evidence from all sources, sorted by time, plus which sources exist."""

    def __init__(self, sources=()):
        self.sources = list(sources)
        self.items = []
        self.available = set()
        self.trust = {}
        for source in self.sources:
            self.trust[source.name] = getattr(source, 'trust', 'machine')
            if source.available:
                self.available.add(source.name)
                self.items.extend(source.collect())
        self.items.sort(key=lambda item: item.ts)

    def trusted(self, levels):
        """A view with only the sources of these trust levels (the others unavailable)."""
        view = EvidenceSet()
        view.sources = [s for s in self.sources if self.trust.get(s.name) in levels]
        names = set(s.name for s in view.sources)
        view.available = set(n for n in self.available if n in names)
        view.items = [i for i in self.items if i.source in names]
        view.trust = dict((n, t) for n, t in self.trust.items() if n in names)
        return view

    def trust_of(self, source_name):
        return self.trust.get(source_name, 'machine')

    def has(self, source_name):
        return source_name in self.available

    def has_any(self, source_names):
        return any(name in self.available for name in source_names)

    def from_source(self, source_name):
        return [item for item in self.items if item.source == source_name]

    def from_sources(self, source_names):
        return [item for item in self.items if item.source in source_names]

    def describe_sources(self):
        out = []
        for source in self.sources:
            entry = {
                'name': source.name,
                'label': source.label,
                'trust': getattr(source, 'trust', 'machine'),
                'available': bool(source.available),
                'items': len([i for i in self.items if i.source == source.name]) if source.available else 0,
            }
            if source.note:
                entry['note'] = source.note
            out.append(entry)
        return out


class StaticSource(EvidenceSource):
    """A source over items already built (tests, the timeline, other tools)."""

    def __init__(self, name, items, label=None, available=True, note=None):
        self.name = name
        self._items = list(items)
        self._label = label or name
        self._available = available
        self._note = note

    @property
    def available(self):
        return self._available

    @property
    def label(self):
        return self._label

    @property
    def note(self):
        return self._note

    def collect(self):
        return list(self._items)


class MissingSource(EvidenceSource):
    """Placeholder for a source that was not configured."""

    def __init__(self, name, note):
        self.name = name
        self._note = note

    @property
    def available(self):
        return False

    @property
    def label(self):
        return self.name

    @property
    def note(self):
        return self._note

    def collect(self):
        return []
