# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge trainee changes against the fault catalog entry (contract section 4).

``accepted_fixes`` are changes that remove the cause, ``symptom_only_fixes``
changes that only hide the symptom. A rule is either

* ``{action: rollout_undo, name: backend-api}`` - a derived action
  (``rollout_restart``, ``rollout_undo``, ``scale``, ``exec``, ``cache_flush``,
  ``logs`` ...), or
* ``{verb: patch, resource: deployments, name: backend-api}`` - a plain
  request. Verb rules do not match derived actions: a ``kubectl rollout
  restart`` is a patch of the deployment too, but it changes nothing about the
  cause, so only an ``action: rollout_restart`` rule matches it. A verb rule
  without ``subresource`` matches only requests without one.

Optional filters on both: ``name`` (pods also match by their deployment's
name), ``namespace``, ``subresource``. The placeholders ``{target}``,
``{target_kind}`` and ``{target_ref}`` are filled from the drill's target
(the ``target`` of the fault_injected event, else the entry's ``target``). When a change matches both lists, the
more specific rule (action over verb) wins; on a tie the symptom-only
reading wins, so an ambiguous catalog never gives full credit.
"""

from __future__ import annotations

from .audit import workload_of_pod
from .errors import ScoringInputError

DERIVED_ACTIONS = frozenset(('rollout_restart', 'rollout_undo', 'scale', 'cache_flush'))
_RULE_KEYS = frozenset(('action', 'verb', 'resource', 'subresource', 'name', 'namespace'))


def _check_rules(rules, path, field):
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise ScoringInputError(path, field, 'must be a list of rules')
    out = []
    for index, rule in enumerate(rules):
        where = '%s[%d]' % (field, index)
        if not isinstance(rule, dict):
            raise ScoringInputError(path, where, 'each rule must be a mapping')
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            raise ScoringInputError(path, '%s.%s' % (where, sorted(unknown)[0]),
                                    'unknown key; allowed: %s' % ', '.join(sorted(_RULE_KEYS)))
        if not rule.get('action') and not (rule.get('verb') or rule.get('resource')):
            raise ScoringInputError(path, where, 'needs action, or verb and/or resource')
        for key, value in rule.items():
            if not isinstance(value, str):
                raise ScoringInputError(path, '%s.%s' % (where, key), 'must be a string')
        out.append(dict(rule))
    return out


def target_of(entry, override=None):
    """(kind, name) of the fault's target: the drill's override, else the entry's default.

    ``override`` may be ``"Kind/name"``, ``"name"`` or ``{kind, name}`` (the
    ``target`` of the fault_injected timeline event).
    """
    target = entry.get('target') if isinstance(entry.get('target'), dict) else {}
    kind, name = target.get('kind'), target.get('name')
    if isinstance(override, dict):
        kind, name = override.get('kind') or kind, override.get('name') or name
    elif isinstance(override, str) and override:
        if '/' in override:
            kind, name = override.split('/', 1)
        else:
            name = override
    return kind, name


def _substitute(rules, kind, name):
    """Fill the catalog's placeholders {target}, {target_kind}, {target_ref}."""
    values = {'{target}': name, '{target_kind}': kind,
              '{target_ref}': '%s/%s' % (kind, name) if kind and name else name}
    out = []
    for rule in rules:
        new = {}
        for key, value in rule.items():
            for placeholder, real in values.items():
                if real and placeholder in value:
                    value = value.replace(placeholder, real)
            new[key] = value
        out.append(new)
    return out


class FixCatalog(object):
    """The parts of one catalog entry that judge fixes."""

    def __init__(self, entry, path='<catalog entry>', target=None):
        if not isinstance(entry, dict):
            raise ScoringInputError(path, '(top level)', 'catalog entry must be a mapping')
        self.path = path
        self.entry = entry
        kind, name = target_of(entry, target)
        self.target = '%s/%s' % (kind, name) if kind else name
        self.accepted = _substitute(_check_rules(entry.get('accepted_fixes'), path, 'accepted_fixes'), kind, name)
        self.symptom_only = _substitute(_check_rules(entry.get('symptom_only_fixes'), path, 'symptom_only_fixes'),
                                        kind, name)
        if not self.accepted:
            raise ScoringInputError(path, 'accepted_fixes', 'the catalog entry names no accepted fix')
        self.root_cause = entry.get('root_cause')
        self.key = '/'.join(str(entry.get(k)) for k in ('scenario', 'variant', 'name') if entry.get(k))

    @staticmethod
    def _matches(rule, item):
        det = item.details
        if rule.get('action'):
            if rule['action'] not in item.names:
                return 0
            specificity = 2
        else:
            if item.action in DERIVED_ACTIONS:
                return 0
            if rule.get('verb') and det.get('verb') != rule['verb']:
                return 0
            if rule.get('resource') and det.get('resource') != rule['resource']:
                return 0
            if (rule.get('subresource') or None) != (det.get('subresource') or None):
                return 0
            specificity = 1
        if rule.get('subresource') and rule.get('action') and det.get('subresource') != rule['subresource']:
            return 0
        if rule.get('namespace') and det.get('namespace') != rule['namespace']:
            return 0
        if rule.get('name'):
            name = det.get('name')
            wanted = rule['name']
            if name != wanted and not (det.get('resource') == 'pods' and (
                    workload_of_pod(name) == wanted or (name or '').startswith(wanted + '-'))):
                return 0
        return specificity

    def judge(self, item):
        """('cause' | 'symptom' | None, rule) for one trainee change."""
        if item.source != 'audit' or not item.ok or item.details.get('dry_run'):
            return None, None
        best_cause = max(((self._matches(r, item), r) for r in self.accepted), key=lambda p: p[0], default=(0, None))
        best_symptom = max(((self._matches(r, item), r) for r in self.symptom_only), key=lambda p: p[0], default=(0, None))
        if best_cause[0] == 0 and best_symptom[0] == 0:
            return None, None
        if best_symptom[0] >= best_cause[0]:
            return 'symptom', best_symptom[1]
        return 'cause', best_cause[1]


def describe_rule(rule):
    if not rule:
        return ''
    return ', '.join('%s=%s' % (k, rule[k]) for k in ('action', 'verb', 'resource', 'subresource', 'name', 'namespace') if rule.get(k))
