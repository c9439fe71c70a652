# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes audit log evidence (audit.k8s.io/v1 Event, one JSON object a line).

Only ``stage: ResponseComplete`` events of trainee users are kept. Each is
classified into an *action* named after the seed scenarios' steps and the
fault catalog's vocabulary (docs/contracts.md section 4):

========================  ===================================================
action                    audit event
========================  ===================================================
list_pods                 list pods (core)              "check service status"
get_pod                   get pods/<name>               (kubectl get/describe pod)
check_dependencies        list pods with a dependent-tier label selector
check_endpoints           get/list services, endpoints, endpointslices
get_events                list/get events               "view recent events"
logs                      get pods/log (``previous=true`` = ``--previous``)
view_metrics              metrics.k8s.io, a services/pods proxy to /metrics, or a
                          query of Prometheus or Alertmanager through their proxy
test_endpoint             a services/pods proxy to any other path
port_forward              pods/portforward
inspect_deployment        get/list deployments
inspect_revisions         get/list replicasets or controllerrevisions
inspect_config            get/list configmaps or secrets (not the drill state)
read_drill_state          get - or watch/list narrowed to the name - of the
                          drill state (ConfigMap or Secret opsdrill-drill-state*),
                          the drill's answer key. Earns nothing; listed for the
                          trainer (integrity.py). A list of all configmaps or
                          secrets stays inspect_config: kubectl's table and the
                          data come from the same request
rollout_restart           patch of deployments setting the pod template
                          annotation kubectl.kubernetes.io/restartedAt
