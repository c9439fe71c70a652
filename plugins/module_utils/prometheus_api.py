# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reach Prometheus either through the API server's service proxy or at a URL."""

from __future__ import annotations

from ansible.module_utils.urls import open_url

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


def service_of(namespace, prometheus):
    """(namespace, service, port) that ``prometheus`` names for drill namespace ``namespace``.

    ``service:port`` is a Service in the drill namespace's control namespace, where the
    standalone monitoring runs (trainees cannot change it there); ``other/service:port``
    names another namespace (an operator's Prometheus, say).
    """
    where, _slash, rest = prometheus.rpartition("/")
    service, _colon, port = rest.partition(":")
    return where or snapshot.control_namespace(namespace), service, port or "80"


def prometheus_get(client, namespace, prometheus, path, query=None, timeout=10):
    """GET path from Prometheus for drill namespace ``namespace``; ``prometheus`` is an http(s)
    URL, ``service:port`` (in the control namespace) or ``namespace/service:port``.

    Returns (status, body text).
    """
    if prometheus.startswith(("http://", "https://")):
        from urllib.parse import urlencode
        url = prometheus.rstrip("/") + path + (("?" + urlencode(query)) if query else "")
        try:
            response = open_url(url, timeout=timeout)
            return response.getcode(), response.read().decode("utf-8")
        except Exception as exc:  # urllib raises HTTPError/URLError/socket errors
            return getattr(exc, "code", 0) or 0, str(exc)
    where, service, port = service_of(namespace, prometheus)
    return client.get_status(k8s_rest.service_proxy_path(where, service, port, path), query)
