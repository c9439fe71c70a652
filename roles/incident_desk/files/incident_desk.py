# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident desk: the team's witnessed channel during a drill, and the trainer's seat.

Standard library only; runs as ``python3 /app/incident_desk.py`` with its sibling
``k8s_rest.py`` (a copy of ``plugins/module_utils/runtime/k8s_rest.py``). Interface:
``docs/incident-desk.md``.

Layout (pure pieces first, I/O last):

- configuration      ``load_config(environ)`` -> ``Config`` (``ConfigError`` names the variable)
- records            ``SCORING_KIND``, ``drill_index(records)``, ``validate_entry(...)``,
                     ``alert_page_text(alert)``, ``timeline(drill, ...)``
- stores             ``MemoryStore`` and ``ConfigMapStore(client, namespace)``:
                     ``append(record) -> record`` (assigns ``seq``/``id``), ``records() -> list``
- reviewers          ``TokenReviewer(client)``: ``review(token) -> (username, groups) | None``
- rendering          ``render_*`` (every byte of user text through ``esc``)
- HTTP               ``Desk`` (the application), ``Handler``, ``build_server(...)``, ``main()``
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import html
import json
import math
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:  # deployed next to this file in /app; tests put plugins/module_utils on sys.path
    import k8s_rest
except ImportError:  # pragma: no cover - only when neither is available
    k8s_rest = None

SERVICE = "incident-desk"
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

MAX_BODY = 64 * 1024                  # every POST but reports
MAX_REPORT_BODY = 2 * 1024 * 1024     # POST /api/drills/<id>/reports (JSON-escaped content)
MAX_REPORT_CONTENT = 900 * 1024       # a report's content, UTF-8 bytes
MAX_STORED_RECORD = 1000 * 1000       # a ConfigMap holds at most 1 MiB of data
# every request below adds to memory (and to the store) on behalf of one authenticated user
MAX_ENTRIES_PER_AUTHOR = 300          # team entries per author per drill; marks per trainer
MAX_SESSIONS_PER_USER = 5             # a login drops the user's older sessions
MAX_SESSIONS = 2000                   # and the oldest of all beyond this

CONTROLLER_USER = "opsdrill:controller"
WEBHOOK_USER = "alertmanager"

# Team entry kinds -> the scoring kinds of plugins/module_utils/scoring/desk.py (DESK_KINDS).
# status_update is mapped by its audience: see scoring_kind().
SCORING_KIND = {
    "acknowledge": "acknowledge",
    "role": "team_coordination",
    "coordination": "team_coordination",
    "log": "incident_log",
    "fix": "document_fix",
    "postmortem": "postmortem",
    "status_update": "status_update",
}
STATUS_AUDIENCE_KIND = {
    "team": "status_update",
    "users": "user_notification",
    "management": "management_brief",
}

ROLES = ("incident_commander", "communications", "operations")
AUDIENCES = ("team", "users", "management")
TEAM_KINDS = ("acknowledge", "role", "status_update", "log", "coordination", "fix", "postmortem")
TRAINER_KINDS = ("mark",)
# fields each kind takes besides ``kind``, ``supersedes`` (and an ``author`` equal to the user)
KIND_FIELDS = {
    "acknowledge": {"text"},
    "role": {"role"},
    "status_update": {"audience", "text"},
    "log": {"text"},
    "coordination": {"text"},
    "fix": {"text"},
    "postmortem": {"sections", "text"},
    "mark": {"target", "score", "pass", "note"},
}
REQUIRED_TEXT = ("status_update", "log", "coordination", "fix")
# the window of each kind: drill states in which it is accepted
KIND_WINDOW = {kind: ("open",) for kind in TEAM_KINDS}
KIND_WINDOW["postmortem"] = ("closed",)
KIND_WINDOW["mark"] = ("open", "closed")

DEFAULT_FOLLOWUP = {
    "review": ["Response effectiveness", "Recovery time", "Communication quality",
               "Documentation completeness"],
    "improvements": ["Monitoring and alerting", "Runbooks and documentation"],
    "action_items": [],
}
MIN_ACTION_ROWS = 5

# validation patterns: used with fullmatch ("$" would let a trailing newline through)
DRILL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
REPORT_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
CONTENT_TYPE_RE = re.compile(r"[a-z]+/[a-z0-9.+-]+(; ?charset=[A-Za-z0-9_-]+)?")
RECORD_ID_RE = re.compile(r"r-[0-9]{6,}")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin: the desk's own forms carry their real Origin; nothing leaves the desk.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# a report is the engine's HTML (or any type): never scripts, forms, fetches nor framing
REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


LOG_STREAM = None   # None: sys.stdout (tests may set another stream)


def log(level, msg, **fields):
    """One JSON object per line on stdout."""
    line = {"ts": format_ts(time.time()), "level": level, "service": SERVICE, "msg": msg}
    line.update(fields)
    stream = LOG_STREAM or sys.stdout
    stream.write(json.dumps(line, default=str) + "\n")
    stream.flush()


