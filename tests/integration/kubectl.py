"""kubectl driven from tests, with JSON helpers and polling."""
import json
import subprocess
import time


class Kube:
    """kubectl against one kubeconfig, with JSON helpers."""

    def __init__(self, kubectl, kubeconfig):
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig

    def run(self, *args, check=True, input_text=None, timeout=120):
        proc = subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, *args], capture_output=True,
                              text=True, input=input_text, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def json(self, *args):
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, manifest):
        return self.run("apply", "-f", "-", input_text=manifest)

    def wait_for(self, what, predicate, timeout=120, interval=1.0):
        """Poll predicate() until it returns a truthy value; fail naming what was awaited."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")
