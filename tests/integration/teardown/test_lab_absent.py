"""After `lab.yml -e lab_state=absent` nothing of the lab is left: processes, mounts,
interfaces, iptables rules, network namespaces, cgroups, directories."""
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.teardown
LAB_DIR = "/var/lib/opsdrill-lab"
RUN_DIR = "/run/opsdrill-lab"


def _out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def test_no_lab_process_left():
    procs = _out("ps", "-eo", "pid,args")
    leftovers = [line for line in procs.splitlines()
                 if ".cache/opsdrill/lab/bin/" in line or "opsdrill-lab" in line or "lab_supervisor.py" in line]
    assert leftovers == []


def test_no_container_left():
    assert "containerd-shim" not in _out("ps", "-eo", "args")
    assert not Path("/sys/fs/cgroup/memory/kubepods").exists()
    assert not Path("/sys/fs/cgroup/pids/kubepods").exists()


def test_no_mount_left():
    mounts = Path("/proc/mounts").read_text()
    assert LAB_DIR not in mounts and RUN_DIR not in mounts


def test_no_interface_left():
    links = _out("ip", "-o", "link")
    assert "opsdrill0" not in links and "opsdrill-cni0" not in links
    assert "198.18." not in _out("ip", "-o", "addr")


def test_no_iptables_rule_left():
    for table in ("filter", "nat", "mangle"):
        rules = _out("iptables", "-w", "-t", table, "-S")
        assert "KUBE-" not in rules and "OPSDRILL" not in rules, table


def test_no_pod_network_namespace_left():
    assert [ns for ns in _out("ip", "netns", "list").split() if ns.startswith("cni-")] == []


def test_lab_directories_removed_and_cache_kept():
    assert not os.path.exists(LAB_DIR) and not os.path.exists(RUN_DIR)
    assert (Path.home() / ".cache/opsdrill/lab/bin").is_dir()
