"""roles/drill_schedule: the CronJob and its ConfigMap, rendered the way the role renders
them (Ansible's template lookup), checked for what a scheduled drill depends on."""
import json
from pathlib import Path

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader
from ansible.template import Templar

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

ROLE = Path(__file__).resolve().parents[3] / "roles" / "drill_schedule"
INPUTS = Path(__file__).resolve().parents[3] / "playbooks" / "vars" / "inputs.yml"


def _text(**overrides):
    variables = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables.update(overrides, role_path=str(ROLE), ansible_search_path=[str(ROLE)])
    variables["_drill_schedule_control"] = snapshot.control_namespace(variables["drill_schedule_namespace"])
    loader = DataLoader()
    lookup = lookup_loader.get("template", loader=loader, templar=Templar(loader=loader, variables=variables))
    return lookup.run([str(ROLE / "templates" / "schedule.yaml.j2")], variables=variables)[0]


def render(**overrides):
    """The CronJob and the drill variables' ConfigMap, by kind."""
    return {obj["kind"]: obj for obj in yaml.safe_load_all(_text(**overrides))
            if obj["metadata"]["name"] != "opsdrill-drill-project"}


def test_a_git_project_is_cloned_and_the_drill_runs_as_the_runner_account():
    objects = render(drill_schedule_namespace="team-a", drill_schedule_cron="0 10 * * 1",
                     drill_schedule_time_zone="Europe/Amsterdam",
                     drill_schedule_drill_vars={"scenario": "outage", "variant": "resources", "drill_seed": 7},
                     drill_schedule_project_git_url="https://git.example.org/ops/opsdrill.git")
    cron, config = objects["CronJob"], objects["ConfigMap"]
    assert cron["metadata"]["namespace"] == config["metadata"]["namespace"] == "opsdrill-ctl-team-a"
    assert (cron["spec"]["schedule"], cron["spec"]["timeZone"]) == ("0 10 * * 1", "Europe/Amsterdam")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "opsdrill-runner" and pod["securityContext"]["runAsNonRoot"] is True
    clone = pod["initContainers"][0]["command"]
    assert clone[:2] == ["git", "clone"] and clone[-2:] == ["https://git.example.org/ops/opsdrill.git", "/project"]
    drill = pod["containers"][0]
    assert drill["command"] == ["ansible-runner", "run", "/runner", "--project-dir", "/project", "--playbook", "drill.yml"]
    mounts = {m["mountPath"]: m["name"] for m in drill["volumeMounts"]}
    assert mounts["/runner/env"] == "extravars" and mounts["/project"] == "project"
    # ansible-runner reads <private data dir>/env/extravars: the trainer's variables plus a
    # pod's own (in-cluster credentials, no audit log file), the namespace the schedule's.
    extravars = json.loads(config["data"]["extravars"])
    assert extravars["scenario"] == "outage" and extravars["drill_seed"] == 7
    assert (extravars["drill_namespace"], extravars["opsdrill_kubeconfig"]) == ("team-a", "")
    assert extravars["drill_artifacts_base"].startswith("/runner/")


def test_without_a_git_url_the_project_travels_in_a_configmap():
    """The scheduled version is what runs, and the pod passes the "restricted" Pod Security
    Standard the control namespace enforces (no hostPath, seccomp, no root, no capability)."""
    objects = render(_drill_schedule_project_archive="UFJPSkVDVA==")
    archives = [o for o in yaml.safe_load_all(_text(_drill_schedule_project_archive="UFJPSkVDVA=="))
                if o["metadata"]["name"] == "opsdrill-drill-project"]
    assert archives[0]["binaryData"] == {"project.tar.gz": "UFJPSkVDVA=="}
    pod = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"][:5] == ["tar", "-xzf", "/archive/project.tar.gz", "-C", "/project"]
    assert {"name": "archive", "configMap": {"name": "opsdrill-drill-project"}} in pod["volumes"]
    assert not [v for v in pod["volumes"] if "hostPath" in v]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["initContainers"] + pod["containers"]:
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_every_drill_variable_a_schedule_sets_for_the_pod_is_one_the_drill_playbook_takes():
    """The pod's own variables must pass the drill playbook's input check (inputs.yml)."""
    extravars = json.loads(render()["ConfigMap"]["data"]["extravars"])
    drill = yaml.safe_load(INPUTS.read_text())["opsdrill_inputs_playbooks"]["drill"]
    prefixes = tuple(role + "_" for role in drill.get("roles", []))
    unknown = [name for name in extravars if name not in drill["options"] and not name.startswith(prefixes)]
    assert not unknown, unknown
