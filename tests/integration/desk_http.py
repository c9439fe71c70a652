"""The incident desk from the outside, as the team's tools reach it: its NodePort on the lab
node, bearer tokens from the lab's kubeconfigs. Test helpers; the desk's own code is not used."""
import json
import re
import urllib.error
import urllib.request

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot  # noqa: E402 (conftest's path)


def token_of(kubeconfig):
    """The bearer token in a lab kubeconfig (the lab writes ``token: <hex>``)."""
    with open(kubeconfig, encoding="utf-8") as handle:
        found = re.search(r"^\s*token:\s*(\S+)\s*$", handle.read(), re.M)
    assert found, "no token in %s (the lab gives every trainee and trainer one)" % kubeconfig
    return found.group(1)


class DeskHttp:
    """Plain HTTP to the desk of drill namespace ``namespace`` (the admin kubectl finds it)."""

    def __init__(self, lab, admin, namespace):
        self.home = snapshot.control_namespace(namespace)
        service = admin.json("get", "service", "incident-desk", "-n", self.home)
        port = service["spec"]["ports"][0].get("nodePort")
        assert port, "the lab's desk Service has no nodePort: %s" % service["spec"]
        self.url = "http://%s:%d" % (lab["node_ip"], port)
        self.admin = admin
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, token=None, body=None, headers=None):
        """(status, decoded JSON or text) of one request; never raises for an HTTP status."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=dict(
            headers or {}, **({"Authorization": "Bearer " + token} if token else {}),
            **({"Content-Type": "application/json"} if data is not None else {})))
        try:
            with self._opener.open(request, timeout=15) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def records(self, drill_id, token):
        status, answer = self.call("GET", "/api/drills/%s/entries" % drill_id, token)
        assert status == 200, (status, answer)
        return answer["entries"]

    def drill(self, drill_id, token):
        status, answer = self.call("GET", "/api/drills/%s" % drill_id, token)
        return answer if status == 200 else None

    def pod(self):
        pods = self.admin.json("get", "pods", "-n", self.home, "-l", "app=incident-desk")["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]