def format_ts(epoch):
    """UTC, milliseconds: 2026-11-29T10:17:03.412Z."""
    millis = int(round(epoch * 1000))
    moment = datetime.datetime.fromtimestamp(millis // 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (millis % 1000)


def parse_time(value):
    """Epoch seconds of an RFC 3339 time (Prometheus' nanoseconds too), or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if match:
        frac = (match.group(2) or "")[:7]
        text = match.group(1) + frac + match.group(3)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def label_value(text):
    """A Kubernetes label value made of ``text`` (63 characters, alphanumeric ends)."""
    if text is None:
        return ""
    value = re.sub(r"[^A-Za-z0-9._-]", "-", str(text))[:63]
    return value.strip("._-")


# --------------------------------------------------------------------------------------
# configuration

class ConfigError(Exception):
    """A bad setting: the message names the variable, the value and what is allowed."""


class Config:
    """The desk's settings (see load_config for the env variables)."""

    def __init__(self, port=8080, namespace=None, tokens_dir="/etc/desk/tokens",
                 team_groups=("opsdrill:trainees",),
                 trainer_groups=("opsdrill:trainers", "system:masters"),
                 max_text=4000, session_ttl_s=43200):
        self.port = port
        self.namespace = namespace
        self.tokens_dir = tokens_dir
        self.team_groups = tuple(team_groups)
        self.trainer_groups = tuple(trainer_groups)
        self.max_text = max_text
        self.session_ttl_s = session_ttl_s


def _int_setting(environ, name, default, low, high):
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ConfigError("%s=%r: must be an integer from %d to %d" % (name, raw, low, high))
    return value


def _groups_setting(environ, name, default):
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return tuple(default)
    groups = tuple(g.strip() for g in raw.split(","))
    if any(not g or re.search(r"\s", g) for g in groups):
        raise ConfigError("%s=%r: must be a comma-separated list of group names "
                          "(no empty names, no spaces)" % (name, raw))
    return groups


def load_config(environ=None, need_namespace=True, sa_namespace_file=SA_NAMESPACE_FILE):
    """Config from env: DESK_PORT, DESK_NAMESPACE, DESK_TOKENS_DIR, DESK_TEAM_GROUPS,
    DESK_TRAINER_GROUPS, DESK_MAX_TEXT, DESK_SESSION_TTL_S. Raises ConfigError."""
    environ = os.environ if environ is None else environ
    port = _int_setting(environ, "DESK_PORT", 8080, 1, 65535)
    max_text = _int_setting(environ, "DESK_MAX_TEXT", 4000, 1, 60000)
    ttl = _int_setting(environ, "DESK_SESSION_TTL_S", 43200, 60, 30 * 86400)
    team = _groups_setting(environ, "DESK_TEAM_GROUPS", ("opsdrill:trainees",))
    trainers = _groups_setting(environ, "DESK_TRAINER_GROUPS",
                               ("opsdrill:trainers", "system:masters"))
    tokens_dir = (environ.get("DESK_TOKENS_DIR") or "").strip() or "/etc/desk/tokens"
    if not os.path.isdir(tokens_dir):
        raise ConfigError("DESK_TOKENS_DIR=%r: must be a directory holding the files "
                          "'controller' and 'webhook'" % tokens_dir)
    namespace = (environ.get("DESK_NAMESPACE") or "").strip()
    if not namespace and os.path.exists(sa_namespace_file):
        with open(sa_namespace_file, encoding="utf-8") as handle:
            namespace = handle.read().strip()
    if namespace and not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", namespace):
        raise ConfigError("DESK_NAMESPACE=%r: must be a Kubernetes namespace name "
                          "(lowercase letters, digits, '-', at most 63)" % namespace)
    if need_namespace and not namespace:
        raise ConfigError("DESK_NAMESPACE is unset and %s does not exist: set it to the "
                          "control namespace (a Kubernetes namespace name)" % sa_namespace_file)
    return Config(port=port, namespace=namespace or None, tokens_dir=tokens_dir,
                  team_groups=team, trainer_groups=trainers, max_text=max_text,
                  session_ttl_s=ttl)


# --------------------------------------------------------------------------------------
# records: pure functions

class HttpError(Exception):
    """A refusal: HTTP status and the message for {"error": ...}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def scoring_kind(record):
    """The scorer's kind of a team record (None for every other record)."""
    kind = record.get("kind")
    if kind == "status_update":
        return STATUS_AUDIENCE_KIND.get(record.get("audience") or "team")
    if kind in TEAM_KINDS:
        return SCORING_KIND.get(kind)
    return None


def drill_index(records):
    """{drill_id: drill} from the records, in the order the drills were opened.

    A drill: ``{"drill_id", "opened" (record), "closed", "finalized" (record or None),
    "state" ("open" | "closed" | "finalized"), "records" (all of the drill's, by seq)}``.
    """
    drills = {}
    for record in sorted(records, key=lambda r: r.get("seq", 0)):
        drill_id = record.get("drill_id")
        if drill_id is None:
            continue
        if record.get("kind") == "drill_opened" and drill_id not in drills:
            drills[drill_id] = {"drill_id": drill_id, "opened": record, "closed": None,
                                "finalized": None, "state": "open", "records": []}
        drill = drills.get(drill_id)
        if drill is None:
            continue
        drill["records"].append(record)
        if record.get("kind") == "drill_closed" and drill["closed"] is None:
            drill["closed"] = record
            drill["state"] = "closed"
        elif record.get("kind") == "drill_finalized" and drill["finalized"] is None:
            drill["finalized"] = record
            drill["state"] = "finalized"
    return drills


def drill_info(drill):
    """The opened record's settings with defaults."""
    data = dict((drill or {}).get("opened", {}).get("data") or {})
    data.setdefault("briefing", {})
    data.setdefault("mark_targets", [])
    followup = data.get("followup") or {}
    data["followup"] = {key: list(followup.get(key) or DEFAULT_FOLLOWUP[key])
                        for key in ("review", "improvements", "action_items")}
    return data


def window_error(kind, state):
    allowed = " or ".join(KIND_WINDOW[kind])
    return HttpError(409, "outside the drill window: %s is accepted while the drill is %s; "
                          "it is %s" % (kind, allowed, state))


def _check_text(value, field, max_text, required=False):
    if value is None or value == "":
        if required:
            raise HttpError(400, "%s: required, a non-empty string" % field)
        return ""
    if not isinstance(value, str):
        raise HttpError(400, "%s: must be a string" % field)
    if len(value) > max_text:
        raise HttpError(413, "%s: at most %d characters (DESK_MAX_TEXT), got %d"
                        % (field, max_text, len(value)))
    if required and not value.strip():
        raise HttpError(400, "%s: required, a non-empty string" % field)
    return value


def _check_sections(sections, followup, max_text):
    """The stored post-mortem sections: non-empty rows only."""
    if not isinstance(sections, dict):
        raise HttpError(400, "sections: must be an object with review, improvements, "
                             "action_items")
    unknown = sorted(set(sections) - {"review", "improvements", "action_items"})
    if unknown:
        raise HttpError(400, "sections.%s: unknown section; allowed: review, improvements, "
                             "action_items" % unknown[0])
    result = {"review": {}, "improvements": {}, "action_items": []}
    for key in ("review", "improvements"):
        items = sections.get(key) or {}
        if not isinstance(items, dict):
            raise HttpError(400, "sections.%s: must be an object of item: text" % key)
        allowed = followup.get(key) or []
        for item, text in items.items():
            if allowed and item not in allowed:
                raise HttpError(400, "sections.%s: unknown item %r; allowed: %s"
                                % (key, item, ", ".join(allowed)))
            text = _check_text(text, "sections.%s.%s" % (key, item), max_text)
            if text.strip():
                result[key][item] = text
    actions = sections.get("action_items") or []
    if not isinstance(actions, list):
        raise HttpError(400, "sections.action_items: must be a list of {title, owner}")
    for number, action in enumerate(actions):
        field = "sections.action_items[%d]" % number
        if not isinstance(action, dict):
            raise HttpError(400, "%s: must be an object {title, owner}" % field)
        extra = sorted(set(action) - {"title", "owner"})
        if extra:
            raise HttpError(400, "%s.%s: unknown field; allowed: title, owner" % (field, extra[0]))
        title = _check_text(action.get("title"), field + ".title", max_text).strip()
        owner = _check_text(action.get("owner"), field + ".owner", 200).strip()
        if not title and not owner:
            continue
        if not owner:
            raise HttpError(400, "%s.owner: an action item needs an owner" % field)
        if not title:
            raise HttpError(400, "%s.title: an action item needs a title" % field)
        result["action_items"].append({"title": title, "owner": owner})
    return result


def validate_entry(body, user, seats, drill, records_by_id, max_text, drill_state=None):
    """Check a team entry or a mark against the kind table, the seat and the drill window.

    ``body``: the request's object; ``user``: the authenticated username; ``seats``: a set
    with "team" and/or "trainer"; ``drill``: from drill_index() or None (not opened);
    ``records_by_id``: {id: record}. Returns the record fields ``kind, text, audience,
    supersedes, data`` and the kind's own top-level fields (``role``; ``sections``;
    ``target``, ``score``, ``pass``); raises HttpError.
    """
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    kind = body.get("kind")
    if kind not in KIND_FIELDS:
        raise HttpError(400, "kind: must be one of %s, got %r"
                        % (", ".join(TEAM_KINDS + TRAINER_KINDS), kind))
    if "ts" in body:
        raise HttpError(400, "ts: the desk sets the time; do not send it")
    if "author" in body and body["author"] != user:
        raise HttpError(403, "author: the desk sets the author (you are %s)" % user)
    allowed = KIND_FIELDS[kind] | {"kind", "supersedes", "author"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HttpError(400, "%s: unknown field for %s; allowed: %s"
                        % (unknown[0], kind, ", ".join(sorted(allowed - {"author"}))))
    if kind in TEAM_KINDS and "team" not in seats:
        raise HttpError(403, "%s: only the team (DESK_TEAM_GROUPS) writes team entries" % kind)
    if kind in TRAINER_KINDS and "trainer" not in seats:
        raise HttpError(403, "%s: only trainers (DESK_TRAINER_GROUPS) give marks" % kind)
    state = drill["state"] if drill else "not opened"
    if state not in KIND_WINDOW[kind]:
        raise window_error(kind, state)
    info = drill_info(drill)
    fields = {"kind": kind, "text": "", "audience": None, "supersedes": None, "data": {}}
    if kind in ("acknowledge", "log", "coordination", "fix", "status_update"):
        fields["text"] = _check_text(body.get("text"), "text", max_text,
                                     required=kind in REQUIRED_TEXT)
    if kind == "status_update":
        audience = body.get("audience")
        if audience not in AUDIENCES:
            raise HttpError(400, "audience: must be one of %s, got %r"
                            % (", ".join(AUDIENCES), audience))
        fields["audience"] = audience
    elif kind == "role":
        role = body.get("role")
        if role not in ROLES:
            raise HttpError(400, "role: must be one of %s, got %r" % (", ".join(ROLES), role))
        fields["text"] = role
        fields["role"] = role
    elif kind == "postmortem":
        fields["text"] = _check_text(body.get("text"), "text", max_text)
        sections = _check_sections(body.get("sections", {}), info["followup"], max_text)
        if not (fields["text"].strip() or any(sections.values())):
            raise HttpError(400, "sections: the post-mortem is empty; fill a review item, an "
                                 "improvement, an action item or the summary (text)")
        fields["sections"] = sections
    elif kind == "mark":
        targets = {t.get("id"): t for t in info["mark_targets"] if isinstance(t, dict)}
        target = body.get("target")
        if target not in targets:
            raise HttpError(400, "target: must be one of %s, got %r"
                            % (", ".join(str(t) for t in targets) or "(none offered)", target))
        data = {"target": target}       # top-level fields of the record
        if body.get("score") not in (None, ""):
            score = body["score"]
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise HttpError(400, "score: must be a number")
            if isinstance(score, float) and not math.isfinite(score):   # NaN passes 0..points
                raise HttpError(400, "score: must be a finite number, got %r" % score)
            points = targets[target].get("points")
            if score < 0 or (isinstance(points, (int, float)) and score > points):
                raise HttpError(400, "score: must be from 0 to %s" % points)
            data["score"] = score
        if body.get("pass") is not None:
            if not isinstance(body["pass"], bool):
                raise HttpError(400, "pass: must be true or false")
            data["pass"] = body["pass"]
        if "score" not in data and "pass" not in data:
            raise HttpError(400, "score or pass: a mark needs a score (points) or pass (bool)")
        fields["text"] = _check_text(body.get("note"), "note", max_text)
        fields.update(data)
    supersedes = body.get("supersedes")
    if supersedes not in (None, ""):
        earlier = records_by_id.get(supersedes) if isinstance(supersedes, str) else None
        if earlier is None or earlier.get("drill_id") != (drill or {}).get("drill_id"):
            raise HttpError(400, "supersedes: no entry %r in this drill" % (supersedes,))
        if earlier.get("author") != user:
            raise HttpError(403, "supersedes: %s is %s's entry; correct only your own"
                            % (supersedes, earlier.get("author")))
        if earlier.get("kind") != kind:
            raise HttpError(400, "supersedes: %s is a %s entry, not %s"
                            % (supersedes, earlier.get("kind"), kind))
        fields["supersedes"] = supersedes
    return fields


def check_entry_quota(drill, user, kind):
    """HttpError 429 once ``user`` has MAX_ENTRIES_PER_AUTHOR team entries (or marks, for a
    mark) in the drill: every record stays in memory and in a ConfigMap."""
    group = TRAINER_KINDS if kind in TRAINER_KINDS else TEAM_KINDS
    count = sum(1 for r in drill["records"] if r.get("author") == user and r.get("kind") in group)
    if count >= MAX_ENTRIES_PER_AUTHOR:
        what = "marks" if group is TRAINER_KINDS else "team entries"
        raise HttpError(429, "%s: at most %d %s per author per drill (MAX_ENTRIES_PER_AUTHOR)"
                        % (kind, MAX_ENTRIES_PER_AUTHOR, what))


def alert_page_text(alert):
    """An alert as the seeds show it:

        [ALERT] ServiceDown
        Severity: Critical
        Service: backend-api
        Status: Not responding
        Time: 2026-11-29T10:15:42.000Z

    ``[RESOLVED]`` with ``Resolved: <endsAt>`` when the alert is resolved.
    """
    labels = alert.get("labels") or {}
    notes = alert.get("annotations") or {}
    resolved = alert.get("status") == "resolved"
    lines = ["[%s] %s" % ("RESOLVED" if resolved else "ALERT", labels.get("alertname", "?"))]
    severity = str(labels.get("severity") or "")
    if severity:
        lines.append("Severity: " + severity[:1].upper() + severity[1:])
    service = labels.get("service") or labels.get("job")
    if service:
        lines.append("Service: %s" % service)
    summary, description = notes.get("summary"), notes.get("description")
    if summary or description:
        lines.append("Status: %s" % (summary or description))
    if summary and description:
        lines.append("Details: %s" % description)
    lines.append("Time: %s" % (alert.get("startsAt") or "?"))
    if resolved:
        lines.append("Resolved: %s" % (alert.get("endsAt") or "?"))
    return "\n".join(lines)


def record_time(record):
    """When it happened: Prometheus' startsAt for alerts, the event's own ts for controller
    events when it has one, else the desk's ts."""
    data = record.get("data") or {}
    if record.get("kind") == "alert":
        when = parse_time(data.get("startsAt"))
        if when is not None:
            return when, data.get("startsAt")
    if record.get("kind") == "event":
        when = parse_time(data.get("ts"))
        if when is not None:
            return when, data.get("ts")
    return record.get("epoch", 0.0), record.get("ts")


def timeline(drill, kinds):
    """[(epoch, ts, label, record)] of the drill's records of ``kinds`` ordered by time;
    a resolved alert also has its endsAt."""
    items = []
    for record in (drill or {}).get("records", []):
        if record.get("kind") not in kinds:
            continue
        epoch, ts = record_time(record)
        label = record.get("kind")
        data = record.get("data") or {}
        if label == "alert":
            name = (data.get("labels") or {}).get("alertname", "?")
            if data.get("status") == "resolved":
                ends = parse_time(data.get("endsAt"))
                items.append((ends if ends is not None else record.get("epoch", 0.0),
                              data.get("endsAt") or record.get("ts"),
                              "alert resolved: %s" % name, record))
                if any((r[3].get("data") or {}).get("fingerprint") == data.get("fingerprint")
                       and r[2].startswith("alert firing") for r in items):
                    continue
            label = "alert firing: %s" % name
        items.append((epoch, ts, label, record))
    items.sort(key=lambda item: (item[0], item[3].get("seq", 0)))
    return items


def visible_record(record, seats, state):
    """The record as this viewer may see it, or None. Trainees never get ``fault``, marks,
    report contents, nor controller events while the drill is open."""
    privileged = bool({"trainer", "controller"} & seats)
    kind = record.get("kind")
    out = dict(record)
    out["scoring_kind"] = scoring_kind(record)
    if kind == "report":
        data = dict(record.get("data") or {})
        data["size"] = len(data.pop("content", "") or "")
        out["data"] = data
        return out if privileged else None
    if privileged:
        return out
    if kind == "mark" or (kind == "event" and state == "open"):
        return None
    if kind == "drill_opened":
        data = dict(record.get("data") or {})
        data.pop("fault", None)
        out["data"] = data
    return out


# --------------------------------------------------------------------------------------
# stores

class MemoryStore:
    """Records in memory (tests). ``MemoryStore(old.records())`` continues ``seq``."""

    def __init__(self, records=None):
        self._lock = threading.Lock()
        self._records = sorted((dict(r) for r in records or []), key=lambda r: r["seq"])
        self._seq = max([r["seq"] for r in self._records] or [0])

    def append(self, record):
        with self._lock:
            record = dict(record)
            self._seq += 1
            record["seq"] = self._seq
            record["id"] = "r-%06d" % self._seq
            self._records.append(record)
            return dict(record)

    def records(self):
        with self._lock:
            return [dict(r) for r in self._records]


class ConfigMapStore(MemoryStore):
    """One immutable ConfigMap per record in ``namespace``; loads the existing ones (label
    ``opsdrill.io/desk-record=true``) at start and continues ``seq`` from their maximum."""

    LABEL = "opsdrill.io/desk-record"
    DRILL_LABEL = "opsdrill.io/drill-id"
    KIND_LABEL = "opsdrill.io/desk-kind"

    def __init__(self, client, namespace):
        self.client = client
        self.namespace = namespace
        self.path = "/api/v1/namespaces/%s/configmaps" % urllib.parse.quote(namespace, safe="")
        super().__init__(self._load())

    def _load(self):
        records, token = [], None
        while True:
            answer = self.client.request("GET", self.path, query={
                "labelSelector": "%s=true" % self.LABEL, "limit": 500, "continue": token})
            for item in answer.get("items") or []:
                raw = (item.get("data") or {}).get("record.json")
                try:
                    record = json.loads(raw)
                    int(record["seq"])
                except (TypeError, ValueError, KeyError):
                    log("WARNING", "skipping a desk ConfigMap without a readable record",
                        name=(item.get("metadata") or {}).get("name"))
                    continue
                records.append(record)
            token = (answer.get("metadata") or {}).get("continue")
            if not token:
                return records

    def body(self, record):
        """The ConfigMap of a record; named by its seq, so a retried create cannot store a
        second copy (older records have generated names: they load all the same)."""
        return {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "desk-record-%08d" % record["seq"],
                "namespace": self.namespace,
                "labels": {self.LABEL: "true",
                           self.DRILL_LABEL: label_value(record.get("drill_id")),
                           self.KIND_LABEL: label_value(record.get("kind"))},
            },
            "data": {"record.json": json.dumps(record, ensure_ascii=False, sort_keys=True)},
            "immutable": True,
        }

    def _catch_up(self):
        """Records another writer stored since the load (the old pod, while a replacement
        started): into memory, and ``seq`` past them."""
        known = {r.get("id") for r in self._records}
        for found in self._load():
            if found.get("id") not in known:
                self._records.append(found)
        self._records.sort(key=lambda r: int(r["seq"]))
        self._seq = max([self._seq] + [int(r["seq"]) for r in self._records])

    def append(self, record):
        with self._lock:
            for attempt in range(3):
                stored = dict(record)
                stored["seq"] = self._seq + 1
                stored["id"] = "r-%06d" % stored["seq"]
                body = self.body(stored)
                if len(body["data"]["record.json"].encode("utf-8")) > MAX_STORED_RECORD:
                    raise HttpError(413, "the record is %d bytes once stored; a ConfigMap holds "
                                         "at most %d" % (len(body["data"]["record.json"]),
                                                         MAX_STORED_RECORD))
                # burnt before the call: a create that failed or timed out may exist all the same
                self._seq = stored["seq"]
                try:
                    self.client.request("POST", self.path, body=body)   # raises: nothing is kept
                except Exception as exc:  # pylint: disable=broad-except
                    if getattr(exc, "status", None) != 409:
                        raise
                    # Never taken for our own success: the number is someone else's.
                    if attempt == 2:
                        raise RuntimeError("ConfigMap %s already exists (another desk replica, "
                                           "or a lost answer); the record was not kept"
                                           % body["metadata"]["name"]) from exc
                    self._catch_up()
                    continue
                self._records.append(stored)
                return dict(stored)
        raise RuntimeError("unreachable")


# --------------------------------------------------------------------------------------
# reviewers

class TokenReviewer:
    """Who a bearer token belongs to, by the API server's TokenReview; 60 s cache per
    sha256 of the token (refusals too), at most ``max_entries`` (the oldest go first).
    API errors propagate (the desk answers 503)."""

    PATH = "/apis/authentication.k8s.io/v1/tokenreviews"

    def __init__(self, client, ttl_s=60, clock=time.monotonic, max_entries=1000):
        self.client = client
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._cache = {}
        self._lock = threading.Lock()

    def review(self, token):
        if not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = self.clock()
        with self._lock:
            hit = self._cache.get(digest)
            if hit and hit[0] > now:
                return hit[1]
        answer = self.client.request("POST", self.PATH, body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}})
        status = (answer or {}).get("status") or {}
        result = None
        if status.get("authenticated") and (status.get("user") or {}).get("username"):
            user = status["user"]
            result = (user["username"], list(user.get("groups") or []))
        with self._lock:
            self._cache.pop(digest, None)     # re-added last: the dict stays oldest first
            if len(self._cache) >= self.max_entries:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            while len(self._cache) >= self.max_entries:     # random tokens: a hard cap
                del self._cache[next(iter(self._cache))]
            self._cache[digest] = (now + self.ttl_s, result)
        return result


