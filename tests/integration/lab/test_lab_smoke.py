"""The lab is a real Kubernetes: DNS through CoreDNS, kernel OOM kills, config errors, audit."""
import json
import os
import time
from pathlib import Path

import pytest

from kubectl import Kube

pytestmark = pytest.mark.lab


def _pod(name, namespace, image, command, memory_limit="64Mi", env=None, restart="Never"):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": name, "image": image, "imagePullPolicy": "Never", "command": command,
                "env": env or [],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "500m", "memory": memory_limit}},
            }],
        },
    }


def _container_state(kube, namespace, pod):
    obj = kube.json("get", "pod", pod, "-n", namespace)
    statuses = obj.get("status", {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def test_node_is_ready(admin, lab):
    node = admin.json("get", "nodes")["items"]
    assert len(node) == 1
    conditions = {c["type"]: c["status"] for c in node[0]["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert node[0]["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.34.")
    addresses = {a["type"]: a["address"] for a in node[0]["status"]["addresses"]}
    assert addresses["InternalIP"].startswith("198.1")


def test_pod_reaches_a_service_by_dns_name(admin, lab, scratch_namespace):
    image = lab["images"]["python"]
    server = _pod("echo", scratch_namespace, image,
                  ["python3", "-c", "import http.server as h\n"
                   "class E(h.BaseHTTPRequestHandler):\n"
                   "  def do_GET(self):\n"
                   "    self.send_response(200); self.end_headers(); self.wfile.write(b'pong-from-echo')\n"
                   "h.ThreadingHTTPServer(('', 8080), E).serve_forever()"], restart="Always")
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": scratch_namespace},
               "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    admin.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": [server, service]}))
    admin.run("wait", "--for=condition=Ready", "pod/echo", "-n", scratch_namespace, "--timeout=90s")
    fqdn = f"echo.{scratch_namespace}.svc.cluster.local"
    client = _pod("client", scratch_namespace, image,
                  ["python3", "-c", "import socket, urllib.request, time\n"
                   f"print('resolved', socket.gethostbyname('{fqdn}'))\n"
                   # kube-proxy programs the Service a moment after the pod is Ready.
                   "for attempt in range(30):\n"
                   "  try:\n"
                   f"    print(urllib.request.urlopen('http://{fqdn}/', timeout=5).read().decode()); break\n"
                   "  except OSError as exc:\n"
                   "    print('retry', exc); time.sleep(0.5)\n"])
    admin.apply(json.dumps(client))
    state = admin.wait_for("client pod to finish", lambda: _container_state(admin, scratch_namespace, "client")
                           .get("state", {}).get("terminated"), timeout=90)
    logs = admin.run("logs", "client", "-n", scratch_namespace).stdout
    assert state["exitCode"] == 0, logs
    assert "pong-from-echo" in logs
    service_ip = admin.json("get", "service", "echo", "-n", scratch_namespace)["spec"]["clusterIP"]
    assert f"resolved {service_ip}" in logs


def test_pods_reach_the_api_server_and_dns_on_the_node_but_nothing_else(admin, lab, scratch_namespace):
    """The pod guard: from a pod, the node address answers on 6443 (API server) and 53 (DNS);
    the kubelet (10250) and any other host port are refused at once."""
    node_ip = next(a["address"] for a in admin.json("get", "nodes")["items"][0]["status"]["addresses"]
                   if a["type"] == "InternalIP")
    probe = _pod("probe", scratch_namespace, lab["images"]["python"],
                 ["python3", "-c", "import socket\n"
                  "for port in (6443, 53, 10250, 10256, 22):\n"
                  "  s = socket.socket(); s.settimeout(3)\n"
                  f"  print(port, s.connect_ex(('{node_ip}', port)))\n"])
    admin.apply(json.dumps(probe))
    state = admin.wait_for("probe pod to finish", lambda: _container_state(admin, scratch_namespace, "probe")
                           .get("state", {}).get("terminated"), timeout=90)
    logs = admin.run("logs", "probe", "-n", scratch_namespace).stdout
    results = dict(line.split() for line in logs.splitlines() if line.strip())
    assert state["exitCode"] == 0, logs
    assert results["6443"] == "0" and results["53"] == "0", logs
    assert all(results[port] != "0" for port in ("10250", "10256", "22")), logs


def test_memory_limit_gives_a_kernel_oom_kill(admin, lab, scratch_namespace):
    # 100 MB written byte by byte (not a lazy zero page) into a 32Mi cgroup.
    pod = _pod("hog", scratch_namespace, lab["images"]["python"],
               ["python3", "-c", "data = b'x' * (100 * 1024 * 1024); print(len(data))"], memory_limit="32Mi")
    admin.apply(json.dumps(pod))
    state = admin.wait_for("hog to terminate", lambda: _container_state(admin, scratch_namespace, "hog")
                           .get("state", {}).get("terminated"), timeout=90)
    assert state["reason"] == "OOMKilled"
    assert state["exitCode"] == 137


def test_missing_secret_key_gives_create_container_config_error(admin, lab, scratch_namespace):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": scratch_namespace},
              "stringData": {"user": "seo"}}
    pod = _pod("needs-secret", scratch_namespace, lab["images"]["python"], ["python3", "-c", "print('never')"],
               env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}])
    admin.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": [secret, pod]}))

    def settled_waiting():
        waiting = _container_state(admin, scratch_namespace, "needs-secret").get("state", {}).get("waiting") or {}
        return waiting if waiting.get("reason") not in (None, "ContainerCreating") else None

    waiting = admin.wait_for("needs-secret to wait on its config", settled_waiting, timeout=60)
    assert waiting["reason"] == "CreateContainerConfigError"
    assert "password" in waiting.get("message", "")


