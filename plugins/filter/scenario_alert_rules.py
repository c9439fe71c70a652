# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the scenario records: every scenario's seed alert as Prometheus rules
(scenario_alert_rules) or names (scenario_alert_names), and the services of the steady
state (scenario_services)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils.catalog.scenario_record import alert_rule


def scenario_alert_rules(catalog_paths, namespace, mode="standalone", rate_window="1m", alert_for=None,
                         thresholds=None):
    try:
        records = catalog.load(list(catalog_paths or [])).scenarios()
    except catalog.CatalogError as exc:
        raise AnsibleFilterError(str(exc))
    known = {record["alert"]["name"] for record in records}
    for field, overrides in (("monitoring_alert_for", alert_for), ("monitoring_alert_thresholds", thresholds)):
        unknown = sorted(set(overrides or {}) - known)
        if unknown:
            raise AnsibleFilterError("%s: no scenario raises %s; seed alerts: %s"
                                     % (field, ", ".join(unknown), ", ".join(sorted(known))))
    return [alert_rule(record, namespace, mode, rate_window, alert_for, thresholds) for record in records]


def scenario_alert_names(catalog_paths):
    """Every scenario's seed alert name: none may fire in the steady state."""
    try:
        return catalog.load(list(catalog_paths or [])).alerts()
    except catalog.CatalogError as exc:
        raise AnsibleFilterError(str(exc))


def scenario_services(catalog_paths):
    """Every scenario's steady-state services (each once): their /health must answer."""
    try:
        return catalog.load(list(catalog_paths or [])).services()
    except catalog.CatalogError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"scenario_alert_rules": scenario_alert_rules, "scenario_alert_names": scenario_alert_names,
                "scenario_services": scenario_services}
