# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill timeline: one JSON object per line in ``<artifacts dir>/timeline.jsonl``.

docs/contracts.md section 3 fixes the record and the events. Stdlib only: the
controller-side watchdog (``watchdog.py``) appends to the same file without Ansible.

    record = make_event("fault_injected", drill, {"target": "Deployment/backend-api"})
    path = append(artifacts_dir, record)
"""
from __future__ import annotations

import datetime
import json
import os
import re
import time

__all__ = [
    "EVENTS",
    "FILENAME",
    "TimelineError",
    "append",
    "drill_id_for",
    "make_event",
    "read",
]

SCHEMA = 1
FILENAME = "timeline.jsonl"
# What the timeline file keeps but a task result does not show (record_event).
CONCEALED = ("scenario", "variant", "fault", "data")
# In drill order (docs/contracts.md section 3); drill_failed may come at any point.
EVENTS = (
    "drill_started", "preflight_passed", "briefing_written", "snapshot_taken",
    "deadman_armed", "fault_injected", "symptom_observed", "alert_firing",
    "response_window_started", "steady_state_restored", "response_window_ended", "fix_state",
    "rollback_started", "rollback_finished", "verify_passed", "verify_failed",
    "deadman_disarmed", "drill_finished", "drill_failed",
)
# data fields some events must carry, with their allowed values (None: any non-empty).
REQUIRED_DATA = {
    "steady_state_restored": {"by": ("team", "rollback")},
    "response_window_ended": {"reason": ("recovered", "timeout", "interrupted")},
    "drill_failed": {"phase": None, "error": None},
    "drill_finished": {"result": None},
}
DRILL_FIELDS = ("drill_id", "scenario", "variant", "fault", "namespace")
_DRILL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")


class TimelineError(ValueError):
    """An event that does not follow the timeline contract."""


def _iso(epoch):
    stamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (stamp.microsecond // 1000)


def drill_id_for(namespace, epoch=None, suffix=""):
    """``<namespace>-<UTC stamp>`` (``seo-tool-20261122T173000Z``), plus ``-suffix``."""
    stamp = datetime.datetime.fromtimestamp(time.time() if epoch is None else epoch,
                                            tz=datetime.timezone.utc)
    drill_id = "%s-%s" % (namespace, stamp.strftime("%Y%m%dT%H%M%SZ"))
    return drill_id + ("-" + suffix if suffix else "")


def make_event(event, drill, data=None, now=None):
    """The timeline record of ``event`` for ``drill`` (a dict with drill_id, scenario,
    variant, fault, namespace). Raises TimelineError naming what is wrong."""
    if event not in EVENTS:
        raise TimelineError("unknown event %r; events: %s" % (event, ", ".join(EVENTS)))
    drill = drill or {}
    drill_id = drill.get("drill_id")
    if not isinstance(drill_id, str) or not _DRILL_ID.match(drill_id):
        raise TimelineError("drill_id must be letters, digits, '.', '_' and '-' "
                            "(e.g. seo-tool-20261122T173000Z), got %r" % (drill_id,))
    data = dict(data or {})
    for key, allowed in REQUIRED_DATA.get(event, {}).items():
        value = data.get(key)
        if value in (None, ""):
            raise TimelineError("event %s needs data.%s%s" % (
                event, key, (" (one of %s)" % ", ".join(allowed)) if allowed else ""))
        if allowed and value not in allowed:
            raise TimelineError("event %s: data.%s %r not allowed; allowed: %s"
                                % (event, key, value, ", ".join(allowed)))
    written = time.time()
    epoch = written if now is None else float(now)
    record = {"schema": SCHEMA, "ts": _iso(epoch), "epoch": round(epoch, 3),
              "drill_id": drill_id, "event": event}
    if now is not None:
        # An event dated by its source (Prometheus' firing time, a recovery's start) also
        # says when the engine learnt of it.
        record["recorded_epoch"] = round(written, 3)
    for key in DRILL_FIELDS[1:]:
        record[key] = drill.get(key) or None
    record["data"] = data
    return record


def append(artifacts_dir, record):
    """Append ``record`` to ``<artifacts_dir>/timeline.jsonl`` (dir 0700, file 0600:
    the timeline names the hidden fault). Returns the file's path."""
    os.makedirs(artifacts_dir, mode=0o700, exist_ok=True)
    path = os.path.join(artifacts_dir, FILENAME)
    line = json.dumps(record, sort_keys=False, separators=(", ", ": "), ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return path


def read(artifacts_dir):
    """The records of ``<artifacts_dir>/timeline.jsonl`` ([] when there is none)."""
    path = os.path.join(artifacts_dir, FILENAME)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# The drill_event module's options (its action plugin validates with the same spec).
EVENT_ARGUMENT_SPEC = {
    "event": {"type": "str", "required": True, "choices": list(EVENTS)},
    "drill": {"type": "dict", "required": True},
    "data": {"type": "dict", "default": {}},
    "at": {"type": "float"},
    "artifacts_dir": {"type": "path"},
    "artifacts_base": {"type": "path", "default": "~/.local/share/opsdrill/drills"},
    "files": {"type": "dict", "default": {}},
}
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")


def _check_file_name(name):
    if not isinstance(name, str) or not _FILE_NAME.match(name) or name == FILENAME:
        raise TimelineError("files: %r is not a file name for the artifacts dir (letters, digits, '.', '_', '-'; "
                            "not %s)" % (name, FILENAME))


def write_private(artifacts_dir, name, text):
    """Write ``<artifacts_dir>/<name>`` (dir 0700, file 0600: the trainer's eyes only),
    replacing it whole. ``name`` is a plain file name. Returns the path."""
    _check_file_name(name)
    os.makedirs(artifacts_dir, mode=0o700, exist_ok=True)
    path = os.path.join(artifacts_dir, name)
    partial = path + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(partial, path)
    return path


def record_event(params, check_mode=False):
    """Write one event as ``drill_event`` does; returns its result. Raises TimelineError
    (bad event or drill) or OSError (the timeline cannot be written)."""
    record = make_event(params["event"], params["drill"], params["data"], now=params["at"])
    artifacts_dir = params["artifacts_dir"] or os.path.join(params["artifacts_base"], record["drill_id"])
    files = params.get("files") or {}
    for name, text in files.items():
        _check_file_name(name)
        if not isinstance(text, str):
            raise TimelineError("files: the content of %s is not text" % name)
    written = []
    if not check_mode:
        # The files first: the event says they are there.
        written = [write_private(artifacts_dir, name, text) for name, text in sorted(files.items())]
        append(artifacts_dir, record)
    # The result leaves out which fault this is: under AWX every task's result is kept in
    # the job's events, which the job's viewers read while the drill runs.
    shown = {key: value for key, value in record.items() if key not in CONCEALED}
    return {"changed": not check_mode, "drill_artifacts_dir": artifacts_dir,
            "timeline_file": os.path.join(artifacts_dir, FILENAME), "record": shown, "files": written}
