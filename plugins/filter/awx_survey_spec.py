# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX survey of an opsdrill job template from the catalog and the playbook's own
command-line spec (playbooks/awx.yml); the logic is plugins/module_utils/awx_survey.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.module_utils import awx_survey, catalog, inputs


def playbook_spec(playbook):
    """``(options, limits)`` of a playbook of playbooks/vars/inputs.yml, forwards resolved
    against its roles' argument specs, as validate_inputs resolves them."""
    spec = inputs.read_yaml(inputs.INPUTS_FILE)
    playbooks = spec["opsdrill_inputs_playbooks"]
    if playbook not in playbooks:
        raise AnsibleFilterError("awx_survey_spec: playbook must be one of %s, got %r" % (", ".join(playbooks), playbook))
    roles = {role: inputs.collection_role_options(role) for role in playbooks[playbook]["roles"]}
    return inputs.playbook_options(playbooks[playbook], roles), spec["opsdrill_inputs_limits"]


def awx_survey_spec(catalog_paths, playbook="drill", defaults=None, variables=None, name=None):
    options, limits = playbook_spec(playbook)
    try:
        return awx_survey.survey_spec(catalog.load(list(catalog_paths or [])), options, limits, defaults=defaults,
                                      variables=variables, name=name or "opsdrill %s" % playbook,
                                      description="The command-line variables of playbooks/%s.yml." % playbook)
    except (catalog.CatalogError, awx_survey.SurveyError) as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"awx_survey_spec": awx_survey_spec}
