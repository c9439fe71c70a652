# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reach Prometheus either through the API server's service proxy or at a URL."""

from __future__ import annotations

from ansible.module_utils.urls import open_url

from ansible_collections.opsdrill.drills.plugins.module_utils import kube_client


def prometheus_get(api, namespace, prometheus, path, query=None, timeout=10):
    """GET path from Prometheus; prometheus is 'service:port' in namespace, or an http(s) URL.

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
    service, _sep, port = prometheus.partition(":")
    return kube_client.raw_get(api, kube_client.service_proxy_path(namespace, service, port or "80", path), timeout, query)
