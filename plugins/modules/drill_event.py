#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_event
short_description: Append one event to a drill's timeline
version_added: 0.1.0
description:
  - Appends one JSON line to C(<artifacts_dir>/timeline.jsonl), the drill timeline of
    docs/contracts.md section 3, which the scoring engine reads.
  - The artifacts dir is O(artifacts_dir), or O(artifacts_base)/C(drill_id). It is created
    with mode 0700 and the timeline with mode 0600 (the timeline names the hidden fault).
  - In check mode nothing is written; the paths are still returned.
author: opsdrill maintainers (@opsdrill)
options:
  event:
    description: The event.
    type: str
    required: true
    choices: [drill_started, preflight_passed, briefing_written, snapshot_taken, deadman_armed,
              fault_injected, symptom_observed, alert_firing, response_window_started,
              steady_state_restored, response_window_ended, fix_state, rollback_started, rollback_finished,
              verify_passed, verify_failed, deadman_disarmed, drill_finished, drill_failed]
  drill:
    description:
      - The drill the event belongs to, C({drill_id, scenario, variant, fault, namespace}).
      - C(drill_id) is required (letters, digits, C(.), C(_) and C(-)).
    type: dict
    required: true
  data:
    description:
      - Event data. C(steady_state_restored) needs C(by) (C(team) or C(rollback)),
        C(response_window_ended) C(reason) (C(recovered), C(timeout), C(interrupted)),
        C(drill_failed) C(phase) and C(error), C(drill_finished) C(result).
    type: dict
    default: {}
  at:
    description: When it happened (epoch seconds), e.g. when a check observed it; default now.
    type: float
  artifacts_dir:
    description: The drill's artifacts dir. Wins over O(artifacts_base).
    type: path
  artifacts_base:
    description: Directory holding one artifacts dir per drill id.
    type: path
    default: ~/.local/share/opsdrill/drills
  files:
    description:
      - Files to write into the artifacts dir before the event, as a dict of file name to text, e.g. the
        trainer briefing with C(briefing_written). Each is replaced whole, with mode 0600.
      - Names are plain file names (letters, digits, C(.), C(_), C(-)), never C(timeline.jsonl).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Record the injection
  opsdrill.drills.drill_event:
    event: fault_injected
    drill: {drill_id: seo-tool-20261122T173000Z, scenario: outage, variant: resources,
            fault: memory_limits, namespace: seo-tool}
    data: {target: Deployment/backend-api}
  register: drill_record
"""

RETURN = r"""
drill_artifacts_dir:
  description: The drill's artifacts dir.
  returned: always
  type: str
  sample: /root/.local/share/opsdrill/drills/seo-tool-20261122T173000Z
timeline_file:
  description: The timeline file.
  returned: always
  type: str
record:
  description: The line written, without its scenario, variant, fault and data (the job's viewers see task results; the file has them).
  returned: always
  type: dict
files:
  description: The paths of the files written (none in check mode).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_timeline


def main():
    # The drill engine runs this through its action plugin (plugins/action/drill_event.py),
    # in the controller's worker, without a module start-up; the module stays for other hosts.
    module = AnsibleModule(argument_spec=drill_timeline.EVENT_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        module.exit_json(**drill_timeline.record_event(module.params, module.check_mode))
    except drill_timeline.TimelineError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="cannot write the timeline of %s: %s" % (module.params["drill"].get("drill_id"), exc))


if __name__ == "__main__":
    main()
