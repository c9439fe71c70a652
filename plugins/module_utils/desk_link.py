# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill engine's side of the incident desk (docs/incident-desk.md).

The engine reaches the desk through the API server's service proxy with its own
credentials, and proves to the desk that it is the controller with the token in the
Secret ``incident-desk-tokens`` of the control namespace (trainees cannot read it).
Nothing here may stop a drill: the module turns every failure into ``available: False``
and a warning, and the rollback never waits for the desk.

Pure helpers (unit-tested) turn the desk's records into the scorer's inputs: witnessed
entries (superseded versions dropped) and the trainers' marks.
"""
from __future__ import annotations

import base64

from .runtime import k8s_rest
from .runtime import snapshot

SERVICE = "incident-desk"
TOKENS_SECRET = "incident-desk-tokens"
CONTROLLER_HEADER = "X-Desk-Controller-Token"
TEAM_KINDS = ("acknowledge", "role", "status_update", "log", "coordination", "fix", "postmortem")

__all__ = ["DeskLink", "DeskUnavailable", "desk_marks", "postmortem_records", "scoring_records"]


class DeskUnavailable(Exception):
    """No desk in the control namespace, or it did not answer."""


class DeskLink:
    """Controller calls to the desk of drill namespace ``namespace``."""

    def __init__(self, client, namespace):
        self.client = client
        self.home = snapshot.control_namespace(namespace)
        self._token = None

    def _controller_token(self):
        if self._token is None:
            secret = self.client.get_or_none("Secret", TOKENS_SECRET, self.home)
            if secret is None:
                raise DeskUnavailable("no incident desk in namespace %s (Secret %s missing; setup.yml deploys it)"
                                      % (self.home, TOKENS_SECRET))
            try:
                self._token = base64.b64decode(secret["data"]["controller"]).decode("utf-8")
            except (KeyError, TypeError, ValueError) as exc:
                raise DeskUnavailable("Secret %s/%s has no usable key controller: %s" % (self.home, TOKENS_SECRET, exc))
        return self._token

    def call(self, method, path, body=None):
        proxy = k8s_rest.service_proxy_path(self.home, SERVICE, 80, path, scheme="http")
        try:
            return self.client.request(method, proxy, body=body,
                                       headers={CONTROLLER_HEADER: self._controller_token()})
        except k8s_rest.ApiError as exc:
            raise DeskUnavailable("incident desk %s %s: %s" % (method, path, exc))

    def drill_call(self, method, drill_id, action, body=None):
        """``/api/drills/<id>/<action>`` of one drill."""
        return self.call(method, "/api/drills/%s/%s" % (drill_id, action), body)

    def records(self, drill_id):
        return self.drill_call("GET", drill_id, "entries").get("entries", [])


def _latest_versions(records):
    superseded = {r.get("supersedes") for r in records if r.get("supersedes")}
    return [r for r in records if r.get("id") not in superseded]


def scoring_records(records, followup=None):
    """The team's entries the scorer reads: team kinds only, the latest version of each
    corrected entry, post-mortems with the Follow-up headings the drill offered."""
    out = []
    for record in _latest_versions([r for r in records if r.get("kind") in TEAM_KINDS]):
        if record.get("kind") == "postmortem":
            record = dict(record, data=dict(record.get("data") or {}, followup=followup or {}))
        out.append(record)
    return out


def postmortem_records(records):
    return [r for r in records if r.get("kind") == "postmortem"]


def desk_marks(records, mark_targets):
    """Trainer marks given on the desk, as the scorer's ``trainer_marks`` mapping (the
    latest mark per target wins), and a warning per mark the rubric cannot take."""
    points = {t["id"]: t.get("points") for t in mark_targets or []}
    marks, warnings = {}, []
    for record in _latest_versions([r for r in records if r.get("kind") == "mark"]):
        target = record.get("target")
        body = {"by": record.get("author"), "note": record.get("text") or record.get("note") or None}
        if record.get("score") is not None:
            body["score"] = record["score"]
        elif record.get("pass") is not None:
            body["pass"] = bool(record["pass"])
        else:
            continue
        limit = points.get(target, "unknown")
        if limit == "unknown":
            warnings.append("desk mark %s by %s ignored: %s is not a criterion or checklist item of this drill"
                            % (record.get("id"), record.get("author"), target))
            continue
        if "score" in body and (limit is None or not 0 <= float(body["score"]) <= float(limit)):
            warnings.append("desk mark %s by %s ignored: score %s is not between 0 and %s"
                            % (record.get("id"), record.get("author"), body["score"], limit))
            continue
        marks[target] = body
    return marks, warnings
