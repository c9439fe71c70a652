# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a namespace's steady state from what the API and Prometheus report (pure logic)."""

from __future__ import annotations

import json


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
