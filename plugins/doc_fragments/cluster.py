# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """How opsdrill modules reach a cluster (set once with module_defaults group/opsdrill.drills.k8s)."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig (client certificates, tokens, token files, exec plugins and auth
        providers, through the official C(kubernetes) package).
      - Without it, first match wins - E(K8S_AUTH_KUBECONFIG) (with E(K8S_AUTH_CONTEXT));
        E(K8S_AUTH_HOST) with E(K8S_AUTH_API_KEY), E(K8S_AUTH_SSL_CA_CERT) and
        E(K8S_AUTH_VERIFY_SSL), as AWX's Kubernetes credential sets them; the pod's
        ServiceAccount in a pod; E(KUBECONFIG); C(~/.kube/config).
    type: path
  context:
    description: Kubeconfig context; default its current-context.
    type: str
"""

    # The drill namespace option of every drill module (opsdrill.drills.cluster.drill_namespace).
    DRILL_NAMESPACE = r"""
options:
  namespace:
    description:
      - Drill namespace. Its drill state, locks, dead-man's switch and standalone monitoring
        are in its control namespace C(opsdrill-ctl-<namespace>).
    type: str
    required: true
"""
