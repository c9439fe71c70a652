#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: drill_scorecard
short_description: Score an opsdrill drill from its timeline and evidence, and write the reports
version_added: "0.1.0"
description:
  - Reads the drill timeline (C(timeline.jsonl) in the drill artifacts dir) and the optional evidence
    sources - Kubernetes audit log, incident desk entries, trainer marks, the fault's catalog entry -
    applies the rubric (the default one derived from the seed scenarios, or a team's own) and returns
    a compact summary for C(ansible.builtin.set_stats).
  - Writes C(scorecard.json), C(junit.xml), C(incident-record.md), C(postmortem.md) and C(scorecard.html)
    into the artifacts dir.
  - A criterion whose evidence source is missing is reported C(not_assessed), never as zero or full marks.
  - The scoring logic lives in the collection's C(module_utils/scoring) package; see docs/scoring.md.
  - "Runs on the controller host (C(delegate_to: localhost)); it reads local files only, plus the output of
    O(audit_log_command) if given."
author:
  - opsdrill contributors (@opsdrill)
extends_documentation_fragment:
  - opsdrill.drills.rubric
options:
  artifacts_dir:
    description:
      - The drill's artifacts dir (the C(drill_artifacts_dir) returned by C(opsdrill.drills.drill_event)).
      - The timeline is read from C(timeline.jsonl) in it, and the reports are written to it.
    type: path
  timeline_file:
    description:
      - The timeline file, when it is not C(timeline.jsonl) in O(artifacts_dir).
      - Without O(artifacts_dir) the reports go to this file's directory.
    type: path
  audit_log:
    description: Kubernetes audit log, JSON lines of C(audit.k8s.io/v1) Event objects.
    type: path
  audit_log_command:
    description:
      - A command whose standard output is the audit log, for clusters where the log sits inside a node,
        for example C([docker, exec, opsdrill-control-plane, cat, /var/log/kubernetes/audit.log]).
      - Run without a shell. Ignored when O(audit_log) is given.
    type: list
    elements: str
  desk_file:
    description:
      - Incident desk entries, a JSON file (schema C(module_utils/scoring/schemas/desk.schema.json)).
      - Without it and without O(desk_entries), C(desk.json) in O(artifacts_dir) is read when it exists
        (where the drill engine's default expects the team's entries); otherwise the desk criteria are not assessed.
      - A given file that does not exist makes the desk criteria not assessed, with a note naming it.
    type: path
  desk_entries:
    description: Incident desk entries given directly, same shape as O(desk_file). Wins over O(desk_file).
    type: list
    elements: dict
  witnessed_entries:
    description:
      - The incident desk service's records of the team's entries;
        M(opsdrill.drills.drill_desk) with O(opsdrill.drills.drill_desk#module:action=collect)
        returns them as RV(opsdrill.drills.drill_desk#module:entries);
        the desk authenticated each author and stamped each time, so they count as witnessed evidence.
      - A desk file or O(desk_entries) next to them stays self-reported.
    type: list
    elements: dict
  trainer_marks:
    description:
      - "Trainer marks per criterion or checklist item id, C({id: {score: N | pass: bool, note: text}})."
      - Marks here win over the same ids in O(trainer_marks_file).
    type: dict
  trainer_marks_file:
    description: Trainer marks as a YAML or JSON file.
    type: path
  trainees:
    description: Usernames whose audit log requests count as trainee actions.
    type: list
    elements: str
    default: []
  trainee_groups:
    description: Groups whose members count as trainees (service accounts only when listed in O(trainees)).
    type: list
    elements: str
    default: ['opsdrill:trainees']
  namespaces:
    description: Namespaces whose actions count. Defaults to the drill namespace from the timeline.
    type: list
    elements: str
  rubric_file:
    description: A team rubric (YAML or JSON). Without it the default rubric is used.
    type: path
  catalog_entry:
    description:
      - The fault catalog entry of the drill's fault (docs/contracts.md section 4), used to tell fixes of the
        cause (C(accepted_fixes)) from fixes that hide the symptom (C(symptom_only_fixes)).
      - Without it (and without O(catalog_entry_file) or a C(drill-state.json) / C(briefing.json) in the
        artifacts dir that carries it), problem solving is not assessed.
    type: dict
  catalog_entry_file:
    description: The catalog entry as a YAML/JSON file; a whole C(faults.yml) list works too (the drill's fault is picked).
    type: path
  write_reports:
    description: Write the report files. With V(false) only the summary is returned.
    type: bool
    default: true
  return_scorecard:
    description: Also return the whole scorecard (can be large).
    type: bool
    default: false
notes:
  - Supports check mode; then no file is written and C(changed) says whether a report would change.
seealso:
  - name: Scoring documentation
    description: docs/scoring.md in the collection.
    link: https://docs.ansible.com/ansible/latest/collections_guide/index.html
'''

EXAMPLES = r'''
- name: Score the drill
  opsdrill.drills.drill_scorecard:
    artifacts_dir: "{{ drill_artifacts_dir }}"
    audit_log_command: [docker, exec, opsdrill-control-plane, cat, /var/log/kubernetes/audit.log]
    desk_file: "{{ drill_artifacts_dir }}/desk.json"
    trainees: [trainee-1, trainee-2]
    catalog_entry: "{{ drill_fault_entry }}"
  delegate_to: localhost
  register: drill_score

- name: Publish the summary to AWX
  ansible.builtin.set_stats:
    data:
      opsdrill_scorecard: "{{ drill_score.summary }}"
    per_host: false

- name: Re-score with the trainer's marks and the team rubric
  opsdrill.drills.drill_scorecard:
    artifacts_dir: /var/lib/opsdrill/drills/seo-tool-20261122T173000Z
    audit_log: /var/log/kubernetes/audit.log
    rubric_file: rubrics/team-blue.yml
    trainer_marks:
      documentation.postmortem: {score: 6, note: "action items lack owners"}
  delegate_to: localhost
'''

RETURN = r'''
summary:
  description: Compact scorecard summary, for set_stats.
  returned: success
  type: dict
  contains:
    schema_version:
      description: Scorecard schema version.
      type: str
      sample: "1.1"
    drill_id:
      description: The drill id from the timeline.
      type: str
    result:
      description: C(pass), C(fail) or C(not_assessed) (nothing could be assessed).
      type: str
      sample: pass
    points:
      description: Points awarded.
      type: float
    points_assessed_max:
      description: Points of the criteria that could be assessed.
      type: float
    percent:
      description: Points as a share of the assessed points.
      type: float
    time_to_detect_s:
      description: Fault injection to alert firing, seconds; null if the alert never fired.
      type: float
    time_to_acknowledge_s:
      description: Alert to the first trainee action, seconds.
      type: float
    time_to_recover_s:
      description: Fault injection to steady state restored by the team; null when only the rollback restored it.
      type: float
    recovered_by:
      description: C(team), C(rollback) or null.
      type: str
    criteria:
      description: Per criterion id, its status, points and points_max.
      type: dict
    warnings:
      description: Remarks on the scoring; reads of the drill's answer key come first.
      type: list
      elements: str
    integrity:
      description:
        - Trainees who read the drill's answer key (the drill state ConfigMap or Secret), from the audit log.
        - C(checked) is false without an audit log. C(review_required) is true when someone read (or tried to read)
          it; no points are deducted, the trainer decides. C(findings) has one entry per person and object
          (actor, kind, namespace, name, first_at, first_offset_s, last_at, last_offset_s, requests, refused, shown).
      type: dict
      sample:
        checked: true
        review_required: true
        findings:
          - {actor: trainee-1, kind: configmap, namespace: seo-tool, name: opsdrill-drill-state,
             first_at: "2026-11-22T17:30:52.462Z", first_offset_s: 42.0, last_at: "2026-11-22T17:30:52.462Z",
             last_offset_s: 42.0, requests: 1, refused: 0, shown: true}
  sample:
    schema_version: "1.1"
    drill_id: seo-tool-20261122T173000Z
    result: pass
    points: 81.5
    percent: 81.5
reports:
  description: Paths of the written reports by format (json, junit, incident_record, postmortem, html).
  returned: success
  type: dict
  sample:
    json: /var/lib/opsdrill/drills/seo-tool-20261122T173000Z/scorecard.json
scorecard_file:
  description: Path of scorecard.json.
  returned: when reports are written
  type: str
table:
  description: The compact console table.
  returned: success
  type: str
scorecard:
  description: The whole scorecard (see schemas/scorecard.schema.json).
  returned: when O(return_scorecard=true)
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.console import render_table
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.errors import ScoringError, ScoringInputError
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.inputs import build_scorecard
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.reports import write_reports
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.rubric import RUBRIC_ARGUMENT_SPEC, rubric_from_data
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.scorer import summarize


SPEC = dict(
    argument_spec=dict(
        artifacts_dir=dict(type='path'),
        timeline_file=dict(type='path'),
        audit_log=dict(type='path'),
        audit_log_command=dict(type='list', elements='str'),
        desk_file=dict(type='path'),
        desk_entries=dict(type='list', elements='dict'),
        witnessed_entries=dict(type='list', elements='dict'),
        trainer_marks=dict(type='dict'),
        trainer_marks_file=dict(type='path'),
        trainees=dict(type='list', elements='str', default=[]),
        trainee_groups=dict(type='list', elements='str', default=['opsdrill:trainees']),
        namespaces=dict(type='list', elements='str'),
        rubric_file=dict(type='path'),
        **RUBRIC_ARGUMENT_SPEC,
        catalog_entry=dict(type='dict'),
        catalog_entry_file=dict(type='path'),
        write_reports=dict(type='bool', default=True),
        return_scorecard=dict(type='bool', default=False),
    ),
    required_one_of=[('artifacts_dir', 'timeline_file')],
    supports_check_mode=True,
)


def _rubric(argument):
    if not argument:
        raise ScoringInputError('rubric', 'rubric', 'missing: the action plugin reads the rubric file and sets it')
    return rubric_from_data(argument['data'], argument['origin'])


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    p = module.params
    artifacts_dir = p['artifacts_dir'] or os.path.dirname(p['timeline_file'])

    audit_text, audit_label = None, None
    if not p['audit_log'] and p['audit_log_command']:
        rc, out, err = module.run_command(p['audit_log_command'])
        if rc != 0:
            module.fail_json(msg='audit_log_command failed (rc=%d): %s' % (rc, err.strip()), rc=rc)
        audit_text, audit_label = out, 'audit log from `%s`' % ' '.join(p['audit_log_command'])

    try:
        scorecard, rubric = build_scorecard(
            artifacts_dir=p['artifacts_dir'], timeline_file=p['timeline_file'], audit_log=p['audit_log'],
            audit_text=audit_text, audit_label=audit_label, desk_file=p['desk_file'], desk_entries=p['desk_entries'],
            witnessed_entries=p['witnessed_entries'],
            trainer_marks=p['trainer_marks'], trainer_marks_file=p['trainer_marks_file'], trainees=p['trainees'],
            trainee_groups=p['trainee_groups'], namespaces=p['namespaces'], rubric=_rubric(p['rubric']),
            catalog_entry=p['catalog_entry'], catalog_entry_file=p['catalog_entry_file'],
        )
        reports, changed = {}, False
        if p['write_reports']:
            reports, changed = write_reports(scorecard, artifacts_dir, rubric=rubric, check_mode=module.check_mode)
    except ScoringInputError as exc:
        module.fail_json(msg=str(exc), path=exc.path, field=exc.field)
    except ScoringError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot read or write drill files: %s' % exc)

    result = dict(
        changed=changed,
        summary=summarize(scorecard, reports),
        reports=reports,
        table=render_table(scorecard),
    )
    for warning in scorecard['warnings']:
        module.warn(warning)
    if reports.get('json'):
        result['scorecard_file'] = reports['json']
    if p['return_scorecard']:
        result['scorecard'] = scorecard
    module.exit_json(**result)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == '__main__':
    main()
