# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: drill_catalog
short_description: Resolve a drill fault, and its scenario record, from the opsdrill catalog
version_added: 0.1.0
description:
  - Reads the catalog (C(plugins/module_utils/catalog/scenarios.yml) and C(faults.yml), plus
    optional team files) on the controller and returns one resolved fault entry
    (docs/contracts.md section 4), aimed at O(target) when given, with its scenario record.
  - With O(fault) the entry is looked up; without it one fault of the scenario (and
    variant) is picked by O(seed). A seed of 0 draws one at random; the seed is returned,
    so the same pick can be made again.
  - Unknown scenarios, variants and faults fail with the valid names.
author: opsdrill maintainers (@opsdrill)
options:
  scenario:
    description: Scenario id (a record of the catalog; unknown ids fail listing the valid ones).
    type: str
    required: true
  variant:
    description:
      - Variant of the scenario; empty picks from every variant.
      - With O(fault), empty means the variant that has the fault (fault names are unique within a scenario).
    type: str
    default: ""
  fault:
    description: Fault name within the variant; empty picks one by O(seed).
    type: str
    default: ""
  seed:
    description: Seed of the pick (0 draws one). Ignored when O(fault) is given.
    type: int
    default: 0
  target:
    description: The workload to aim the fault at, as C(name) or C(Kind/name); empty keeps the catalog's.
    type: str
    default: ""
  paths:
    description: Extra catalog files (an ops team's own scenarios and faults).
    type: list
    elements: path
    default: []
  alert_for:
    description: Alert name to the C(for) its rule has (the monitoring role's C(monitoring_alert_for)); sets RV(_raw.alert_extra_s).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Resolve the fault (picked at random when fault is empty)
  ansible.builtin.set_fact:
    drill_fault: "{{ query('opsdrill.drills.drill_catalog', scenario='outage', variant='resources', fault='', seed=0) | first }}"

- name: Aim a fault at another Deployment
  ansible.builtin.debug:
    msg: "{{ (query('opsdrill.drills.drill_catalog', scenario='outage', variant='resources',
              fault='memory_limits', target='Deployment/orders-api') | first).entry.steps }}"
"""

RETURN = r"""
_raw:
  description: One item.
  type: list
  elements: dict
  contains:
    entry:
      description: The resolved catalog entry (C(key), C(target), C(steps), C(touches), C(symptom), ...).
      type: dict
    seed:
      description: The seed of the pick; null when the fault was named.
      type: int
    picked:
      description: Whether the fault was picked by the seed (not named).
      type: bool
    faults:
      description: The names of the faults of the variant (or of the scenario, variant/name).
      type: list
      elements: str
    scenario:
      description: The scenario record (title, situation, variants, alert, expected_actions, followup, services).
      type: dict
    alerts:
      description: Every scenario's seed alert name (none may fire in the steady state).
      type: list
      elements: str
    alert_extra_s:
      description: Seconds the alert's C(for) in O(alert_for) adds to the record's (the catalog's timings assume the record's).
      type: int
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        scenario = self.get_option("scenario")
        variant = self.get_option("variant") or None
        fault = self.get_option("fault") or None
        seed = self.get_option("seed") or None
        target = self.get_option("target") or None
        try:
            faults = catalog.load(self.get_option("paths") or None)
            if fault:
                # An empty variant is the one variant that has the fault (or a clear error).
                entry, used_seed = faults.lookup(scenario, variant, fault, target), None
                variant = entry["variant"]
            else:
                entry, used_seed = faults.pick(scenario, variant, seed, target)
            names = faults.names(scenario, variant) if variant else \
                [key.split("/", 1)[1] for key in faults.keys(scenario)]
            record = faults.scenario(scenario)
            alert_for = self.get_option("alert_for") or {}
            extra_s = max(0, faults.alert_for_s(scenario, alert_for) - faults.alert_for_s(scenario))
        except (catalog.CatalogError, KeyError, ValueError) as exc:
            raise AnsibleLookupError(str(exc))
        return [{"entry": entry, "seed": used_seed, "picked": not fault, "faults": names, "scenario": record,
                 "alerts": faults.alerts(), "alert_extra_s": extra_s}]
