"""Chaos Toolkit provider functions for the peer benchmark (scripts/bench_peer.py).

Chaos Toolkit probes are single shots and chaostoolkit-kubernetes has no generic replace,
so the experiment calls these few functions where its own ones do not reach: replace a
Deployment, and poll (every ``interval`` s, like the drill engine's 2 s) until an alert is
in a state or the namespace is healthy. They use what Chaos Toolkit uses: the official
``kubernetes`` client configured by chaostoolkit-kubernetes, and chaostoolkit-prometheus'
query. Runs in Chaos Toolkit's venv, not in opsdrill's.
"""
import time

import requests
from chaoslib.exceptions import ActivityFailed
from chaosk8s import create_k8s_api_client
from chaosk8s.pod.probes import all_pods_healthy
from chaosprometheus.probes import query
from kubernetes import client

__all__ = ["alert_state", "health_status", "replace_deployment", "until_alert", "until_healthy", "until_not_firing"]


def replace_deployment(name, ns, body, secrets=None):
    """PUT a whole Deployment (the fault's, or the snapshot's for the rollback)."""
    apps = client.AppsV1Api(create_k8s_api_client(secrets))
    apps.replace_namespaced_deployment(name, ns, body)
    return True


def alert_state(alertname, configuration=None, secrets=None):
    """firing, pending or inactive, from Prometheus' ALERTS series."""
    result = query('ALERTS{alertname="%s"}' % alertname, configuration=configuration, secrets=secrets)
    states = {sample["metric"].get("alertstate") for sample in result["data"]["result"]}
    return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"


def _poll(check, timeout, interval):
    """Call ``check`` every ``interval`` s until it returns ``(True, value)``; after
    ``timeout`` s raise ActivityFailed with the last ``value`` (what is still wrong)."""
    deadline = time.time() + timeout
    while True:
        done, value = check()
        if done:
            return value
        if time.time() >= deadline:
            raise ActivityFailed("after %s s: %s" % (timeout, value))
        time.sleep(interval)


def until_alert(alertname, state, timeout=300, interval=2, configuration=None, secrets=None):
    def check():
        current = alert_state(alertname, configuration, secrets)
        return current == state, current if current == state else "%s is %s, not %s" % (alertname, current, state)
    return _poll(check, timeout, interval)


def until_not_firing(alertnames, timeout=300, interval=2, configuration=None, secrets=None):
    """Until none of the alerts fires (pending is allowed: the drill engine's steady state)."""
    def check():
        firing = [name for name in alertnames if alert_state(name, configuration, secrets) == "firing"]
        return not firing, True if not firing else "still firing: " + ", ".join(firing)
    return _poll(check, timeout, interval)


def health_status(ns, services, port=8080, path="/health", configuration=None):
    """The worst HTTP status of the services' health endpoints (API server proxy)."""
    base = configuration["kube_proxy_url"]
    worst = 200
    for service in services:
        url = "%s/api/v1/namespaces/%s/services/%s:%s/proxy%s" % (base, ns, service, port, path)
        try:
            status = requests.get(url, timeout=5).status_code
        except requests.RequestException:
            status = 599
        worst = max(worst, status)
    return worst


def until_healthy(ns, services, port=8080, timeout=300, interval=2, configuration=None, secrets=None):
    """All pods running and ready, every health endpoint 200."""
    def check():
        healthy = (all_pods_healthy(ns, raise_on_any_unhealthy=False, secrets=secrets)
                   and health_status(ns, services, port, configuration=configuration) == 200)
        return healthy, True if healthy else "namespace %s not healthy" % ns
    return _poll(check, timeout, interval)