# --------------------------------------------------------------------------------------
# rendering
#
# Stable hooks for tests and Selenium (ids unless "name"):
#   login page     form#login-form: input#login-token (name=token), button#login-submit
#   every page     nav: a#nav-home, form#logout-form button#logout-submit (POST /logout)
#   every form     hidden input name=csrf (the session's token), hidden name=kind
#   drill page     pre.alert-page (one per alert, data-status), a#briefing-link
#                  form#ack-form: button#ack-button (optional input#ack-text, name=text)
#                  form#role-form: select#role-select (name=role), button#role-submit
#                  form#status-form: select#status-audience (name=audience: team|users|
#                      management), textarea#status-text (name=text), button#status-submit
#                  form#log-form: textarea#log-text (name=text), button#log-submit
#                  form#coord-form: textarea#coord-text (name=text), button#coord-submit
#                  form#fix-form: textarea#fix-text (name=text), button#fix-submit
#                  ul#feed (data-drill): li.entry[data-id, data-kind, data-author, data-ts,
#                      data-supersedes], own entries have a#correct-<id> (?correct=<id>)
#                  form#correct-form (drill page ?correct=<id>): hidden name=supersedes,
#                      textarea#correct-text (name=text), button#correct-submit
#   post-mortem    (drill page while closed) ol#pm-timeline (read-only, li.timeline-item),
#                  form#pm-form: textarea#pm-review-<n>, textarea#pm-improvement-<n>
#                  (n = 1.. in the followup's order), input#pm-action-title-<n>,
#                  input#pm-action-owner-<n> (n = 1..max(5, suggestions)),
#                  textarea#pm-summary, button#pm-submit (field names equal the ids)
#   trainer page   pre#fault, ol#trainer-timeline (li.timeline-item[data-kind]),
#                  form#mark-form: select#mark-target (name=target), input#mark-score
#                  (name=score), select#mark-pass (name=pass: ""|true|false),
#                  input#mark-note (name=note), button#mark-submit;
#                  ul#reports li a.report-link
#   home           ul#drills li.drill[data-drill, data-state] a; table.history[data-team];
#                  svg.history-chart; ul#unattached-alerts pre.alert-page
# Forms post to /api/drills/<id>/entries (x-www-form-urlencoded) and answer 303.

