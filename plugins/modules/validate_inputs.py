#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: validate_inputs
short_description: Refuse bad command-line input before a playbook changes anything
version_added: 0.2.0
description:
  - With O(playbook), checks every extra var of the run (C(-e NAME=VALUE)) against the playbook's
    variables in C(playbooks/vars/inputs.yml) and the argument specs of the roles it uses - type,
    choices, range, pattern, and the files it names (exists, size limit, valid content). Unknown
    variables are refused with the closest valid name. C(ansible_*), C(awx_*) and C(tower_*) pass.
  - With O(scenario), the variant, the fault and the target are also checked against the fault catalog.
  - With O(role), checks every C(<role>_*) variable in scope (a play that includes the role) the same way.
  - Fails with one line per problem, each naming the variable, its value and what is allowed.
  - Runs on the controller (action plugin); it changes nothing.
author: opsdrill maintainers (@opsdrill)
options:
  playbook:
    description: Name of the playbook in C(playbooks/vars/inputs.yml) (drill, setup, teardown, rollback, lab).
    type: str
  scenario:
    description: Scenario of a drill playbook (a scenario record of the catalog, team catalog files included).
    type: str
  playbook_scenario:
    description: The scenario a per-scenario playbook (drill-outage.yml) runs; an extra var C(scenario) that differs is refused.
    type: str
  role:
    description: Validate this role's variables in scope instead of the command line.
    type: str
"""

EXAMPLES = r"""
- name: Validate the command line before anything changes
  opsdrill.drills.validate_inputs:
    playbook: drill
    scenario: outage
  register: drill_inputs
"""

RETURN = r"""
validated:
  description: The playbook's variables, typed, with their defaults filled in (empty with O(role)).
  returned: always
  type: dict
problems:
  description: One line per problem.
  returned: failed
  type: list
  elements: str
"""
