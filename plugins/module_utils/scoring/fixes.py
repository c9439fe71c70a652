# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge the team's fix: from the cluster whether the cause is gone, from the audit log
who changed what and when, and by the catalog's rules what kind of change it was.

Cause (``FixJudgement``): the engine reads every object the fault touched just before the
rollback (timeline event ``fix_state``, plugins/module_utils/fix_state.py). The catalog's
``cause_parts`` say what must be gone, all of them (default: every object the fault
changed, on every path it changed):

* ``{object: Kind/name, paths: [glob, ...]}``: no judged path of the object still has the
  fault's value (``reverted`` or ``changed`` to another value); for an object the fault
  left alone, the team changed it;
* ``{action: cache_flush}``: a trainee request of that derived action (the audit log is
  the only witness of a cache flush);
* ``{request: {verb: create, resource: persistentvolumeclaims, name: ...}}``: a trainee
  request the audit log shows succeeded (an object the fault did not touch, created);
* ``{any_of: [part, ...]}``: one of them.

The verb rules below never decide that the cause is fixed; they tell a change that only
hides the symptom (a restart, a scale) from a cosmetic one (an annotation).

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

import re

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


def fill_placeholders(value, mapping):
    """``value`` (a string, or lists and mappings of them) with each placeholder of
    ``mapping`` (``{target}``: name, ...) replaced; a string that is one placeholder
    becomes its value. The catalog fills its entries with it too: one owner."""
    if isinstance(value, str):
        for token, replacement in mapping.items():
            if token in value:
                if value == token:
                    return replacement
                value = value.replace(token, "" if replacement is None else str(replacement))
        return value
    if isinstance(value, list):
        return [fill_placeholders(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: fill_placeholders(v, mapping) for k, v in value.items()}
    return value


def _substitute(value, kind, name):
    """Fill the catalog's placeholders {target}, {target_kind}, {target_ref} in a rule or
    cause part (strings, lists and mappings of them); unknown parts stay as written."""
    values = {'{target_ref}': '%s/%s' % (kind, name) if kind and name else name,
              '{target_kind}': kind, '{target}': name}
    return fill_placeholders(value, dict((k, v) for k, v in values.items() if v))


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


RESOURCE_OF_KIND = {
    'Deployment': 'deployments', 'StatefulSet': 'statefulsets', 'DaemonSet': 'daemonsets',
    'Service': 'services', 'ConfigMap': 'configmaps', 'Secret': 'secrets',
    'PersistentVolumeClaim': 'persistentvolumeclaims', 'NetworkPolicy': 'networkpolicies',
}
_PART_KEYS = frozenset(('object', 'paths', 'action', 'request', 'any_of'))
_PART_TYPES = ('object', 'action', 'request', 'any_of')


def _glob(pattern):
    """A path glob: ``*`` matches anything (also dots and brackets), the rest literally."""
    return re.compile('^' + '.*'.join(re.escape(p) for p in pattern.split('*')) + '$')


def check_parts(parts, path='<catalog entry>', field='cause_parts'):
    """Validate ``cause_parts``; ScoringInputError names the bad field."""
    if not isinstance(parts, list) or not parts:
        raise ScoringInputError(path, field, 'must be a non-empty list of parts')
    for index, part in enumerate(parts):
        where = '%s[%d]' % (field, index)
        if not isinstance(part, dict) or not part:
            raise ScoringInputError(path, where, 'each part must be a mapping')
        unknown = set(part) - _PART_KEYS
        if unknown:
            raise ScoringInputError(path, '%s.%s' % (where, sorted(unknown)[0]),
                                    'unknown key; allowed: %s' % ', '.join(sorted(_PART_KEYS)))
        kinds = [k for k in _PART_TYPES if k in part]
        if len(kinds) != 1:
            raise ScoringInputError(path, where, 'needs exactly one of %s' % ', '.join(_PART_TYPES))
        if 'request' in part:
            _check_rules([part['request']], path, where + '.request')
        if 'any_of' in part:
            check_parts(part['any_of'], path, where + '.any_of')
        elif 'object' in part and (not isinstance(part['object'], str)
                                   or ('/' not in part['object'] and part['object'] != '{target_ref}')):
            raise ScoringInputError(path, where + '.object', 'must be Kind/name or {target_ref}')
        elif 'action' in part and part['action'] not in DERIVED_ACTIONS:
            raise ScoringInputError(path, where + '.action', 'allowed: %s' % ', '.join(sorted(DERIVED_ACTIONS)))
        if 'paths' in part and not (isinstance(part['paths'], list) and part['paths']
                                    and all(isinstance(p, str) and p for p in part['paths'])):
            raise ScoringInputError(path, where + '.paths', 'must be a non-empty list of path globs')
    return parts


def is_cosmetic(item):
    """A write whose body (the audit log's Request level) changed metadata only
    (``kubectl annotate``, ``kubectl label``): it cannot have fixed anything."""
    changed = item.details.get('changed')
    return bool(changed) and all(str(path).startswith(('metadata.', '/metadata')) for path in changed)


class FixJudgement(object):
    """Whether the fault's cause is gone (cluster), who removed it (audit log), and the
    drill's fix level. ``items`` are the trainees' audit items of the response window."""

    def __init__(self, entry, fix_state, items, has_audit, target=None, path='<catalog entry>'):
        kind, name = target_of(entry, target)
        self.objects = dict((o.get('ref'), o) for o in (fix_state or {}).get('objects') or [])
        self.has_state = fix_state is not None
        self.has_audit = has_audit
        self.items = items
        if entry.get('cause_parts'):
            parts = _substitute(check_parts(entry['cause_parts'], path), kind, name)
        else:
            # Default: every object the fault changed, on every path it changed.
            parts = [{'object': ref} for ref, obj in sorted(self.objects.items()) if obj.get('faulted')]
        self.parts = [self._judge(part) for part in parts]

    def _writes(self, ref):
        kind, name = ref.split('/', 1)
        resource = RESOURCE_OF_KIND.get(kind, kind.lower() + 's')
        # A restart rewrites only an annotation of the pod template: no fix of a cause either.
        return [i for i in self.items if i.mutating and i.details.get('resource') == resource
                and i.details.get('name') == name and not is_cosmetic(i) and i.action != 'rollout_restart']

    def _judge(self, part):
        if 'any_of' in part:
            subs = [self._judge(p) for p in part['any_of']]
            fixed = [s for s in subs if s['fixed']]
            known = [s for s in subs if s['fixed'] is not None]
            value = True if fixed else (None if len(known) < len(subs) else False)
            by = fixed[0]['by'] if fixed else []
            return {'part': 'any of: ' + ', '.join(s['part'] for s in subs), 'fixed': value, 'by': by,
                    'detail': '; '.join('%s: %s' % (s['part'], s['detail']) for s in subs)}
        if 'action' in part or 'request' in part:
            rule = {'action': part['action']} if 'action' in part else part['request']
            what = describe_rule(rule)
            if not self.has_audit:
                return {'part': what, 'fixed': None, 'by': [], 'detail': 'needs the audit log'}
            done = [i for i in self.items if i.ok and FixCatalog._matches(rule, i)]  # pylint: disable=protected-access
            return {'part': what, 'fixed': bool(done), 'by': done,
                    'detail': 'done by %s' % done[0].actor if done else 'not done'}
        ref = part['object']
        obj = self.objects.get(ref)
        if not self.has_state:
            return {'part': ref, 'fixed': None, 'by': [], 'detail': 'needs the fix state read from the cluster'}
        if obj is None:
            return {'part': ref, 'fixed': False, 'by': [], 'detail': 'not among the objects the fault touched'}
        paths = obj.get('paths') or []
        if part.get('paths'):
            globs = [_glob(p) for p in part['paths']]
            paths = [p for p in paths if any(g.match(p.get('path') or '') for g in globs)]
        if not obj.get('faulted'):
            # An object the fault left alone: fixed when the team changed what it does.
            fixed = bool(paths)
        else:
            fixed = bool(paths) and not any(p.get('verdict') == 'in_place' for p in paths)
        return {'part': ref, 'fixed': fixed, 'by': self._writes(ref) if fixed else [],
                'detail': '%s (%s)' % ('fault change gone' if fixed else 'fault change still in place',
                                       ', '.join('%s %s' % (p.get('path'), p.get('verdict')) for p in paths[:4])
                                       or 'no path')}

    @property
    def cause_fixed(self):
        """True, False, or None when the evidence to say is missing."""
        if not self.parts:
            return None
        values = [p['fixed'] for p in self.parts]
        if False in values:
            return False
        return None if None in values else True

    def cause_items(self):
        out = []
        for part in self.parts:
            for item in part['by']:
                if item not in out:
                    out.append(item)
        return sorted(out, key=lambda i: i.ts)