def test_trainee_actions_reach_the_audit_log(admin, lab, scratch_namespace):
    trainee, kubeconfig = next(iter(lab["trainee_kubeconfigs"].items()))
    marker_started = time.time()
    trainee_kube = Kube(lab["kubectl"], kubeconfig)
    # Trainees hold no cluster-wide role: outside the drill namespaces bound to them (and in
    # the drills' control namespaces) every request is refused, and still audited.
    listed = trainee_kube.run("get", "pods", "-n", scratch_namespace, check=False)
    assert listed.returncode != 0 and "forbidden" in listed.stderr.lower()
    denied = trainee_kube.run("delete", "namespace", scratch_namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    may_create = trainee_kube.run("auth", "can-i", "create", "pods", "-n", scratch_namespace, check=False)
    assert may_create.stdout.strip() == "no"

    def find_event():
        with open(lab["audit_log"], encoding="utf-8") as handle:
            for line in handle:
                event = json.loads(line)
                ref = event.get("objectRef", {})
                # Some events (e.g. anonymous health probes) carry no username.
                if (event.get("user", {}).get("username") == trainee and event["verb"] == "list"
                        and ref.get("resource") == "pods" and ref.get("namespace") == scratch_namespace
                        and event["stage"] == "ResponseComplete"):
                    return event
        return None

    event = admin.wait_for("the trainee's list pods in the audit log", find_event, timeout=20)
    assert event["responseStatus"]["code"] == 403
    assert "opsdrill:trainees" in event["user"]["groups"]
    # Audit timestamps are the cluster's own clock; the event happened during this test.
    from datetime import datetime
    stamp = datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00")).timestamp()
    assert marker_started - 5 <= stamp <= time.time() + 5


@pytest.mark.parametrize("spec_extra, container_extra", [
    ({}, {"securityContext": {"privileged": True}}),
    ({"hostNetwork": True}, {}),
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, {"volumeMounts": [{"name": "root", "mountPath": "/h"}]}),
], ids=["privileged", "hostNetwork", "hostPath"])
def test_pod_security_baseline_is_the_default(admin, scratch_namespace, spec_extra, container_extra):
    """The lab's API server enforces Pod Security baseline in a namespace without labels:
    even the admin cannot create a pod that would be root on the node."""
    container = dict({"name": "x", "image": "localhost/opsdrill/python:3.11", "imagePullPolicy": "Never",
                      "command": ["sleep", "5"]}, **container_extra)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "escape", "namespace": scratch_namespace},
           "spec": dict({"containers": [container]}, **spec_extra)}
    proc = admin.run("create", "-f", "-", input_text=json.dumps(pod), check=False)
    assert proc.returncode != 0 and "violates PodSecurity" in proc.stderr, proc.stderr


def _etcd_version(pki, cert=None, plain=False):
    """GET /version from the lab's etcd; returns the body, or the error's text."""
    import http.client
    import ssl
    if plain:
        conn = http.client.HTTPConnection("127.0.0.1", 2379, timeout=5)
    else:
        context = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
        if cert:
            context.load_cert_chain(str(pki / (cert + ".crt")), str(pki / (cert + ".key")))
        conn = http.client.HTTPSConnection("127.0.0.1", 2379, timeout=5, context=context)
    try:
        conn.request("GET", "/version")
        response = conn.getresponse()
        return "HTTP %d %s" % (response.status, response.read().decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException) as exc:
        return "refused: %s" % exc
    finally:
        conn.close()


def test_etcd_answers_only_its_own_clients(lab):
    """etcd holds every Secret in the clear: it speaks TLS only and wants a client certificate
    from its own CA. The cluster CA's certificates (a trainee's, even the admin's) do not
    open it."""
    pki = Path(os.environ.get("OPSDRILL_LAB_DIR", "/var/lib/opsdrill-lab")) / "pki"
    assert '"etcdserver"' in _etcd_version(pki, "apiserver-etcd-client")
    assert _etcd_version(pki, plain=True).startswith(("refused", "HTTP 400"))
    assert _etcd_version(pki).startswith("refused")
    trainee = next(iter(lab["trainee_kubeconfigs"]))
    for cert in ("trainee-" + trainee, "admin"):
        assert _etcd_version(pki, cert).startswith("refused"), cert


def test_rerunning_the_lab_playbook_changes_nothing(lab):
    from playbook import run_playbook
    result = run_playbook("lab.yml", "lab_state=present")
    assert result.returncode == 0, result.stdout[-3000:]
    recap = [line for line in result.stdout.splitlines() if line.startswith("localhost")][-1]
    assert "changed=0" in recap and "failed=0" in recap, recap