def esc(value):
    return html.escape("" if value is None else str(value), quote=True)


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem;color:#222}
nav{display:flex;gap:1rem;align-items:center;border-bottom:1px solid #ccc;padding-bottom:.5rem}
nav form{margin-left:auto}
pre.alert-page{background:#fee;border-left:4px solid #c00;padding:.5rem;white-space:pre-wrap}
pre.alert-page[data-status=resolved]{background:#efe;border-color:#080}
.entry .text{white-space:pre-wrap}
.entry .meta{color:#666;font-size:.85em}
form{margin:.5rem 0}
textarea{width:100%;min-height:3em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}
.error{color:#a00;font-weight:bold}
fieldset{margin:.5rem 0}
"""


def page(title, body, user=None, csrf=None, script=False):
    nav = ['<a id="nav-home" href="/">Incident desk</a>']
    if user:
        nav.append('<span id="nav-user">%s</span>' % esc(user))
        nav.append('<form id="logout-form" method="post" action="/logout">'
                   '<input type="hidden" name="csrf" value="%s">'
                   '<button id="logout-submit" type="submit">Log out</button></form>' % esc(csrf))
    tail = '<script src="/static/desk.js" defer></script>' if script else ""
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>%s</title><style>%s</style>%s</head><body><nav>%s</nav><main>%s</main>'
            '</body></html>\n' % (esc(title), STYLE, tail, "".join(nav), body))


def _hidden(csrf, kind=None, **extra):
    parts = ['<input type="hidden" name="csrf" value="%s">' % esc(csrf)]
    if kind:
        parts.append('<input type="hidden" name="kind" value="%s">' % esc(kind))
    for name, value in extra.items():
        parts.append('<input type="hidden" name="%s" value="%s">' % (esc(name), esc(value)))
    return "".join(parts)


def render_login(error=None):
    body = ['<h1>Log in</h1>']
    if error:
        body.append('<p class="error" id="login-error">%s</p>' % esc(error))
    body.append('<form id="login-form" method="post" action="/login">'
                '<label for="login-token">Kubernetes token</label> '
                '<input id="login-token" name="token" type="password" autocomplete="off" required>'
                ' <button id="login-submit" type="submit">Log in</button></form>'
                '<p>Your own bearer token: the one <code>kubectl</code> uses.</p>')
    return page("Log in", "".join(body))


def render_error(status, message, user=None, csrf=None, back=None):
    body = '<h1>%d</h1><p class="error" id="error-message">%s</p>' % (status, esc(message))
    if back:
        body += '<p><a id="error-back" href="%s">Back</a></p>' % esc(back)
    return page("Refused", body, user, csrf)


def render_alert_page(record):
    data = record.get("data") or {}
    return '<pre class="alert-page" data-status="%s" data-fingerprint="%s">%s</pre>' % (
        esc(data.get("status")), esc(data.get("fingerprint")), esc(record.get("text")))


def render_entry(record, user=None, drill_id=None, can_correct=False):
    kind = record.get("kind")
    label = kind + (" (%s)" % record["audience"] if record.get("audience") else "")
    extra = ""
    if record.get("supersedes"):
        extra = ' <span class="supersedes">corrects %s</span>' % esc(record["supersedes"])
    link = ""
    if can_correct and record.get("author") == user and kind in (
            "acknowledge", "status_update", "log", "coordination", "fix"):
        link = ' <a id="correct-%s" href="/drills/%s?correct=%s">correct</a>' % (
            esc(record["id"]), esc(urllib.parse.quote(drill_id, safe="")),
            esc(urllib.parse.quote(record["id"], safe="")))
    return ('<li class="entry" data-id="%s" data-kind="%s" data-author="%s" data-ts="%s" '
            'data-supersedes="%s"><span class="meta"><span class="ts">%s</span> '
            '<span class="author">%s</span> <span class="kind">%s</span></span>%s%s '
            '<span class="text">%s</span></li>' % (
                esc(record.get("id")), esc(kind), esc(record.get("author")),
                esc(record.get("ts")), esc(record.get("supersedes") or ""),
                esc(record.get("ts")), esc(record.get("author")), esc(label), extra, link,
                esc(record.get("text"))))


FEED_KINDS = TEAM_KINDS + ("alert",)


def _text_form(form_id, kind, csrf, action, text_id, submit_id, label, extra=""):
    return ('<form id="%s" method="post" action="%s">%s%s<label for="%s">%s</label>'
            '<textarea id="%s" name="text"></textarea><button id="%s" type="submit">Post'
            '</button></form>' % (form_id, esc(action), _hidden(csrf, kind), extra, text_id,
                                  esc(label), text_id, submit_id))


def render_team_forms(drill_id, csrf):
    action = "/api/drills/%s/entries" % urllib.parse.quote(drill_id, safe="")
    roles = "".join('<option value="%s">%s</option>' % (r, r.replace("_", " ")) for r in ROLES)
    audiences = "".join('<option value="%s">%s</option>' % (a, a) for a in AUDIENCES)
    return "".join([
        '<section id="team-forms"><h2>Act</h2>',
        '<form id="ack-form" method="post" action="%s">%s<input id="ack-text" name="text" '
        'placeholder="note (optional)"> <button id="ack-button" type="submit">Acknowledge'
        '</button></form>' % (esc(action), _hidden(csrf, "acknowledge")),
        '<form id="role-form" method="post" action="%s">%s<label for="role-select">Take the '
        'role</label> <select id="role-select" name="role">%s</select> <button '
        'id="role-submit" type="submit">Take role</button></form>'
        % (esc(action), _hidden(csrf, "role"), roles),
        '<form id="status-form" method="post" action="%s">%s<label for="status-audience">'
        'Status update for</label> <select id="status-audience" name="audience">%s</select>'
        '<textarea id="status-text" name="text"></textarea><button id="status-submit" '
        'type="submit">Send status update</button></form>'
        % (esc(action), _hidden(csrf, "status_update"), audiences),
        _text_form("log-form", "log", csrf, action, "log-text", "log-submit", "Incident log"),
        _text_form("coord-form", "coordination", csrf, action, "coord-text", "coord-submit",
                   "Coordination (who does what)"),
        _text_form("fix-form", "fix", csrf, action, "fix-text", "fix-submit",
                   "Fix (what was changed)"),
        '</section>'])


def render_timeline(items, list_id):
    rows = []
    for _epoch, ts, label, record in items:
        text = record.get("text") or ""
        if record.get("kind") == "alert":
            notes = (record.get("data") or {}).get("annotations") or {}
            text = notes.get("summary") or notes.get("description") or ""
        elif record.get("kind") == "event":
            data = record.get("data") or {}
            text = text or json.dumps(data, sort_keys=True)
        rows.append('<li class="timeline-item" data-kind="%s" data-ts="%s"><span class="ts">%s'
                    '</span> <span class="author">%s</span> <span class="kind">%s</span> '
                    '<span class="text">%s</span></li>' % (
                        esc(record.get("kind")), esc(ts), esc(ts), esc(record.get("author")),
                        esc(label), esc(text)))
    return '<ol id="%s">%s</ol>' % (list_id, "".join(rows) or "<li>(nothing yet)</li>")


def render_postmortem_form(drill, csrf, user):
    info = drill_info(drill)
    followup = info["followup"]
    latest = None
    for record in drill["records"]:
        if record.get("kind") == "postmortem":
            latest = record
    sections = (latest or {}).get("sections") or {}
    action = "/api/drills/%s/entries" % urllib.parse.quote(drill["drill_id"], safe="")
    extra = {}
    if latest and latest.get("author") == user:
        extra["supersedes"] = latest["id"]
    out = ['<section id="postmortem"><h2>Post-mortem</h2><h3>Timeline</h3>',
           render_timeline(timeline(drill, ("alert", "event") + TEAM_KINDS[:-1]), "pm-timeline"),
           '<form id="pm-form" method="post" action="%s">%s' % (
               esc(action), _hidden(csrf, "postmortem", **extra))]
    for key, title, prefix in (("review", "Review", "pm-review"),
                               ("improvements", "Improvements", "pm-improvement")):
        out.append('<fieldset><legend>%s</legend>' % title)
        for number, item in enumerate(followup[key], 1):
            value = (sections.get(key) or {}).get(item, "")
            out.append('<label for="%s-%d">%s</label><textarea id="%s-%d" name="%s-%d">%s'
                       '</textarea>' % (prefix, number, esc(item), prefix, number, prefix,
                                        number, esc(value)))
        out.append('</fieldset>')
    suggestions = followup["action_items"]
    actions = sections.get("action_items") or []
    rows = max(MIN_ACTION_ROWS, len(suggestions), len(actions) + 2)
    out.append('<fieldset><legend>Action items</legend><table><tr><th>#</th><th>Title</th>'
               '<th>Owner</th></tr>')
    for number in range(1, rows + 1):
        current = actions[number - 1] if number <= len(actions) else {}
        hint = suggestions[number - 1] if number <= len(suggestions) else ""
        out.append('<tr><td>%d</td><td><input id="pm-action-title-%d" name="pm-action-title-%d" '
                   'value="%s" placeholder="%s"></td><td><input id="pm-action-owner-%d" '
                   'name="pm-action-owner-%d" value="%s"></td></tr>' % (
                       number, number, number, esc(current.get("title")), esc(hint), number,
                       number, esc(current.get("owner"))))
    out.append('</table></fieldset><label for="pm-summary">Summary</label><textarea '
               'id="pm-summary" name="pm-summary">%s</textarea><button id="pm-submit" '
               'type="submit">Save post-mortem</button></form></section>'
               % esc((latest or {}).get("text")))
    return "".join(out)


def render_drill(drill, identity, csrf, correct=None):
    info = drill_info(drill)
    drill_id = drill["drill_id"]
    quoted = urllib.parse.quote(drill_id, safe="")
    team = "team" in identity.seats
    out = ['<h1>%s</h1>' % esc(info.get("title") or drill_id),
           '<p>Drill <code id="drill-id">%s</code>, namespace <code>%s</code>, state '
           '<strong id="drill-state">%s</strong>. <a id="briefing-link" href="/drills/%s/'
           'briefing">Briefing</a>' % (esc(drill_id), esc(info.get("namespace")),
                                       esc(drill["state"]), esc(quoted))]
    if "trainer" in identity.seats:
        out.append(' · <a id="trainer-link" href="/drills/%s/trainer">Trainer</a>' % esc(quoted))
    out.append('</p>')
    alerts = [r for r in drill["records"] if r.get("kind") == "alert"]
    out.append('<section id="alerts"><h2>Alerts</h2>%s</section>' % (
        "".join(render_alert_page(r) for r in reversed(alerts)) or "<p>No alert yet.</p>"))
    if team and drill["state"] == "open":
        if correct is not None:
            out.append('<form id="correct-form" method="post" action="/api/drills/%s/entries">'
                       '%s<label for="correct-text">Correct %s (%s): the earlier entry stays'
                       '</label><textarea id="correct-text" name="text">%s</textarea>%s'
                       '<button id="correct-submit" type="submit">Post correction</button>'
                       '</form>' % (esc(quoted), _hidden(csrf, correct["kind"],
                                                         supersedes=correct["id"]),
                                    esc(correct["id"]), esc(correct["kind"]),
                                    esc(correct.get("text")),
                                    ('<input type="hidden" name="audience" value="%s">'
                                     % esc(correct["audience"])) if correct.get("audience")
                                    else ""))
        out.append(render_team_forms(drill_id, csrf))
    if drill["state"] == "closed" and team:
        out.append(render_postmortem_form(drill, csrf, identity.user))
    if drill["state"] == "finalized" and drill["finalized"]:
        summary = (drill["finalized"].get("data") or {}).get("summary") or {}
        out.append('<p id="drill-summary">MTTA %s, MTTR %s, score %s</p>' % (
            esc(fmt_duration(summary.get("mtta_s"))), esc(fmt_duration(summary.get("mttr_s"))),
            esc(fmt_percent(summary.get("percent")))))
    feed = [r for r in drill["records"] if r.get("kind") in FEED_KINDS]
    out.append('<section><h2>Feed</h2><ul id="feed" data-drill="%s">%s</ul></section>' % (
        esc(drill_id), "".join(render_entry(r, identity.user, drill_id,
                                            team and drill["state"] == "open")
                               for r in reversed(feed))))
    return page(info.get("title") or drill_id, "".join(out), identity.user, csrf, script=True)


def render_briefing(drill, identity, csrf):
    info = drill_info(drill)
    briefing = info.get("briefing") or {}
    out = ['<h1>Briefing: %s</h1>' % esc(info.get("title") or drill["drill_id"])]
    if info.get("alert"):
        out.append('<p>Alert: <code>%s</code></p>' % esc(
            info["alert"] if isinstance(info["alert"], str) else json.dumps(info["alert"])))
    out.append('<dl id="briefing">')
    if isinstance(briefing, dict):
        for key, value in briefing.items():
            out.append('<dt>%s</dt><dd class="text" style="white-space:pre-wrap">%s</dd>'
                       % (esc(key), esc(value)))
    out.append('</dl><p><a href="/drills/%s">Back to the drill</a></p>'
               % esc(urllib.parse.quote(drill["drill_id"], safe="")))
    return page("Briefing", "".join(out), identity.user, csrf)


def render_trainer(drill, identity, csrf):
    info = drill_info(drill)
    drill_id = drill["drill_id"]
    quoted = urllib.parse.quote(drill_id, safe="")
    fault = info.get("fault")
    out = ['<h1>Trainer: %s</h1>' % esc(info.get("title") or drill_id),
           '<p>State <strong id="drill-state">%s</strong> · <a href="/drills/%s">Team view</a>'
           '</p>' % (esc(drill["state"]), esc(quoted)),
           '<h2>Hidden fault</h2><pre id="fault">%s</pre>' % esc(
               json.dumps(fault, indent=2, sort_keys=True) if not isinstance(fault, str)
               else fault),
           '<h2>Timeline</h2>',
           render_timeline(timeline(drill, ("alert", "event", "mark", "drill_closed",
                                            "drill_finalized") + TEAM_KINDS),
                           "trainer-timeline")]
    if drill["state"] in KIND_WINDOW["mark"]:
        targets = "".join('<option value="%s">%s (%s points)</option>' % (
            esc(t.get("id")), esc(t.get("title") or t.get("id")), esc(t.get("points")))
            for t in info["mark_targets"] if isinstance(t, dict))
        out.append('<h2>Marks</h2><form id="mark-form" method="post" action="/api/drills/%s/'
                   'entries">%s<label for="mark-target">Target</label> <select id="mark-target"'
                   ' name="target">%s</select> <label for="mark-score">Score</label> <input '
                   'id="mark-score" name="score" inputmode="decimal"> <label for="mark-pass">'
                   'Pass</label> <select id="mark-pass" name="pass"><option value=""></option>'
                   '<option value="true">pass</option><option value="false">fail</option>'
                   '</select> <label for="mark-note">Note</label> <input id="mark-note" '
                   'name="note"> <button id="mark-submit" type="submit">Mark</button></form>'
                   % (esc(quoted), _hidden(csrf, "mark"), targets))
    reports = {}
    for record in drill["records"]:
        if record.get("kind") == "report":
            reports[(record.get("data") or {}).get("name")] = record
    out.append('<h2>Reports</h2><ul id="reports">%s</ul>' % ("".join(
        '<li><a class="report-link" href="/api/drills/%s/reports/%s">%s</a> (%s)</li>' % (
            esc(quoted), esc(urllib.parse.quote(name, safe="")), esc(name),
            esc((r.get("data") or {}).get("content_type")))
        for name, r in sorted(reports.items())) or "<li>(none yet)</li>"))
    return page("Trainer", "".join(out), identity.user, csrf, script=False)


def fmt_duration(seconds):
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "—"
    seconds = int(round(seconds))
    return "%dm %02ds" % (seconds // 60, seconds % 60) if seconds >= 60 else "%ds" % seconds


def fmt_percent(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return ("%.1f" % value).rstrip("0").rstrip(".") + "%"


def render_chart(rows):
    """An inline SVG bar chart of percent per drill (numbers and escaped text only)."""
    bars = [(d, float(p)) for d, p in rows
            if isinstance(p, (int, float)) and not isinstance(p, bool)]
    width, height, bar_width = max(1, len(bars)) * 40 + 10, 130, 30
    parts = ['<svg class="history-chart" xmlns="http://www.w3.org/2000/svg" width="%d" '
             'height="%d" viewBox="0 0 %d %d" role="img" aria-label="score per drill">'
             % (width, height, width, height)]
    for number, (drill_id, percent) in enumerate(bars):
        percent = max(0.0, min(100.0, percent))
        h = percent
        x = 10 + number * 40
        parts.append('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="#47a"><title>%s: %s'
                     '</title></rect><text x="%d" y="125" font-size="10">%s</text>' % (
                         x, 110 - h, bar_width, h, esc(drill_id), esc(fmt_percent(percent)),
                         x, esc(fmt_percent(percent))))
    parts.append('</svg>')
    return "".join(parts)


def render_home(drills, unattached, identity, csrf):
    order = {"open": 0, "closed": 1, "finalized": 2}
    listed = sorted(drills.values(), key=lambda d: (order[d["state"]],
                                                    -d["opened"].get("epoch", 0)))
    out = ['<h1>Drills</h1><ul id="drills">']
    for drill in listed:
        info = drill_info(drill)
        out.append('<li class="drill" data-drill="%s" data-state="%s"><a href="/drills/%s">%s'
                   '</a> (%s, %s, opened %s)</li>' % (
                       esc(drill["drill_id"]), esc(drill["state"]),
                       esc(urllib.parse.quote(drill["drill_id"], safe="")),
                       esc(info.get("title") or drill["drill_id"]), esc(info.get("namespace")),
                       esc(drill["state"]), esc(drill["opened"].get("ts"))))
    out.append('</ul>' if listed else '<li>(no drill yet)</li></ul>')
    if "trainer" in identity.seats:
        teams = {}
        for drill in sorted(drills.values(), key=lambda d: d["opened"].get("seq", 0)):
            if drill["finalized"]:
                teams.setdefault(drill_info(drill).get("namespace") or "?", []).append(drill)
        out.append('<h2>History per team</h2>')
        for team, finished in sorted(teams.items()):
            rows, chart = [], []
            for drill in finished:
                summary = (drill["finalized"].get("data") or {}).get("summary") or {}
                rows.append('<tr><td><a href="/drills/%s">%s</a></td><td>%s</td><td>%s</td>'
                            '<td>%s</td></tr>' % (
                                esc(urllib.parse.quote(drill["drill_id"], safe="")),
                                esc(drill["drill_id"]), esc(fmt_duration(summary.get("mtta_s"))),
                                esc(fmt_duration(summary.get("mttr_s"))),
                                esc(fmt_percent(summary.get("percent")))))
                chart.append((drill["drill_id"], summary.get("percent")))
            out.append('<h3>%s</h3><table class="history" data-team="%s"><tr><th>Drill</th>'
                       '<th>MTTA</th><th>MTTR</th><th>Score</th></tr>%s</table>%s' % (
                           esc(team), esc(team), "".join(rows), render_chart(chart)))
        if not teams:
            out.append('<p>No finalized drill yet.</p>')
    if unattached:
        out.append('<h2>Alerts outside any drill</h2><ul id="unattached-alerts">%s</ul>' % "".join(
            '<li>%s</li>' % render_alert_page(r) for r in reversed(unattached[-20:])))
    return page("Incident desk", "".join(out), identity.user, csrf)


DESK_JS = r"""// incident desk: live feed (textContent only)
(function () {
  'use strict';
  var feed = document.getElementById('feed');
  if (!feed || !window.fetch) { return; }
  var drill = feed.getAttribute('data-drill');
  var kinds = ['acknowledge', 'role', 'status_update', 'log', 'coordination', 'fix',
               'postmortem', 'alert'];
  var last = null;
  function span(cls, text) {
    var s = document.createElement('span');
    s.className = cls;
    s.textContent = text == null ? '' : String(text);
    return s;
  }
  function render(records) {
    var items = records.filter(function (r) { return kinds.indexOf(r.kind) >= 0; });
    var sig = items.map(function (r) { return r.id; }).join(',');
    if (sig === last) { return; }
    last = sig;
    while (feed.firstChild) { feed.removeChild(feed.firstChild); }
    items.reverse().forEach(function (r) {
      var li = document.createElement('li');
      li.className = 'entry';
      li.setAttribute('data-id', r.id);
      li.setAttribute('data-kind', r.kind);
      li.setAttribute('data-author', r.author);
      li.setAttribute('data-ts', r.ts);
      li.setAttribute('data-supersedes', r.supersedes || '');
      var meta = span('meta', '');
      meta.appendChild(span('ts', r.ts));
      meta.appendChild(document.createTextNode(' '));
      meta.appendChild(span('author', r.author));
      meta.appendChild(document.createTextNode(' '));
      meta.appendChild(span('kind', r.kind + (r.audience ? ' (' + r.audience + ')' : '')));
      li.appendChild(meta);
      if (r.supersedes) { li.appendChild(span('supersedes', ' corrects ' + r.supersedes)); }
      li.appendChild(document.createTextNode(' '));
      li.appendChild(span('text', r.text));
      feed.appendChild(li);
    });
  }
  function poll() {
    fetch('/api/drills/' + encodeURIComponent(drill) + '/entries',
          {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (data) { if (data && data.entries) { render(data.entries); } })
      .catch(function () {})
      .then(function () { setTimeout(poll, 5000); });
  }
  var first = [];
  Array.prototype.forEach.call(feed.querySelectorAll('li.entry'), function (li) {
    first.push(li.getAttribute('data-id'));
  });
  last = first.reverse().join(',');
  setTimeout(poll, 5000);
})();
"""


# --------------------------------------------------------------------------------------
# the application

class Identity:
    def __init__(self, user, groups, seats, via, session=None):
        self.user = user
        self.groups = list(groups)
        self.seats = set(seats)
        self.via = via
        self.session = session


class Desk:
    """The desk's state and operations; the HTTP handler only parses and dispatches."""

    def __init__(self, store, reviewer, config, clock=time.time):
        self.store = store
        self.reviewer = reviewer
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()     # every write: validate and append together
        self.sessions = {}
        self.sessions_lock = threading.Lock()

    # -- identities --------------------------------------------------------------------

    def seats(self, groups):
        seats = set()
        if set(groups) & set(self.config.team_groups):
            seats.add("team")
        if set(groups) & set(self.config.trainer_groups):
            seats.add("trainer")
        return seats

    def secret(self, name):
        path = os.path.join(self.config.tokens_dir, name)
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip() or None
        except OSError as exc:
            log("ERROR", "cannot read the %s token file" % name, path=path, error=str(exc))
            return None

    def check_secret(self, name, presented):
        expected = self.secret(name)
        return bool(expected and presented) and hmac.compare_digest(
            expected.encode("utf-8"), presented.encode("utf-8"))

    def review(self, token):
        """(user, groups, seats) of a Kubernetes token; HttpError 401/403/503."""
        try:
            who = self.reviewer.review(token)
        except Exception as exc:  # pylint: disable=broad-except
            log("ERROR", "TokenReview failed", error=str(exc))
            raise HttpError(503, "cannot verify the token now (TokenReview failed); retry")
        if not who:
            raise HttpError(401, "the token was not accepted by the Kubernetes API server")
        user, groups = who
        seats = self.seats(groups)
        if not seats:
            raise HttpError(403, "%s is in none of the desk's groups (%s)" % (
                user, ", ".join(self.config.team_groups + self.config.trainer_groups)))
        return user, groups, seats

    def login(self, token):
        user, groups, seats = self.review(token)
        sid = secrets.token_urlsafe(32)
        session = {"user": user, "groups": groups, "seats": seats,
                   "csrf": secrets.token_urlsafe(32),
                   "expires": self.clock() + self.config.session_ttl_s}
        with self.sessions_lock:
            now = self.clock()
            for key in [k for k, v in self.sessions.items() if v["expires"] < now]:
                del self.sessions[key]
            self.sessions[sid] = session
            self._trim_sessions(user)
        log("INFO", "login", user=user, seats=sorted(seats))
        return sid, session

    def _trim_sessions(self, user):
        """Drop the user's sessions beyond their newest MAX_SESSIONS_PER_USER, then the
        oldest beyond MAX_SESSIONS: every login adds one for 12 h, so a login loop would
        fill the memory. The dict keeps login order. Called with sessions_lock held."""
        mine = [key for key, value in self.sessions.items() if value["user"] == user]
        for key in mine[:-MAX_SESSIONS_PER_USER]:
            del self.sessions[key]
        for key in list(self.sessions)[:-MAX_SESSIONS]:
            del self.sessions[key]

    def session(self, sid):
        with self.sessions_lock:
            session = self.sessions.get(sid)
            if session and session["expires"] < self.clock():
                del self.sessions[sid]
                session = None
            return session

    def logout(self, sid):
        with self.sessions_lock:
            self.sessions.pop(sid, None)

    # -- reading -----------------------------------------------------------------------

    def records(self):
        return self.store.records()

    def drills(self):
        return drill_index(self.records())

    def drill(self, drill_id):
        drill = self.drills().get(drill_id)
        if drill is None:
            raise HttpError(404, "no drill %r" % drill_id)
        return drill

    def drill_summary(self, drill, seats):
        info = drill_info(drill)
        out = {"drill_id": drill["drill_id"], "state": drill["state"],
               "opened_at": drill["opened"].get("ts"),
               "closed_at": (drill["closed"] or {}).get("ts"),
               "finalized_at": (drill["finalized"] or {}).get("ts"),
               "summary": ((drill["finalized"] or {}).get("data") or {}).get("summary")}
        for key in ("namespace", "scenario", "variant", "title", "alert"):
            out[key] = info.get(key)
        return out

    def drill_detail(self, drill, seats):
        out = self.drill_summary(drill, seats)
        info = drill_info(drill)
        out.update(briefing=info.get("briefing"), followup=info.get("followup"),
                   mark_targets=info.get("mark_targets"))
        if {"trainer", "controller"} & seats:
            out["fault"] = info.get("fault")
        return out

    def entries(self, drill, seats):
        out = []
        for record in drill["records"]:
            shown = visible_record(record, seats, drill["state"])
            if shown is not None:
                out.append(shown)
        return out

    def report(self, drill, name):
        found = None
        for record in drill["records"]:
            if record.get("kind") == "report" and (record.get("data") or {}).get("name") == name:
                found = record
        if found is None:
            raise HttpError(404, "no report %r in drill %s" % (name, drill["drill_id"]))
        return found["data"]

    # -- writing -----------------------------------------------------------------------

    def append(self, drill_id, kind, author, text="", audience=None, supersedes=None,
               data=None, **extra):
        now = round(self.clock(), 3)
        record = {"drill_id": drill_id, "kind": kind, "author": author, "ts": format_ts(now),
                  "epoch": now, "text": text, "audience": audience, "supersedes": supersedes,
                  "data": data or {}}
        record.update(extra)       # a kind's own fields: role, sections, target, score, pass
        try:
            stored = self.store.append(record)
        except HttpError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            log("ERROR", "cannot store a record", kind=kind, drill_id=drill_id, error=str(exc))
            raise HttpError(503, "cannot store the record now (%s); retry" % exc)
        log("INFO", "record", id=stored["id"], kind=kind, drill_id=drill_id, author=author)
        return stored

    def post_entry(self, identity, drill_id, body):
        with self.lock:
            records = self.records()
            drill = drill_index(records).get(drill_id)
            fields = validate_entry(body, identity.user, identity.seats, drill,
                                    {r["id"]: r for r in records}, self.config.max_text)
            check_entry_quota(drill, identity.user, fields["kind"])
            return self.append(drill_id, author=identity.user, **fields)

    def open_drill(self, body):
        allowed = {"drill_id", "namespace", "scenario", "variant", "title", "alert",
                   "briefing", "fault", "mark_targets", "followup"}
        _only(body, allowed, "drill")
        drill_id = body.get("drill_id")
        if not isinstance(drill_id, str) or not DRILL_ID_RE.fullmatch(drill_id):
            raise HttpError(400, "drill_id: required, letters, digits, '.', '_', '-' "
                                 "(at most 128), got %r" % (drill_id,))
        namespace = body.get("namespace")
        if not isinstance(namespace, str) or not namespace:
            raise HttpError(400, "namespace: required, the drill's namespace")
        for key in ("scenario", "variant", "title"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise HttpError(400, "%s: must be a string" % key)
        briefing = body.get("briefing") or {}
        if not isinstance(briefing, dict) or not all(isinstance(v, str)
                                                     for v in briefing.values()):
            raise HttpError(400, "briefing: must be an object of strings")
        targets = body.get("mark_targets") or []
        if not isinstance(targets, list) or not all(
                isinstance(t, dict) and isinstance(t.get("id"), str) for t in targets):
            raise HttpError(400, "mark_targets: must be a list of {id, title, points}")
        followup = body.get("followup") or {}
        if not isinstance(followup, dict) or any(
                key not in ("review", "improvements", "action_items")
                or not isinstance(value, list) or not all(isinstance(v, str) for v in value)
                for key, value in followup.items()):
            raise HttpError(400, "followup: must be an object with review, improvements, "
                                 "action_items: lists of strings")
        data = {k: v for k, v in body.items() if k != "drill_id"}
        with self.lock:
            if drill_id in self.drills():
                raise HttpError(409, "drill_id: drill %s was already opened" % drill_id)
            return self.append(drill_id, "drill_opened", CONTROLLER_USER,
                               text=body.get("title") or drill_id, data=data)

    def controller_post(self, drill_id, action, body):
        with self.lock:
            drill = self.drills().get(drill_id)
            state = drill["state"] if drill else "not opened"
            if action == "events":
                events = body.get("events") if set(body) == {"events"} else [body]
                if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                    raise HttpError(400, "events: must be an object or {\"events\": [objects]}")
                if state not in ("open", "closed"):
                    raise HttpError(409, "outside the drill window: event is accepted while "
                                         "the drill is open or closed; it is %s" % state)
                return [self.append(drill_id, "event", CONTROLLER_USER, data=e,
                                    text=str(e.get("event") or e.get("type")
                                             or e.get("message") or ""))
                        for e in events]
            if action == "close":
                _only(body, {"reason"}, "close")
                if state != "open":
                    raise HttpError(409, "outside the drill window: close is accepted while "
                                         "the drill is open; it is %s" % state)
                return self.append(drill_id, "drill_closed", CONTROLLER_USER,
                                   text=str(body.get("reason") or ""))
            if action == "finalize":
                _only(body, {"summary"}, "finalize")
                summary = body.get("summary")
                if not isinstance(summary, dict):
                    raise HttpError(400, "summary: required, {team, mtta_s, mttr_s, percent}")
                summary = dict(summary)          # other keys (e.g. result) are kept as given
                for key in ("mtta_s", "mttr_s", "percent"):
                    summary[key] = _number_or_none(summary.get(key), "summary." + key)
                if state != "closed":
                    raise HttpError(409, "outside the drill window: finalize is accepted "
                                         "while the drill is closed; it is %s" % state)
                return self.append(drill_id, "drill_finalized", CONTROLLER_USER,
                                   data={"summary": summary})
            if action == "reports":
                _only(body, {"name", "content_type", "content"}, "report")
                name, ctype, content = (body.get("name"), body.get("content_type"),
                                        body.get("content"))
                if not isinstance(name, str) or not REPORT_NAME_RE.fullmatch(name):
                    raise HttpError(400, "name: required, [A-Za-z0-9._-]+ (at most 128)")
                if not isinstance(ctype, str) or not CONTENT_TYPE_RE.fullmatch(ctype):
                    raise HttpError(400, "content_type: a media type such as text/html, "
                                         "text/plain, application/json")
                if not isinstance(content, str):
                    raise HttpError(400, "content: required, a string")
                if len(content.encode("utf-8")) > MAX_REPORT_CONTENT:
                    raise HttpError(413, "content: at most %d bytes" % MAX_REPORT_CONTENT)
                if drill is None:
                    raise HttpError(404, "no drill %r" % drill_id)
                return self.append(drill_id, "report", CONTROLLER_USER, text=name,
                                   data={"name": name, "content_type": ctype,
                                         "content": content})
            raise HttpError(404, "no such action %r" % action)

    def ingest_alerts(self, payload):
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            raise HttpError(400, "alerts: an Alertmanager webhook payload (version 4) has a "
                                 "list of alerts")
        if str(payload.get("version", "4")) != "4":
            raise HttpError(400, "version: must be 4, got %r" % payload.get("version"))
        stored = []
        with self.lock:
            records = self.records()
            drills = drill_index(records)
            seen = set()
            for record in records:
                if record.get("kind") == "alert":
                    data = record.get("data") or {}
                    seen.add((record.get("drill_id"), data.get("fingerprint"),
                              data.get("status"), data.get("startsAt"),
                              data.get("endsAt") if data.get("status") == "resolved" else None))
            for alert in payload["alerts"]:
                if not isinstance(alert, dict):
                    raise HttpError(400, "alerts: each alert must be an object")
                labels = alert.get("labels") or {}
                notes = alert.get("annotations") or {}
                if not isinstance(labels, dict) or not isinstance(notes, dict):
                    raise HttpError(400, "alerts: labels and annotations must be objects")
                status = alert.get("status") or payload.get("status") or "firing"
                drill_id = None
                for drill in drills.values():    # the latest open drill of the namespace
                    if drill["state"] == "open" and labels.get("namespace") and \
                            drill_info(drill).get("namespace") == labels.get("namespace"):
                        drill_id = drill["drill_id"]
                data = {"status": status, "labels": labels, "annotations": notes,
                        "startsAt": alert.get("startsAt"), "endsAt": alert.get("endsAt"),
                        "fingerprint": alert.get("fingerprint"),
                        "generatorURL": alert.get("generatorURL")}
                key = (drill_id, data["fingerprint"], status, data["startsAt"],
                       data["endsAt"] if status == "resolved" else None)
                if key in seen:       # Alertmanager repeats notifications: one record each
                    continue
                seen.add(key)
                stored.append(self.append(drill_id, "alert", WEBHOOK_USER,
                                          text=alert_page_text(data), data=data))
        return stored

    def metrics(self):
        counts = {}
        for record in self.records():
            counts[record.get("kind")] = counts.get(record.get("kind"), 0) + 1
        lines = ["# HELP desk_records_total Records stored by the incident desk, by kind.",
                 "# TYPE desk_records_total counter"]
        for kind in sorted(counts, key=str):
            lines.append('desk_records_total{kind="%s"} %d' % (
                str(kind).replace("\\", "\\\\").replace('"', '\\"'), counts[kind]))
        with self.sessions_lock:
            sessions = len(self.sessions)
        lines += ["# HELP desk_sessions Logged-in browser sessions.", "# TYPE desk_sessions gauge",
                  "desk_sessions %d" % sessions]
        return "\n".join(lines) + "\n"


def _number_or_none(value, field):
    """A number from a number or a numeric string (templated values arrive as text);
    None for null, "" and "None"."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    if isinstance(value, bool):
        raise HttpError(400, "%s: must be a number or null" % field)
    if isinstance(value, (int, float)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HttpError(400, "%s: must be a number or null, got %r" % (field, value))
    return int(number) if number.is_integer() else number


def _only(body, allowed, what):
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise HttpError(400, "%s: unknown field for %s; allowed: %s"
                        % (unknown[0], what, ", ".join(sorted(allowed)) or "none"))


def form_to_entry(form):
    """A page form (field -> last value) as an entry body; empty fields are absent."""
    body = {}
    for key, value in form.items():
        if key == "csrf" or value == "":
            continue
        if key.startswith("pm-") or key in ("score", "pass"):
            continue
        body[key] = value
    if body.get("kind") == "postmortem":
        sections = {"review": {}, "improvements": {}, "action_items": []}
        body["_followup_form"] = True
        for key, value in form.items():
            match = re.fullmatch(r"pm-(review|improvement)-(\d+)", key)
            if match and value.strip():
                sections["review" if match.group(1) == "review" else "improvements"][
                    int(match.group(2))] = value
        pattern = re.compile(r"pm-action-(?:title|owner)-(\d+)")
        numbers = sorted({int(m.group(1)) for m in (pattern.fullmatch(k) for k in form) if m})
        for number in numbers:
            sections["action_items"].append({
                "title": form.get("pm-action-title-%d" % number, ""),
                "owner": form.get("pm-action-owner-%d" % number, "")})
        body["sections"] = sections
        if form.get("pm-summary"):
            body["text"] = form["pm-summary"]
    if body.get("kind") == "mark":
        if form.get("score", "").strip():
            try:
                body["score"] = float(form["score"])
                if body["score"].is_integer():
                    body["score"] = int(body["score"])
            except ValueError:
                raise HttpError(400, "score: must be a number, got %r" % form["score"])
        if form.get("pass") in ("true", "false"):
            body["pass"] = form["pass"] == "true"
        elif form.get("pass"):
            raise HttpError(400, "pass: must be true or false")
    return body


def resolve_form_sections(body, drill):
    """Numbered post-mortem fields -> the followup's item names."""
    if not body.pop("_followup_form", False):
        return body
    followup = drill_info(drill)["followup"]
    sections = body["sections"]
    for key in ("review", "improvements"):
        named = {}
        for number, text in sections[key].items():
            items = followup[key]
            if not 1 <= number <= len(items):
                raise HttpError(400, "pm-%s-%d: no such item" % (
                    "review" if key == "review" else "improvement", number))
            named[items[number - 1]] = text
        sections[key] = named
    return body


# --------------------------------------------------------------------------------------
# HTTP

PAGE_ROUTES = re.compile(r"^/drills/([^/]+)(/briefing|/trainer)?$")
API_DRILL = re.compile(r"^/api/drills/([^/]+)(?:/(entries|events|close|finalize|reports)"
                       r"(?:/([^/]+))?)?$")


def same_origin(origin, host):
    """Whether an Origin header names the host:port of the Host header (default ports may be
    left out of either); "null" and unparsable origins are foreign."""
    try:
        url = urllib.parse.urlsplit(origin.strip())
        target = urllib.parse.urlsplit("//" + host.strip())
        if url.scheme not in ("http", "https") or not url.hostname or not target.hostname:
            return False
        default = 443 if url.scheme == "https" else 80
        return (url.hostname, url.port or default) == (target.hostname, target.port or default)
    except ValueError:
        return False


class Handler(BaseHTTPRequestHandler):
    server_version = "incident-desk/1"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 120                 # idle keep-alive connections
    DRAIN_CAP = 4 * 1024 * 1024   # a refused body is discarded up to this much after answering

    # -- plumbing ----------------------------------------------------------------------

    @property
    def desk(self):
        return self.server.desk

    def log_message(self, fmt, *args):  # replaced by one JSON line per request
        pass

    def _send(self, status, body, content_type, headers=None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        merged = dict(SECURITY_HEADERS)
        merged.update(headers or {})
        for key, value in merged.items():
            if isinstance(value, list):
                for item in value:
                    self.send_header(key, item)
            else:
                self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._status = status

    def send_json(self, status, obj, headers=None):
        self._send(status, json.dumps(obj, ensure_ascii=False, sort_keys=True),
                   "application/json; charset=utf-8", headers)

    def send_html(self, status, text, headers=None):
        self._send(status, text, "text/html; charset=utf-8", headers)

    def redirect(self, location, headers=None):
        headers = dict(headers or {})
        headers["Location"] = location
        self._send(303, "", "text/plain; charset=utf-8", headers)

    def read_body(self, limit):
        raw = self.headers.get("Content-Length")
        if raw is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise HttpError(411, "Content-Length: required (no chunked bodies)")
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise HttpError(400, "Content-Length: must be an integer")
        if length < 0:
            self.close_connection = True
            raise HttpError(400, "Content-Length: must not be negative")
        if length > limit:
            self.close_connection = True        # refused unread; drained after the answer
            self._discard = length
            raise HttpError(413, "body: at most %d bytes, got %d" % (limit, length))
        return self.rfile.read(length)

    def json_body(self, limit=MAX_BODY):
        raw = self.read_body(limit)
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, "body: invalid JSON (%s)" % exc)
        if not isinstance(body, dict):
            raise HttpError(400, "body: must be a JSON object")
        return body

    def form_body(self):
        raw = self.read_body(MAX_BODY)
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                           strict_parsing=False, max_num_fields=300)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, "body: invalid form (%s)" % exc)
        return dict(pairs)

    def cookie(self, name):
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, value = part.strip().partition("=")[::2]
            if key == name:
                return value
        return None

    def identity(self, allow_bearer=True):
        """Who is asking (None: nobody); HttpError for a presented but bad credential."""
        controller = self.headers.get("X-Desk-Controller-Token")
        if controller is not None:
            if not self.desk.check_secret("controller", controller):
                raise HttpError(401, "X-Desk-Controller-Token: not the controller's token")
            return Identity(CONTROLLER_USER, [], {"controller"}, "controller")
        auth = self.headers.get("Authorization") or ""
        if allow_bearer and auth[:7].lower() == "bearer ":
            user, groups, seats = self.desk.review(auth[7:].strip())
            return Identity(user, groups, seats, "bearer")
        sid = self.cookie("desk_session")
        session = self.desk.session(sid) if sid else None
        if session:
            return Identity(session["user"], session["groups"], session["seats"], "session",
                            session)
        return None

    def csrf(self, identity):
        return identity.session["csrf"] if identity and identity.session else ""

    def check_csrf(self, identity, presented):
        if identity.via != "session":
            return
        expected = identity.session["csrf"]
        if not presented or not hmac.compare_digest(expected.encode(), presented.encode()):
            raise HttpError(403, "csrf: missing or wrong form token; reload the page")

    # -- dispatch ----------------------------------------------------------------------

    def do_GET(self):
        self._dispatch(self._get)

    def do_POST(self):
        self._dispatch(self._post)

    def _dispatch(self, method):
        self._status = 0
        self._who = None
        self._identity = None
        self._discard = 0
        started = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        self._api = url.path.startswith("/api/") or url.path in ("/healthz", "/metrics")
        self._form = False
        try:
            method(url.path, urllib.parse.parse_qs(url.query))
        except HttpError as exc:
            self._refuse(exc)
        except Exception as exc:  # pylint: disable=broad-except
            log("ERROR", "request failed", path=url.path, error=repr(exc))
            self._refuse(HttpError(500, "internal error"))
        if self._discard:
            self._drain(self._discard)
        log("INFO", "request", method=self.command, path=url.path, status=self._status,
            user=self._who, ms=int((time.monotonic() - started) * 1000))

    def _drain(self, length):
        """Discard (never parse) a refused body so the client reads the answer rather than
        a connection reset; bounded in size and time."""
        try:
            self.wfile.flush()
            self.connection.settimeout(2)
            left = min(length, self.DRAIN_CAP)
            while left > 0:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except (OSError, ValueError):
            pass

    def _refuse(self, exc):
        if self._api and not self._form:
            headers = {}
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="incident-desk"'
            self.send_json(exc.status, {"error": exc.message}, headers)
        else:
            who = self._identity
            match = API_DRILL.match(urllib.parse.urlsplit(self.path).path)
            back = "/drills/%s" % match.group(1) if match else "/"
            self.send_html(exc.status, render_error(exc.status, exc.message,
                                                    who.user if who else None,
                                                    self.csrf(who), back=back))

    def _need(self, identity, page):
        if identity is None:
            if page:
                raise _Redirect("/login")
            raise HttpError(401, "authentication required: a session, a bearer token or "
                                 "the controller's token")
        self._who = identity.user
        self._identity = identity
        return identity

    def _get(self, path, query):
        if path == "/healthz":
            return self.send_json(200, {"status": "ok", "records": len(self.desk.records())})
        if path == "/metrics":
            return self._send(200, self.desk.metrics(), "text/plain; version=0.0.4")
        if path == "/static/desk.js":
            return self._send(200, DESK_JS, "application/javascript; charset=utf-8")
        if path == "/login":
            return self.send_html(200, render_login())
        try:
            identity = self._need(self.identity(allow_bearer=self._api), not self._api)
        except _Redirect as move:
            return self.redirect(move.location)
        if identity.via == "controller" and not self._api:
            raise HttpError(403, "the controller's token is for the API")
        csrf = self.csrf(identity)
        if path == "/":
            records = self.desk.records()
            unattached = [r for r in records if r.get("kind") == "alert"
                          and r.get("drill_id") is None]
            return self.send_html(200, render_home(drill_index(records), unattached,
                                                   identity, csrf))
        match = PAGE_ROUTES.match(path)
        if match:
            drill = self.desk.drill(urllib.parse.unquote(match.group(1)))
            if match.group(2) == "/briefing":
                return self.send_html(200, render_briefing(drill, identity, csrf))
            if match.group(2) == "/trainer":
                if "trainer" not in identity.seats:
                    raise HttpError(403, "the trainer page is for DESK_TRAINER_GROUPS")
                return self.send_html(200, render_trainer(drill, identity, csrf))
            correct = None
            wanted = (query.get("correct") or [None])[0]
            if wanted:
                correct = next((r for r in drill["records"] if r.get("id") == wanted
                                and r.get("author") == identity.user), None)
                if correct is None:
                    raise HttpError(403, "correct: %s is not one of your entries" % wanted)
            return self.send_html(200, render_drill(drill, identity, csrf, correct))
        if path == "/api/whoami":
            return self.send_json(200, {"user": identity.user, "groups": identity.groups,
                                        "seats": sorted(identity.seats)})
        if path == "/api/drills":
            drills = self.desk.drills()
            return self.send_json(200, {"drills": [self.desk.drill_summary(d, identity.seats)
                                                   for d in drills.values()]})
        match = API_DRILL.match(path)
        if match:
            drill = self.desk.drill(urllib.parse.unquote(match.group(1)))
            sub, name = match.group(2), match.group(3)
            if sub is None:
                return self.send_json(200, self.desk.drill_detail(drill, identity.seats))
            if sub == "entries" and name is None:
                return self.send_json(200, {"drill_id": drill["drill_id"],
                                            "state": drill["state"],
                                            "entries": self.desk.entries(drill, identity.seats)})
            if sub == "reports" and name is not None:
                if not {"trainer", "controller"} & identity.seats:
                    raise HttpError(403, "reports are for DESK_TRAINER_GROUPS")
                report = self.desk.report(drill, urllib.parse.unquote(name))
                return self._send(200, report["content"], report["content_type"],
                                  REPORT_HEADERS)
        raise HttpError(404, "no such page: %s" % path)

    def check_origin(self):
        """403 for a browser's cross-origin POST (login CSRF included); clients that send
        neither Origin nor Sec-Fetch-Site (CLI, engine, Alertmanager) pass."""
        fetch_site = (self.headers.get("Sec-Fetch-Site") or "").strip().lower()
        if fetch_site in ("cross-site", "same-site"):
            raise HttpError(403, "Sec-Fetch-Site: POSTs from another site are refused")
        if fetch_site in ("same-origin", "none"):
            # Set by the browser itself (a page cannot forge it); its Origin may be "null"
            # (a form posted under a strict referrer policy).
            return
        origin = self.headers.get("Origin")
        if origin is not None and not same_origin(origin, self.headers.get("Host") or ""):
            raise HttpError(403, "Origin: a POST from another origin is refused")

    def _post(self, path, query):
        self.check_origin()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if path == "/login":
            self._api = False
            form = self.form_body()
            try:
                sid, session = self.desk.login(form.get("token", "").strip())
            except HttpError as exc:
                self._who = None
                return self.send_html(exc.status, render_login(exc.message))
            self._who = session["user"]
            return self.redirect("/", {"Set-Cookie": "desk_session=%s; HttpOnly; "
                                                     "SameSite=Strict; Path=/" % sid})
        if path == "/api/alertmanager":
            auth = self.headers.get("Authorization") or ""
            if auth[:7].lower() != "bearer " or not self.desk.check_secret(
                    "webhook", auth[7:].strip()):
                raise HttpError(401, "Authorization: the webhook's bearer token is required")
            self._who = WEBHOOK_USER
            stored = self.desk.ingest_alerts(self.json_body())
            return self.send_json(200, {"stored": [r["id"] for r in stored]})
        if path == "/logout":
            self._api = False
            self._form = True
            identity = self.identity(allow_bearer=False)
            if identity is None or identity.via != "session":
                return self.redirect("/login")
            self._identity = identity
            self.check_csrf(identity, self.form_body().get("csrf"))
            self.desk.logout(self.cookie("desk_session"))
            return self.redirect("/login", {"Set-Cookie": "desk_session=; HttpOnly; "
                                                          "SameSite=Strict; Path=/; Max-Age=0"})
        identity = self._need(self.identity(), False)
        if identity.via == "session":
            self._form = ctype == "application/x-www-form-urlencoded"
        if path == "/api/drills":
            return self.send_json(201, self.desk.open_drill(self._controller_body(identity)))
        match = API_DRILL.match(path)
        if not match or match.group(3) is not None or match.group(2) is None:
            raise HttpError(404, "no such endpoint: POST %s" % path)
        drill_id, action = urllib.parse.unquote(match.group(1)), match.group(2)
        if action != "entries":
            limit = MAX_REPORT_BODY if action == "reports" else MAX_BODY
            result = self.desk.controller_post(drill_id, action,
                                               self._controller_body(identity, limit))
            return self.send_json(201, result if not isinstance(result, list)
                                  else {"stored": result})
        if identity.via == "controller":
            raise HttpError(403, "entries are written by people, not the controller")
        if self._form:
            form = self.form_body()
            self.check_csrf(identity, form.get("csrf"))
            body = form_to_entry(form)
            if body.get("_followup_form"):
                resolve_form_sections(body, self.desk.drills().get(drill_id))
            record = self.desk.post_entry(identity, drill_id, body)
            target = "/drills/%s" % urllib.parse.quote(drill_id, safe="")
            return self.redirect(target + ("/trainer" if record["kind"] == "mark" else ""))
        if ctype and ctype != "application/json":
            raise HttpError(415, "Content-Type: application/json (API) or "
                                 "application/x-www-form-urlencoded (forms)")
        if identity.via == "session":
            self.check_csrf(identity, self.headers.get("X-CSRF-Token"))
        body = self.json_body()
        record = self.desk.post_entry(identity, drill_id, body)
        return self.send_json(201, visible_record(record, identity.seats, "open"))

    def _controller_body(self, identity, limit=MAX_BODY):
        if identity.via != "controller":
            raise HttpError(403, "only the drill engine (X-Desk-Controller-Token) may do this")
        return self.json_body(limit)


class _Redirect(Exception):
    def __init__(self, location):
        super().__init__(location)
        self.location = location


class DeskServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, desk):
        self.desk = desk
        super().__init__(address, Handler)


def build_server(config, store, reviewer, host="0.0.0.0", port=None, clock=time.time):
    """The HTTP server (not started): ``server.serve_forever()``; ``server.server_address``
    has the bound port (``port=0`` picks one)."""
    desk = Desk(store, reviewer, config, clock=clock)
    return DeskServer((host, config.port if port is None else port), desk)


def main(argv=None, environ=None):
    """Entry point: env config, in-cluster client, ConfigMapStore, TokenReviewer, serve."""
    del argv
    try:
        config = load_config(environ)
    except ConfigError as exc:
        log("ERROR", "config error: %s" % exc)
        return 2
    for name in ("controller", "webhook"):
        if not os.path.exists(os.path.join(config.tokens_dir, name)):
            log("WARNING", "token file missing: the %s's calls are refused until it exists"
                % name, path=os.path.join(config.tokens_dir, name))
    if k8s_rest is None:
        log("ERROR", "config error: k8s_rest.py is missing next to incident_desk.py")
        return 2
    try:
        client = k8s_rest.Client.in_cluster(user_agent="opsdrill-incident-desk/1")
        store = ConfigMapStore(client, config.namespace)
    except (k8s_rest.K8sError, OSError) as exc:
        log("ERROR", "cannot load the desk records", error=str(exc),
            namespace=config.namespace)
        return 1
    server = build_server(config, store, TokenReviewer(client))
    log("INFO", "serving", port=config.port, namespace=config.namespace,
        records=len(store.records()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
