#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: drill_desk
short_description: The drill engine's calls to the incident desk
version_added: 0.8.0
description:
  - Opens a drill on the incident desk (docs/incident-desk.md), closes it, waits for the team's
    post-mortem, collects the witnessed entries and the trainers' marks for the scorecard, and
    archives the drill's reports there.
  - Reaches the desk through the API server's service proxy and proves itself with the
    controller token of Secret C(incident-desk-tokens) in the control namespace.
  - It never fails. Without a desk, or when the desk does not answer, it returns C(available=false)
    and a warning; the drill and its rollback go on.
author: opsdrill maintainers (@opsdrill)
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
  - opsdrill.drills.rubric
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [open, close, collect, archive]
  drill:
    description: The drill (C(drill_id), C(scenario), C(variant), C(fault)).
    type: dict
    required: true
  scenario:
    description: For O(action=open), the scenario record (C(title), C(alert.name), ...; the drill_catalog lookup's C(scenario)).
    type: dict
    default: {}
  catalog_entry:
    description: For O(action=open), the fault's catalog entry (only trainers see it on the desk).
    type: dict
    default: {}
  briefing:
    description: For O(action=open), the team briefing's sections (title to text).
    type: dict
    default: {}
  rubric_file:
    description: Rubric whose criteria and checklist items trainers may mark (default rubric when empty).
    type: path
  postmortem_wait_s:
    description: For O(action=collect), how long to wait for the team's post-mortem (0 - not at all).
    type: int
    default: 0
  poll_s:
    description: Seconds between looks while waiting for the post-mortem.
    type: int
    default: 5
  artifacts_dir:
    description:
      - The drill's artifacts dir. Its timeline's events that the desk has not seen yet are sent with every
        action, for the trainer's live timeline (only trainers see them before the drill closes).
    type: path
  reports:
    description: For O(action=archive), report name to file path.
    type: dict
    default: {}
  summary:
    description: For O(action=archive), the drill's C(team), C(mtta_s), C(mttr_s) and C(percent) for the desk's history.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Collect the team's witnessed entries, after up to 10 minutes for the post-mortem
  opsdrill.drills.drill_desk:
    namespace: seo-tool
    action: collect
    drill: "{{ drill }}"
    postmortem_wait_s: 600
  register: desk
"""

RETURN = r"""
available:
  description: Whether the desk answered.
  returned: always
  type: bool
entries:
  description: For O(action=collect), the team's witnessed entries (latest versions), for the scorecard.
  returned: when available
  type: list
  elements: dict
marks:
  description: For O(action=collect), the trainers' marks, as the scorecard's C(trainer_marks).
  returned: when available
  type: dict
postmortem:
  description: For O(action=collect), whether a post-mortem was written.
  returned: when available
  type: bool
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import desk_link
from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.rubric import RUBRIC_ARGUMENT_SPEC, rubric_from_data

SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        action={"type": "str", "required": True, "choices": ["open", "close", "collect", "archive"]},
        drill={"type": "dict", "required": True},
        scenario={"type": "dict", "default": {}},
        catalog_entry={"type": "dict", "default": {}},
        briefing={"type": "dict", "default": {}},
        rubric_file={"type": "path"},
        **RUBRIC_ARGUMENT_SPEC,
        postmortem_wait_s={"type": "int", "default": 0},
        poll_s={"type": "int", "default": 5},
        artifacts_dir={"type": "path"},
        reports={"type": "dict", "default": {}},
        summary={"type": "dict", "default": {}},
        **engine_client.CLUSTER_ARGUMENT_SPEC),
    supports_check_mode=True,
)

# Report files the desk archives, by extension.
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".md": "text/markdown; charset=utf-8",
                 ".json": "application/json", ".xml": "application/xml"}


