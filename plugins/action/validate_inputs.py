# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of opsdrill.drills.validate_inputs (documentation: plugins/modules/validate_inputs.py).

Runs on the controller: it needs the run's extra vars (the command line), the collection's
files (playbooks/vars/inputs.yml, the roles' argument specs, the fault catalog) and the
controller's file system (artifacts dir, desk file). The checks are plain Python in
module_utils/inputs.py.
"""
from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils import inputs


def _fault_problems(scenario, values, catalog_paths, prefix=""):
    """Variant, fault and target against the catalog: one line naming the variable
    (``prefix`` + variant, fault, target)."""
    faults = catalog.load(catalog_paths or None)
    variant = values.get(prefix + "variant") or None
    fault = values.get(prefix + "fault") or None
    for name, check in (("scenario", lambda: faults.check_names(scenario)),
                        ("variant", lambda: faults.check_names(scenario, variant)),
                        ("fault", lambda: fault and faults.lookup(scenario, variant, fault))):
        try:
            check()
        except catalog.CatalogError as exc:
            return ["%s: %s" % (name if name == "scenario" and not prefix else prefix + name, exc)]
    target = values.get(prefix + "target") or ""
    if "/" in target and target.split("/", 1)[0] not in catalog.KINDS:
        return ["%starget: kind %r is not one a fault can aim at; allowed: %s"
                % (prefix, target.split("/", 1)[0], ", ".join(catalog.KINDS))]
    return []


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("playbook", "scenario", "playbook_scenario", "role"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        spec = inputs.read_yaml(inputs.INPUTS_FILE)
        limits = spec["opsdrill_inputs_limits"]
        checks = inputs.file_checks()
        values = {}
        if args.get("role"):
            role = args["role"]
            prefix = role + "_"
            present = {name: self._templar.template(value) for name, value in task_vars.items()
                       if name.startswith(prefix)}
            problems = inputs.validate_role_vars(role, present, inputs.collection_role_options(role), limits, checks)
            if role == "drill_engine" and not problems and present.get("drill_engine_scenario"):
                problems = _fault_problems(present["drill_engine_scenario"], present,
                                           present.get("drill_engine_catalog_paths"), prefix="drill_engine_")
        else:
            name = args.get("playbook")
            playbooks = spec["opsdrill_inputs_playbooks"]
            if name not in playbooks:
                raise AnsibleError("validate_inputs: playbook must be one of %s, got %r" % (", ".join(playbooks), name))
            roles = {role: inputs.collection_role_options(role) for role in playbooks[name]["roles"]}
            options = inputs.playbook_options(playbooks[name], roles)
            # The command line, plus the playbook's variables set elsewhere (an inventory's
            # group_vars, an AWX job template): those are validated as well, never refused.
            given = {key: task_vars[key] for key in options if key in task_vars}
            extra_vars = load_extra_vars(self._loader)
            given.update(extra_vars)
            given = {key: self._templar.template(task_vars.get(key, value)) for key, value in given.items()}
            values, problems = inputs.validate_extra_vars(given, options, roles, limits,
                                                          playbook="%s.yml" % name, file_checks=checks)
            fixed = args.get("playbook_scenario")
            if fixed and "scenario" in extra_vars and extra_vars["scenario"] != fixed:
                # drill-outage.yml -e scenario=error_spike would run another drill than its name says.
                problems.append("scenario: %s runs scenario %s; for %s run playbooks/drill.yml -e scenario=%s"
                                % (catalog.playbook_of(fixed), fixed, extra_vars["scenario"], extra_vars["scenario"]))
            if args.get("scenario") and not problems:
                problems = _fault_problems(args["scenario"], values, values.get("opsdrill_catalog_paths")
                                           or given.get("drill_engine_catalog_paths"))
        result["changed"] = False
        if problems:
            result.update(failed=True, msg=inputs.message(problems), problems=problems)
        else:
            result["validated"] = values
        return result