rollout_undo              patch of deployments replacing /spec/template
                          (kubectl rollout undo's JSON patch), or at Metadata
                          level a patch right after listing replicasets
scale                     deployments/scale (or a patch of only spec.replicas)
edit_deployment           other create/update/patch of deployments
edit_configmap            create/update/patch of configmaps
edit_secret               create/update/patch of secrets
edit_service              create/update/patch of services
delete_pod                delete pods
cache_flush               pods/exec running redis-cli FLUSHDB/FLUSHALL (also ``exec``)
exec                      any other pods/exec
check_access              kubectl auth can-i / whoami (self/subject access
                          and token reviews: a create, yet no change)
========================  ===================================================
"""

from __future__ import annotations

import json
import os
import re

from urllib.parse import urlsplit, parse_qs, unquote

from .errors import ScoringInputError
from .evidence import EvidenceItem, EvidenceSource
from .timeutil import parse_ts

DEFAULT_TRAINEE_GROUPS = ('opsdrill:trainees',)

# Label selector terms that mean "looking at a dependent or upstream tier".
DEFAULT_DEPENDENCY_SELECTORS = (
    'tier=frontend', 'tier=worker', 'tier=data', 'tier=external',
    'app=frontend', 'app=worker', 'app=postgres', 'app=redis', 'app=rank-api',
)

CATEGORIES = {
    'list_pods': 'status', 'get_pod': 'status',
    'check_dependencies': 'dependencies', 'check_endpoints': 'dependencies',
    'get_events': 'events',
    'logs': 'logs',
    'view_metrics': 'metrics',
    'test_endpoint': 'endpoints', 'port_forward': 'endpoints',
    'inspect_deployment': 'changes', 'inspect_revisions': 'changes', 'inspect_config': 'changes',
    'rollout_restart': 'recovery', 'rollout_undo': 'recovery', 'scale': 'recovery',
    'delete_pod': 'recovery', 'delete_deployment': 'recovery',
    'edit_deployment': 'config', 'edit_configmap': 'config', 'edit_secret': 'config',
    'edit_service': 'config',
    'cache_flush': 'exec', 'exec': 'exec',
    'check_access': 'other', 'inspect_other': 'other', 'change_other': 'other',
    'silence_alert': 'metrics',
    # read_drill_state has none: reading the answer key is not the use of a tool.
}

# The drill engine keeps its state - scenario, variant, fault and the objects
# before the fault - in the drill namespace: ConfigMap opsdrill-drill-state and a
# Secret of the same name (plugins/module_utils/runtime/snapshot.py STATE_CONFIGMAP; the
# name is an option there, hence a prefix). This package runs without the rest
# of the collection (AnsiballZ), so it keeps a copy; a unit test keeps them equal.
DRILL_STATE_PREFIX = 'opsdrill-drill-state'
# The drill's own objects (state, locks, dead-man's switch) live in the control
# namespace opsdrill-ctl-<drill namespace> (snapshot.py control_namespace; copy, a unit
# test keeps them equal). Trainees hold no role there: any request of theirs is an
# attempt on the drill, flagged and never credited.
CONTROL_PREFIX = 'opsdrill-ctl-'
# Reading it is flagged for the trainer, never credited: no rubric match, no
# first action, no responder (matching.py, metrics.py, scorer.py).
UNCREDITED_ACTIONS = frozenset(('read_drill_state', 'tamper_monitoring', 'tamper_selector'))
# What the standalone monitoring keeps in a drill namespace: the headless Services it finds
# each pod by (roles/monitoring, monitoring_scrape_apps; copy, a unit test keeps them equal).
# A trainee's write to them is no investigation and no fix, but tampering with the evidence.
# Prometheus, Alertmanager and the alert rules live in the control namespace.
MONITORING_NAMES = frozenset(('rank-api-pods', 'backend-api-pods', 'api-gateway-pods', 'frontend-pods',
                              'worker-pods', 'traffic-pods'))
# Services of the control namespace that trainees may query through the API server's
# proxy, as on-call engineers do (monitoring_viewer_group).
MONITORING_SERVICES = frozenset(('prometheus', 'alertmanager'))
MONITORING_RESOURCES = frozenset(('configmaps', 'deployments', 'services', 'serviceaccounts', 'roles',
                                  'rolebindings', 'pods'))
# The label the steady state selects the stack's workloads by (drill_engine_label_selector's
# default): a workload whose value changes drops out of the checks, which looks like a recovery.
SELECTOR_LABEL = 'app.kubernetes.io/part-of'
SELECTOR_VALUE = 'opsdrill-seo-tool'


def drops_selector_label(request_object, key=SELECTOR_LABEL, value=SELECTOR_VALUE):
    """Does a write take ``key=value`` off a workload or its pod template? A merge or
    strategic patch (dict: the key set to another value or null), a full object (update:
    the key missing or different), or a JSON patch (list: remove, or another value)."""
    escaped = key.replace('~', '~0').replace('/', '~1')
    if isinstance(request_object, list):
        return any(isinstance(op, dict) and str(op.get('path', '')).endswith('/labels/' + escaped)
                   and (op.get('op') in ('remove', 'move') or op.get('value') != value) for op in request_object)
    if not isinstance(request_object, dict):
        return False
    full = 'kind' in request_object and 'spec' in request_object and 'apiVersion' in request_object
    for meta in (request_object.get('metadata'),
                 (((request_object.get('spec') or {}).get('template') or {}).get('metadata'))):
        if not isinstance(meta, dict) or 'labels' not in meta:
            continue
        labels = meta.get('labels')
        if labels is None:
            return True
        if (key in labels or full) and labels.get(key) != value:
            return True
    return False


# Reviews are POSTed (verb create) but only ask the API server a question.
ACCESS_REVIEW_GROUPS = frozenset(('authorization.k8s.io', 'authentication.k8s.io'))

MUTATING_VERBS = frozenset(('create', 'update', 'patch', 'delete', 'deletecollection'))
RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'
_FLUSH = re.compile(r'redis-cli\b.*\bflush(db|all)\b', re.IGNORECASE | re.DOTALL)
# Pods made by a Deployment: <deployment>-<replicaset hash>-<5 chars>
_POD_OF_DEPLOYMENT = re.compile(r'^(?P<workload>.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$')
# Seconds within which kubectl's preparatory reads belong to the same command.
_SAME_COMMAND_S = 3.0


def proxied_service(name):
    """The Service a services/proxy request names: 'prometheus' for 'prometheus:9090',
    'http:prometheus:9090' or 'prometheus'."""
    parts = (name or '').split(':')
    if len(parts) == 3 or (len(parts) == 2 and parts[0] in ('http', 'https')):
        return parts[1]
    return parts[0]


def names_drill_state(verb, resource, name):
    """Does the request read the drill state by its name?

    get, and watch or list narrowed to the name (``fieldSelector=metadata.name=``,
    which the API server records as the objectRef name): the request asks for
    that object. A list of all configmaps/secrets (kubectl's table) does not.
    """
    return (resource in ('configmaps', 'secrets') and verb in ('get', 'watch', 'list')
            and isinstance(name, str) and name.startswith(DRILL_STATE_PREFIX))


def workload_of_pod(name):
    """``backend-api-5d8f7c9b8-xk2lp`` -> ``backend-api``."""
    if not name:
        return None
    match = _POD_OF_DEPLOYMENT.match(name)
    return match.group('workload') if match else name


def parse_selector(text):
    """Label selector -> set of (key, value) for ``=``, ``==`` and ``in`` terms."""
    pairs = set()
    if not text:
        return pairs
    for key, values in re.findall(r'([\w./-]+)\s+in\s*\(([^)]*)\)', text):
        for value in values.split(','):
            if value.strip():
                pairs.add((key.strip(), value.strip()))
    stripped = re.sub(r'[\w./-]+\s+(not)?in\s*\([^)]*\)', '', text)
    for term in stripped.split(','):
        term = term.strip()
        if '!=' in term:
            continue
        if '==' in term:
            key, value = term.split('==', 1)
        elif '=' in term:
            key, value = term.split('=', 1)
        else:
            continue
        pairs.add((key.strip(), value.strip()))
    return pairs


def _leaf_paths(obj, prefix=''):
    """Paths changed by a merge patch; containers are named by their name."""
    paths = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.startswith('$'):
                continue
            sub = '%s.%s' % (prefix, key) if prefix else key
            if isinstance(value, (dict, list)) and value:
                paths.extend(_leaf_paths(value, sub))
            else:
                paths.append(sub)
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            tag = value.get('name') if isinstance(value, dict) and isinstance(value.get('name'), str) else index
            sub = '%s[%s]' % (prefix, tag)
            if isinstance(value, dict):
                rest = dict((k, v) for k, v in value.items() if k != 'name')
                paths.extend(_leaf_paths(rest, sub) if rest else [sub])
            else:
                paths.append(sub)
    return paths


def _get(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


class AuditLogSource(EvidenceSource):
    """Evidence from a Kubernetes audit log.

    Give ``path`` (a file) or ``text`` (e.g. the output of
    ``audit_log_command``). ``trainees`` are usernames, ``trainee_groups``
    groups whose members count as trainees. ``namespaces`` limits namespaced
    actions to the drill's namespaces (cluster-wide lists still count).
    ``since`` / ``until`` (datetimes) limit them to the drill's time: the same
    namespace and trainees serve one drill after another, and one drill's
    scorecard must not show the previous drill's fix.
    """

    name = 'audit'

    def __init__(self, path=None, text=None, label=None, trainees=(),
                 trainee_groups=DEFAULT_TRAINEE_GROUPS, namespaces=None,
                 dependency_selectors=DEFAULT_DEPENDENCY_SELECTORS, since=None, until=None):
        self.path = path
        self._text = text
        self._label = label or path or '<audit log>'
        self.trainees = frozenset(t for t in (trainees or ()) if t)
        self.trainee_groups = frozenset(g for g in (trainee_groups or ()) if g)
        self.namespaces = frozenset(n for n in (namespaces or ()) if n) or None
        self.since = since
        self.until = until
        self.dependency_selectors = set()
        for term in dependency_selectors or ():
            self.dependency_selectors |= parse_selector(term)
        self._items = None
        self.stats = {'lines': 0, 'response_complete': 0, 'trainee_events': 0,
                      'other_namespace': 0, 'other_time': 0, 'ignored': 0, 'truncated_last_line': False}

    @property
    def available(self):
        if self._text is not None:
            return True
        return bool(self.path) and os.path.isfile(self.path)

    @property
    def label(self):
        return self._label

    @property
    def note(self):
        if not self.available:
            if self.path:
                return 'audit log %s not found' % self.path
            return 'no audit log given'
        if self._items is None:
            return None
        note = ('%(lines)d lines, %(response_complete)d ResponseComplete, '
                '%(trainee_events)d by trainees' % self.stats)
        if self.stats['other_namespace']:
            note += ', %d outside the drill namespaces' % self.stats['other_namespace']
        if self.stats['other_time']:
            note += ', %d before or after the drill' % self.stats['other_time']
        if self.stats['truncated_last_line']:
            note += ', last line incomplete (log still being written) and skipped'
        return note

    def is_trainee(self, user):
        if not isinstance(user, dict):
            return False
        username = user.get('username')
        if username in self.trainees:
            return True
        groups = user.get('groups') or ()
        if isinstance(groups, list) and self.trainee_groups.intersection(g for g in groups if isinstance(g, str)):
            return not (isinstance(username, str) and username.startswith('system:serviceaccount:')
                        and username not in self.trainees)
        return False

    # Reading ----------------------------------------------------------------
    def _lines(self):
        if self._text is not None:
            text = self._text
        else:
            with open(self.path, 'r', encoding='utf-8', errors='replace') as handle:
                text = handle.read()
        lines = text.split('\n')
        incomplete_tail = bool(lines) and lines[-1].strip() != ''
        return lines, incomplete_tail

    def collect(self):
        if self._items is None:
            self._items = self._collect()
        return list(self._items)

    def _collect(self):
        path = self._label
        lines, incomplete_tail = self._lines()
        raw = []
        last_index = len(lines) - 1
        for index, line in enumerate(lines):
            text = line.strip()
            if not text:
                continue
            number = index + 1
            self.stats['lines'] += 1
            try:
                event = json.loads(text)
            except ValueError as exc:
                if index == last_index and incomplete_tail:
                    self.stats['truncated_last_line'] = True
                    continue
                raise ScoringInputError(path, 'line %d' % number, 'not valid JSON: %s' % exc)
            if not isinstance(event, dict):
                raise ScoringInputError(path, 'line %d' % number, 'each line must be a JSON object (audit.k8s.io/v1 Event)')
            api_version = event.get('apiVersion')
            if api_version is not None and not str(api_version).startswith('audit.k8s.io/'):
                raise ScoringInputError(path, 'line %d: apiVersion' % number,
                                        'expected audit.k8s.io/v1, got %r' % (api_version,))
            stage = event.get('stage')
            if not isinstance(stage, str):
                raise ScoringInputError(path, 'line %d: stage' % number, 'missing or not a string')
            if stage != 'ResponseComplete':
                continue
            self.stats['response_complete'] += 1
            verb = event.get('verb')
            if not isinstance(verb, str) or not verb:
                raise ScoringInputError(path, 'line %d: verb' % number, 'missing or not a string')
            user = event.get('user')
            if not isinstance(user, dict) or not isinstance(user.get('username'), str):
                raise ScoringInputError(path, 'line %d: user.username' % number, 'missing or not a string')
            if not self.is_trainee(user):
                continue
            stamp = event.get('requestReceivedTimestamp') or event.get('stageTimestamp')
            field = 'requestReceivedTimestamp' if event.get('requestReceivedTimestamp') else 'stageTimestamp'
            try:
                ts = parse_ts(stamp)
            except (TypeError, ValueError) as exc:
                raise ScoringInputError(path, 'line %d: %s' % (number, field), 'not an RFC 3339 timestamp: %s' % exc)
            object_ref = event.get('objectRef')
            if object_ref is not None and not isinstance(object_ref, dict):
                raise ScoringInputError(path, 'line %d: objectRef' % number, 'must be an object')
            self.stats['trainee_events'] += 1
            if (self.since is not None and ts < self.since) or (self.until is not None and ts > self.until):
                self.stats['other_time'] += 1
                continue
            raw.append((ts, number, event))
        raw.sort(key=lambda r: (r[0], r[1]))
        items = []
        for ts, number, event in raw:
            item = self._classify(ts, number, event)
            if item is None:
                self.stats['ignored'] += 1
                continue
            items.append(item)
        self._post_pass(items)
        return items

    # Classification -----------------------------------------------------------
    def _classify(self, ts, number, event):
        verb = event['verb']
        user = event['user']['username']
        ref = event.get('objectRef') or {}
        resource = ref.get('resource')
        if not resource:
            return None  # discovery (/api, /apis, /openapi) and other non-resource URLs
        if verb == 'watch' and not names_drill_state(verb, resource, ref.get('name')):
            return None  # follows a list that is already counted
        subresource = ref.get('subresource') or None
        namespace = ref.get('namespace') or None
        name = ref.get('name') or None
        group = ref.get('apiGroup') or ''
        control = bool(namespace) and namespace.startswith(CONTROL_PREFIX) and (
            not self.namespaces or namespace[len(CONTROL_PREFIX):] in self.namespaces)
        if self.namespaces and namespace and namespace not in self.namespaces and not control:
            self.stats['other_namespace'] += 1
            return None
        uri = event.get('requestURI') or ''
        split = urlsplit(uri)
        query = parse_qs(split.query)
        code = _get(event, 'responseStatus', 'code')
        ok = code is None or (isinstance(code, int) and code < 400)
        dry_run = 'All' in query.get('dryRun', [])
        request_object = event.get('requestObject')
        details = {
            'verb': verb, 'resource': resource, 'subresource': subresource,
            'namespace': namespace, 'name': name, 'api_group': group,
            'code': code, 'level': event.get('level'), 'user_agent': event.get('userAgent'),
            'request_uri': uri, 'audit_id': event.get('auditID'),
        }
        if query.get('fieldManager'):
            details['field_manager'] = query['fieldManager'][0]
        if dry_run:
            details['dry_run'] = True
        where = '%s/%s' % (namespace, name) if namespace and name else (name or namespace or 'all namespaces')
        action, summary, aliases = None, None, ()
        mutating = verb in MUTATING_VERBS and not dry_run

        monitoring_query = (resource == 'services' and subresource == 'proxy'
                            and proxied_service(name) in MONITORING_SERVICES)
        if control and not monitoring_query and not names_drill_state(verb, resource, name):
            action = 'read_drill_state'
            summary = "%s the drill's own objects (%s %s %s)" % (
                'reached' if ok else 'tried to reach', verb, resource, where)
            mutating = False
        elif mutating and resource in MONITORING_RESOURCES and (
                name in MONITORING_NAMES or (resource == 'pods' and workload_of_pod(name) in MONITORING_NAMES)):
            action = 'tamper_monitoring'
            summary = "%s the drill's monitoring (%s %s %s)" % (
                'changed' if ok else 'tried to change', verb, resource, where)
            mutating = False
        elif mutating and resource in ('deployments', 'statefulsets', 'daemonsets') \
                and drops_selector_label(request_object):
            action = 'tamper_selector'
            summary = "%s label %s of %s %s (the steady state selects workloads by it)" % (
                'changed' if ok else 'tried to change', SELECTOR_LABEL, resource, where)
            mutating = False
        elif group in ACCESS_REVIEW_GROUPS:
            action, summary = 'check_access', 'asked the API server (%s)' % resource
            mutating = False
        elif group == 'metrics.k8s.io':
            action, summary = 'view_metrics', 'read resource metrics (%s) in %s' % (resource, where)
        elif resource == 'pods' and subresource == 'log':
            previous = query.get('previous', ['false'])[0].lower() == 'true'
            container = query.get('container', [None])[0]
            details.update(previous=previous, container=container, workload=workload_of_pod(name))
            summary = 'read logs of pod %s%s%s' % (where, ' container %s' % container if container else '',
                                                   ' (--previous)' if previous else '')
            action = 'logs'
        elif resource == 'pods' and subresource == 'exec':
            command = query.get('command', [])
            joined = ' '.join(command)
            details.update(command=command, workload=workload_of_pod(name),
                           container=query.get('container', [None])[0])
            if _FLUSH.search(joined):
                action, aliases = 'cache_flush', ('exec',)
                summary = 'exec in pod %s: %s (cache flush)' % (where, joined)
                mutating = ok
            else:
                action = 'exec'
                summary = 'exec in pod %s: %s' % (where, joined or '(interactive shell)')
                mutating = False
        elif resource == 'pods' and subresource == 'portforward':
            action, summary = 'port_forward', 'port-forward to pod %s' % where
            mutating = False
        elif resource in ('pods', 'services') and subresource == 'proxy':
            target = unquote(split.path.split('/proxy', 1)[-1]) or '/'
            details['proxy_path'] = target
            if (monitoring_query and verb == 'create' and proxied_service(name) == 'alertmanager'
                    and '/silences' in target):
                # A silence is the on-call's acknowledgement: the API server witnessed who
                # and when (the silence's own createdBy is whatever the client wrote).
                action, summary = 'silence_alert', 'created an Alertmanager silence through %s' % where
            elif 'metrics' in target or monitoring_query:
                action, summary = 'view_metrics', 'read %s through the API server proxy of %s' % (target, where)
            else:
                action, summary = 'test_endpoint', 'requested %s through the API server proxy of %s' % (target, where)
            mutating = False
        elif resource == 'pods' and subresource is None:
            if verb == 'list':
                selector = query.get('labelSelector', [''])[0]
                details['label_selector'] = selector or None
                pairs = parse_selector(selector)
                deps = sorted('%s=%s' % p for p in pairs & self.dependency_selectors)
                if deps:
                    details['tiers'] = [p.split('=', 1)[1] for p in deps]
                    action = 'check_dependencies'
                    summary = 'listed pods in %s -l %s (dependent tier)' % (namespace or 'all namespaces', selector)
                else:
                    action = 'list_pods'
                    summary = 'listed pods in %s%s' % (namespace or 'all namespaces', ' -l %s' % selector if selector else '')
            elif verb == 'get':
                details['workload'] = workload_of_pod(name)
                action, summary = 'get_pod', 'inspected pod %s' % where
            elif verb in ('delete', 'deletecollection'):
                details['workload'] = workload_of_pod(name)
                action, summary = 'delete_pod', 'deleted pod %s' % where
        elif resource == 'events':
            if verb in ('list', 'get'):
                selector = query.get('fieldSelector', [''])[0]
                if 'involvedObject' in selector or 'regarding' in selector:
                    details['describe_of'] = selector
                action = 'get_events'
                summary = 'viewed events in %s%s' % (namespace or 'all namespaces',
                                                     ' (%s)' % selector if selector else '')
        elif resource in ('services', 'endpoints', 'endpointslices') and verb in ('get', 'list'):
            action, summary = 'check_endpoints', 'inspected %s %s' % (resource, where)
        elif resource == 'deployments' and subresource == 'scale':
            if verb in ('patch', 'update'):
                replicas = _get(request_object, 'spec', 'replicas')
                details['replicas'] = replicas
                action = 'scale'
                summary = 'scaled deployment %s%s' % (where, ' to %s replicas' % replicas if replicas is not None else '')
            else:
                action, summary = 'inspect_deployment', 'read scale of deployment %s' % where
        elif resource == 'deployments' and subresource is None:
            if verb in ('get', 'list'):
                action, summary = 'inspect_deployment', 'inspected deployment %s' % where
            elif verb in ('patch', 'update', 'create'):
                action, summary, aliases = self._deployment_change(verb, where, request_object, details)
            elif verb == 'delete':
                action, summary = 'delete_deployment', 'deleted deployment %s' % where
        elif resource in ('replicasets', 'controllerrevisions') and verb in ('get', 'list'):
            action, summary = 'inspect_revisions', 'inspected %s in %s' % (resource, where)
        elif resource in ('configmaps', 'secrets'):
            kind = 'configmap' if resource == 'configmaps' else 'secret'
            if names_drill_state(verb, resource, name):
                action = 'read_drill_state'
                summary = "%s the drill's answer key (%s %s)" % ('read' if ok else 'tried to read', kind, where)
            elif verb in ('get', 'list'):
                action, summary = 'inspect_config', 'inspected %s %s' % (resource, where)
            elif verb in ('patch', 'update', 'create'):
                if isinstance(request_object, (dict, list)):
                    details['changed'] = _leaf_paths(request_object)[:20]
                action, summary = 'edit_%s' % kind, '%s %s %s' % (_past(verb), kind, where)
            elif verb == 'delete':
                action, summary = 'edit_%s' % kind, 'deleted %s %s' % (kind, where)
        elif resource == 'services' and verb in ('patch', 'update', 'create', 'delete'):
            action, summary = 'edit_service', '%s service %s' % (_past(verb), where)
        if action is None:
            if verb in MUTATING_VERBS:
                action = 'change_other'
                summary = '%s %s%s %s' % (verb, resource, '/' + subresource if subresource else '', where)
            else:
                action = 'inspect_other'
                summary = '%s %s%s %s' % (verb, resource, '/' + subresource if subresource else '', where)
        if dry_run:
            summary += ' [dry run]'
        if not ok:
            summary += ' [HTTP %s]' % code
        return EvidenceItem(
            ts, 'audit', action, summary, actor=user, ref='%s:%d' % (os.path.basename(self._label), number),
            details=details, aliases=aliases, category=CATEGORIES.get(action), ok=ok,
            mutating=bool(mutating and ok),
        )

    def _deployment_change(self, verb, where, request_object, details):
        if isinstance(request_object, list):
            ops = [op for op in request_object if isinstance(op, dict)]
            details['patch_type'] = 'json'
            details['changed'] = [str(op.get('path')) for op in ops][:20]
            if any(op.get('op') == 'replace' and op.get('path') == '/spec/template' for op in ops):
                details['evidence'] = 'JSON patch replacing /spec/template with a previous revision'
                return 'rollout_undo', 'rollout undo of deployment %s' % where, ('edit_deployment',)
            return 'edit_deployment', 'patched deployment %s (%s)' % (where, ', '.join(details['changed'][:3])), ()
        if isinstance(request_object, dict):
            annotations = _get(request_object, 'spec', 'template', 'metadata', 'annotations')
            changed = _leaf_paths(request_object)
            if verb == 'patch':
                details['changed'] = changed[:20]
            if isinstance(annotations, dict) and RESTARTED_AT in annotations and verb == 'patch':
                substantive = [p for p in changed if not p.endswith(RESTARTED_AT)]
                if not substantive:
                    details['restarted_at'] = annotations.get(RESTARTED_AT)
                    return 'rollout_restart', 'rollout restart of deployment %s' % where, ()
            if verb == 'patch' and changed == ['spec.replicas']:
                details['replicas'] = _get(request_object, 'spec', 'replicas')
                return 'scale', 'scaled deployment %s to %s replicas (patch)' % (where, details['replicas']), ('edit_deployment',)
            if verb == 'patch':
                return 'edit_deployment', 'patched deployment %s (%s)' % (where, ', '.join(changed[:3]) or 'empty patch'), ()
            return 'edit_deployment', '%s deployment %s' % (_past(verb), where), ()
        # Metadata level: no request body. kubectl rollout restart uses field
        # manager kubectl-rollout; rollout undo is recognised in the post pass.
        details['evidence'] = 'Metadata level, no requestObject'
        if details.get('field_manager') == 'kubectl-rollout' or 'rollout' in (details.get('user_agent') or ''):
            return 'rollout_restart', 'rollout restart of deployment %s (inferred from field manager)' % where, ()
        return 'edit_deployment', '%s deployment %s' % (_past(verb), where), ()

    def _post_pass(self, items):
        """Use neighbouring requests of the same kubectl command."""
        for index, item in enumerate(items):
            det = item.details
            if item.action in ('inspect_deployment', 'get_pod') and det.get('verb') == 'get':
                # kubectl rollout restart / set / exec first GET their target:
                # that read belongs to the write, it is not an investigation.
                for nxt in items[index + 1:index + 4]:
                    if (nxt.ts - item.ts).total_seconds() > 3:
                        break
                    nd = nxt.details
                    if (nxt.actor == item.actor and nd.get('name') == det.get('name')
                            and nd.get('resource') == det.get('resource')
                            and (nxt.mutating or nd.get('subresource') in ('exec', 'portforward')
                                 or nd.get('verb') in ('patch', 'update'))):
                        det['part_of'] = nxt.action
                        item.action = 'resolve_target'
                        item.category = nxt.category
                        item.summary += ' (part of %s)' % nxt.action.replace('_', ' ')
                        break
            if item.action == 'list_pods' and det.get('label_selector'):
                # kubectl logs -l: list pods with the selector, then get pods/log
                for nxt in items[index + 1:index + 8]:
                    if (nxt.ts - item.ts).total_seconds() > 3:
                        break
                    if nxt.actor == item.actor and nxt.action == 'logs':
                        det['part_of'] = 'logs'
                        item.action = 'resolve_log_pods'
                        item.category = 'logs'
                        item.summary += ' (to read their logs)'
                        break
            if (item.action in ('edit_deployment', 'rollout_restart') and det.get('verb') == 'patch'
                    and det.get('evidence') == 'Metadata level, no requestObject'):
                # kubectl rollout undo: get deployment, list replicasets, patch
                for prev in reversed(items[max(0, index - 8):index]):
                    if (item.ts - prev.ts).total_seconds() > _SAME_COMMAND_S:
                        break
                    if (prev.actor == item.actor and prev.action == 'inspect_revisions'
                            and prev.details.get('resource') == 'replicasets' and prev.details.get('verb') == 'list'):
                        item.action = 'rollout_undo'
                        item.aliases = ('edit_deployment',)
                        item.category = 'recovery'
                        item.summary = 'rollout undo of deployment %s/%s (inferred: patch right after listing replicasets)' % (
                            det.get('namespace'), det.get('name'))
                        break
        for index, item in enumerate(items):
            if item.action != 'rollout_undo':
                continue
            # kubectl rollout undo lists the replicasets to find the old template
            for prev in reversed(items[max(0, index - 8):index]):
                if (item.ts - prev.ts).total_seconds() > _SAME_COMMAND_S:
                    break
                if (prev.actor == item.actor and prev.action == 'inspect_revisions'
                        and prev.details.get('verb') == 'list'):
                    prev.details['part_of'] = 'rollout_undo'
                    prev.action = 'resolve_target'
                    prev.summary += ' (part of rollout undo)'
                    break


def _past(verb):
    return {'patch': 'patched', 'update': 'updated', 'create': 'created', 'delete': 'deleted'}.get(verb, verb)