def _rubric_parts(argument, scenario):
    rubric = rubric_from_data(argument["data"], argument["origin"])
    targets = [{"id": c.id, "title": c.for_scenario(scenario)[0], "points": c.points} for c in rubric.criteria_for(scenario)]
    checklist = rubric.checklist_for(scenario) or {}
    for phase in checklist.get("phases", []):
        targets.extend({"id": i["id"], "title": i["title"], "points": None} for i in phase.get("items", []))
    return targets, rubric.followup.get(scenario) or {}


def _open(link, p):
    drill, entry = p["drill"], p["catalog_entry"]
    targets, followup = _rubric_parts(p["rubric"], drill["scenario"])
    link.call("POST", "/api/drills", {
        "drill_id": drill["drill_id"], "namespace": p["namespace"], "scenario": drill["scenario"],
        "variant": drill.get("variant"), "title": p["scenario"].get("title") or drill["scenario"],
        "alert": (p["scenario"].get("alert") or {}).get("name"), "briefing": p["briefing"],
        "fault": {"key": entry.get("key"), "title": entry.get("title"),
                  "symptom": (entry.get("symptom") or {}).get("description"), "target": entry.get("target")},
        "mark_targets": targets, "followup": followup,
    })
    return {}


def _collect(link, p, module):
    drill = p["drill"]
    deadline = time.time() + max(0, p["postmortem_wait_s"])
    records = link.records(drill["drill_id"])
    while p["postmortem_wait_s"] > 0 and not desk_link.postmortem_records(records) and time.time() < deadline:
        time.sleep(max(1, p["poll_s"]))
        records = link.records(drill["drill_id"])
    targets, followup = _rubric_parts(p["rubric"], drill["scenario"])
    marks, warnings = desk_link.desk_marks(records, targets)
    for warning in warnings:
        module.warn(warning)
    return {"entries": desk_link.scoring_records(records, followup), "marks": marks,
            "postmortem": bool(desk_link.postmortem_records(records)), "records": len(records)}


def _archive(link, p):
    archived = []
    for name, path in sorted(p["reports"].items()):
        if not path or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
        link.drill_call("POST", p["drill"]["drill_id"], "reports", {
            "name": name, "content": content,
            "content_type": CONTENT_TYPES.get(os.path.splitext(path)[1], "text/plain; charset=utf-8")})
        archived.append(name)
    link.drill_call("POST", p["drill"]["drill_id"], "finalize", {"summary": p["summary"]})
    return {"archived": archived}


def _send_timeline(link, p):
    """The timeline's events the desk has not got yet (matched by event name and time)."""
    path = os.path.join(p["artifacts_dir"] or "", "timeline.jsonl")
    if not p["artifacts_dir"] or not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle if line.strip()]
    seen = {((r.get("data") or {}).get("event"), (r.get("data") or {}).get("ts"))
            for r in link.records(p["drill"]["drill_id"]) if r.get("kind") == "event"}
    new = [{"event": e["event"], "ts": e["ts"], "data": e.get("data") or {}} for e in events
           if (e.get("event"), e.get("ts")) not in seen]
    if new:
        link.drill_call("POST", p["drill"]["drill_id"], "events", {"events": new})
    return len(new)


def run(module):
    p = module.params
    if module.check_mode:
        module.exit_json(changed=False, available=False)
    try:
        link = desk_link.DeskLink(engine_client.connect(p["kubeconfig"], p["context"], check=False), p["namespace"])
        if p["action"] == "open":
            result = _open(link, p)
            result["events_sent"] = _send_timeline(link, p)
        elif p["action"] == "close":
            result = {"events_sent": _send_timeline(link, p)}
            link.drill_call("POST", p["drill"]["drill_id"], "close", {})
        elif p["action"] == "collect":
            result = _collect(link, p, module)
        else:
            result = {"events_sent": _send_timeline(link, p)}
            result.update(_archive(link, p))
    except (desk_link.DeskUnavailable, engine_client.ClusterUnreachable, k8s_rest.K8sError, OSError, ValueError) as exc:
        module.warn("incident desk: %s" % exc)
        module.exit_json(changed=False, available=False, error=str(exc))
    module.exit_json(changed=p["action"] != "collect", available=True, **result)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
