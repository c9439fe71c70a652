# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a namespace's steady state from what the API and Prometheus report (pure logic)."""

from __future__ import annotations

import json
import time


def deployment_problems(deployments):
    """Problems of Deployment objects (API dicts): not rolled out, or fewer available replicas than wanted."""
    problems = []
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        spec = deployment.get("spec", {})
        status = deployment.get("status", {}) or {}
        wanted = spec.get("replicas", 1)
        if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
            problems.append(f"Deployment/{name}: new generation not yet observed")
            continue
        available = status.get("availableReplicas", 0) or 0
        updated = status.get("updatedReplicas", 0) or 0
        total = status.get("replicas", 0) or 0
        if available < wanted or updated < wanted or total > wanted:
            problems.append(f"Deployment/{name}: {available}/{wanted} available, {updated} updated, {total} total")
    return problems


def health_problems(results):
    """results: [{"name": ..., "status": int, "body": str}]; anything but 200 is a problem."""
    problems = []
    for result in results:
        if result["status"] != 200:
            body = (result.get("body") or "").strip().replace("\n", " ")[:200]
            problems.append(f"{result['name']} /health answered {result['status']}: {body}")
    return problems


def firing_alerts(alerts_response, names=None):
    """Names of firing alerts in a Prometheus /api/v1/alerts JSON body (optionally only those in names)."""
    try:
        payload = json.loads(alerts_response) if isinstance(alerts_response, str) else alerts_response
        alerts = payload["data"]["alerts"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a Prometheus /api/v1/alerts response: {exc}") from exc
    firing = sorted({a["labels"]["alertname"] for a in alerts if a.get("state") == "firing"})
    if names:
        firing = [name for name in firing if name in names]
    return firing


def pending_alerts(alerts_response, names=None):
    """Names of pending (not yet firing) alerts, same input as firing_alerts."""
    payload = json.loads(alerts_response) if isinstance(alerts_response, str) else alerts_response
    pending = sorted({a["labels"]["alertname"] for a in payload["data"]["alerts"] if a.get("state") == "pending"})
    return [name for name in pending if not names or name in names]


def rule_names(rules_response):
    """Alerting rule names loaded in Prometheus, from a /api/v1/rules JSON body."""
    payload = json.loads(rules_response) if isinstance(rules_response, str) else rules_response
    return sorted({rule["name"] for group in payload["data"]["groups"] for rule in group["rules"] if rule.get("type") == "alerting"})


class Hold:
    """A recovery that must hold: healthy for ``hold_s`` seconds with at least
    ``min_checks`` healthy looks in a row. ``observe`` each look; it answers True once
    the stretch has held. ``since`` is when the stretch began (the recovery's time), a
    relapse starts it again."""

    def __init__(self, hold_s, min_checks=1):
        self.hold_s = float(hold_s)
        self.min_checks = max(1, int(min_checks))
        self.since = None
        self.last = None
        self.checks = 0
        self.relapses = 0
        self.held = False

    @property
    def held_s(self):
        return round(self.last - self.since, 1) if self.since is not None else 0.0

    def observe(self, at, healthy):
        if not healthy:
            if self.since is not None:
                self.relapses += 1
            self.since, self.last, self.checks = None, None, 0
            return False
        if self.since is None:
            self.since = at
        self.last = at
        self.checks += 1
        self.held = self.checks >= self.min_checks and at - self.since >= self.hold_s
        return self.held


def wait_until_held(look, hold, timeout_at, begin_by=None, poll_s=5.0, clock=None, sleep=None):
    """Call ``look()`` (a dict with ``healthy``) every ``poll_s`` seconds and feed ``hold``
    until it holds or ``timeout_at`` passes. A healthy stretch counts only when it began by
    ``begin_by``: once that time has passed with none under way, the wait ends. Returns the
    last look."""
    clock = clock or time.time
    sleep = sleep or time.sleep
    while True:
        now = clock()
        result = look()
        if begin_by is not None and now >= begin_by and hold.since is None:
            return result  # no stretch under way by the end of the window: none can count
        if hold.observe(now, result["healthy"]) or clock() >= timeout_at:
            return result
        sleep(max(0.0, min(poll_s, timeout_at - clock())))
