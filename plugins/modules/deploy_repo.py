#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_repo
short_description: Record a stack's manifests in its deploy repository
version_added: 0.2.0
description:
  - Writes each object's manifest (C(services/<name>/<kind>.yaml), normalised, without its
    namespace) to the git repository at O(path), created when missing, and commits what
    changed in one commit. C(setup.yml) records the stack this way, so the deploy repository
    exists from the start and C(git log -p services/api-gateway) always has a history; a
    C(release) fault later adds its commit, the rollback its revert.
  - Runs on the controller; git must be installed. In check mode nothing is written, and
    C(changed) says whether a commit would be made.
author: opsdrill maintainers (@opsdrill)
options:
  path:
    description: The deploy repository (one per drill namespace).
    type: path
    required: true
  objects:
    description: The objects to record, as the API returns them (for example C(kubernetes.core.k8s_info) resources).
    type: list
    elements: dict
    required: true
  commit_message:
    description: The commit message.
    type: str
    default: Stack as deployed by setup.yml
"""

EXAMPLES = r"""
- name: Read the stack's Deployments
  kubernetes.core.k8s_info:
    kind: Deployment
    namespace: seo-tool
    label_selectors: [app.kubernetes.io/part-of=opsdrill-seo-tool]
  register: deployments

- name: Record them in the deploy repository
  opsdrill.drills.deploy_repo:
    path: ~/.local/share/opsdrill/deploy-repo/seo-tool
    objects: "{{ deployments.resources }}"
"""

RETURN = r"""
commit:
  description: The commit made; null when the repository already had every manifest.
  returned: always
  type: str
path:
  description: The repository's absolute path.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import deploy_repo

SPEC = dict(
    argument_spec=dict(
        path=dict(type="path", required=True),
        objects=dict(type="list", elements="dict", required=True),
        commit_message=dict(type="str", default="Stack as deployed by setup.yml"),
    ),
    supports_check_mode=True,
)


def run(module):
    p = module.params
    path = os.path.abspath(p["path"])  # type path: already expanded
    try:
        repo = deploy_repo.DeployRepo(path)
        if module.check_mode:
            module.exit_json(changed=bool(repo.stack_changes(p["objects"])), commit=None, path=path)
        commit = repo.record_stack(p["objects"], p["commit_message"])
    except (deploy_repo.DeployRepoError, OSError) as exc:
        module.fail_json(msg="deploy repository %s: %s" % (path, exc), path=path)
    module.exit_json(changed=commit is not None, commit=commit, path=path)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
