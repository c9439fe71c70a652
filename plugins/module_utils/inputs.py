# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate what a user passes on the command line (``-e NAME=VALUE``) before anything changes.

The playbooks' public variables are declared once, in ``playbooks/vars/inputs.yml``: each
either forwards to a role variable (and takes its type, choices and default from that
role's ``meta/argument_specs.yml``) or has a spec of its own. Ranges and patterns, which
argument specs cannot express, are kept there too (``limits``), per variable.

``validate_extra_vars`` checks every extra var of a run:

* a playbook variable: type, choices, range, pattern, and file checks;
* a variable of a role the playbook uses (its prefix): that role's spec and limits;
* ``ansible_*``, ``awx_*`` and ``tower_*`` (Ansible's and AWX's own) pass untouched;
* anything else is refused with the closest valid name ("did you mean variant?").

It returns the typed values of the playbook's variables (defaults filled in) and one
clear line per problem, naming the variable, the value and what is allowed.
"""
from __future__ import annotations

import difflib
import json
import os
import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.datafile import MAX_INPUT_FILE_BYTES
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.desk import parse_desk_entries
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.errors import ScoringInputError

# Extra vars of Ansible itself and of AWX job runs (awx_job_id, tower_user_name, ...).
PASS_THROUGH_PREFIXES = ("ansible_", "awx_", "tower_")
# Option keys of an argument spec that ArgumentSpecValidator understands.
_SPEC_KEYS = ("type", "elements", "choices", "default", "options", "required", "no_log")
# Pseudo file systems: nothing of a drill may be written there.
PSEUDO_FILESYSTEMS = ("proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs",
                      "debugfs", "tracefs", "bpf", "configfs", "fusectl", "mqueue", "pstore")


# The collection's own spec files, read on the controller (action and filter plugins).
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INPUTS_FILE = os.path.join(COLLECTION_ROOT, "playbooks", "vars", "inputs.yml")


def read_yaml(path):
    import yaml  # controller-side only, like the catalog's files
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def collection_role_options(role):
    """``role_options`` of a role of this collection (its ``meta/argument_specs.yml``)."""
    return role_options(read_yaml(os.path.join(COLLECTION_ROOT, "roles", role, "meta", "argument_specs.yml")))


class InputSpecError(ValueError):
    """The inputs spec itself is broken (a developer's error, not a user's)."""


def role_options(argument_specs):
    """Every option of every entry point of a role's ``argument_specs`` document."""
    options = {}
    for entry_point in (argument_specs.get("argument_specs") or {}).values():
        for name, spec in (entry_point.get("options") or {}).items():
            options.setdefault(name, spec)
    return options


def playbook_options(playbook_spec, roles):
    """The playbook's variables with forwarded specs resolved: ``{name: spec}``.

    ``roles`` maps a role name to its options (``role_options``)."""
    known = {}
    for role in roles.values():
        known.update(role)
    out = {}
    for name, spec in (playbook_spec.get("options") or {}).items():
        spec = dict(spec or {})
        target = spec.pop("forwards", None)
        if target:
            if target not in known:
                raise InputSpecError("%s forwards to %s, which no role of the playbook declares" % (name, target))
            merged = dict(known[target])
            merged.update(spec)
            merged["forwards"] = target
            spec = merged
        out[name] = spec
    return out


def _allowed_text(spec, limits):
    kind = spec.get("type", "str")
    if spec.get("choices"):
        return "one of: %s" % ", ".join(str(c) for c in spec["choices"])
    if kind == "int":
        low, high = limits.get("min"), limits.get("max")
        if low is not None and high is not None:
            return "an integer from %s to %s" % (low, high)
        return "an integer"
    if limits.get("pattern_text"):
        return limits["pattern_text"]
    if kind == "list":
        return "a list" + (" of %s" % spec["elements"] if spec.get("elements") else "")
    return {"bool": "true or false", "dict": "a mapping", "path": "a path", "float": "a number"}.get(kind, "a string")


def _show(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_value(name, value, spec, limits=None):
    """``(converted value, problem or None)`` for one variable."""
    limits = limits or {}
    kind = spec.get("type", "str")
    not_allowed = "%s: %s is not %s" % (name, _show(value), _allowed_text(spec, limits))
    if kind in ("int", "float") and isinstance(value, bool):
        return value, not_allowed
    plain = {k: v for k, v in spec.items() if k in _SPEC_KEYS and k != "default"}
    result = ArgumentSpecValidator({name: plain}).validate({name: value})
    if result.error_messages:
        return value, not_allowed
    converted = result.validated_parameters[name]
    if kind == "int":
        if isinstance(value, str) and not re.fullmatch(r"\s*-?\d+\s*", value):
            # Ansible would take '1.0' or '0x10'; a drill's number is written plainly.
            return value, not_allowed
        low, high = limits.get("min"), limits.get("max")
        if (low is not None and converted < low) or (high is not None and converted > high):
            return value, "%s: %s is out of range; allowed: %s" % (name, _show(value), _allowed_text(spec, limits))
    pattern = limits.get("pattern")
    if pattern and isinstance(converted, str) and converted != "" and not re.match(pattern, converted):
        return value, "%s: %s is not %s" % (name, _show(value), limits.get("pattern_text") or "valid")
    items = converted if isinstance(converted, list) else \
        list(converted.values()) if isinstance(converted, dict) else [converted]
    element_pattern = limits.get("element_pattern")
    if element_pattern:
        for item in items:
            if not re.match(element_pattern, str(item)):
                return value, "%s: %s is not %s" % (name, _show(item), limits.get("element_pattern_text") or "valid")
    return converted, None


# --------------------------------------------------------------------------------------
# files and directories (on the controller)

def _mount_type(path, mounts_text):
    """The file system type of the mount that holds ``path``."""
    best, best_type = "", None
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, best_type = point, fields[2]
    return best_type


def _read_mounts():
    try:
        with open("/proc/self/mounts", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def check_writable_dir(name, path, mounts_text=None):
    """A directory the drill may create and write files in, or the problem."""
    full = os.path.abspath(os.path.expanduser(str(path)))
    existing = full
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    fs_type = _mount_type(full, _read_mounts() if mounts_text is None else mounts_text)
    if fs_type in PSEUDO_FILESYSTEMS:
        return "%s: %s is on the %s pseudo file system; give a directory on a real disk" % (name, _show(str(path)), fs_type)
    if not os.path.isdir(existing):
        return "%s: %s cannot be a directory (%s is a file)" % (name, _show(str(path)), existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        return "%s: %s cannot be created or written (%s is not writable)" % (name, _show(str(path)), existing)
    return None


def check_input_file(name, path, parse=None, max_bytes=MAX_INPUT_FILE_BYTES):
    """A readable regular file of at most ``max_bytes`` that ``parse(text, path)``
    accepts (it raises ValueError with the reason), or the problem."""
    full = os.path.abspath(os.path.expanduser(str(path)))
    if not os.path.exists(full):
        return "%s: file %s does not exist" % (name, full)
    if not os.path.isfile(full):
        return "%s: %s is not a regular file" % (name, full)
    size = os.path.getsize(full)
    if max_bytes is not None and size > max_bytes:
        return "%s: file %s is %d bytes; the limit is %d bytes (%d MiB)" % (
            name, full, size, max_bytes, max_bytes // (1024 * 1024))
    try:
        with open(full, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        return "%s: cannot read %s: %s" % (name, full, exc)
    if parse is not None:
        try:
            parse(text, full)
        except ValueError as exc:
            return "%s: %s is not valid: %s" % (name, full, exc)
    return None


# --------------------------------------------------------------------------------------
# the whole command line

def _prefix_role(name, roles):
    """The role whose variable ``name`` is, by prefix (the longest role name wins)."""
    for role in sorted(roles, key=len, reverse=True):
        if name.startswith(role + "_"):
            return role
    return None


def suggest(name, candidates):
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return (" (did you mean %s?)" % close[0]) if close else ""


def checked(name, value, spec, limits, file_checks):
    """``check_value``, then the file check that ``limits`` names (``check``), on every
    item of a list. ``file_checks``: check name -> function(name, value) -> problem or None."""
    converted, problem = check_value(name, value, spec, limits)
    check = (limits or {}).get("check")
    if problem is None and check and converted not in ("", None, []):
        for item in (converted if isinstance(converted, list) else [converted]):
            problem = file_checks[check](name, item)
            if problem:
                break
    return converted, problem


def validate_extra_vars(extra_vars, options, roles, limits=None, playbook="this playbook",
                        file_checks=None):
    """Check a run's extra vars. Returns ``(values, problems)``.

    ``options``: the playbook's variables (``playbook_options``); ``roles``: role name ->
    role options; ``limits``: variable name -> {min, max, pattern, pattern_text, check};
    ``file_checks``: see ``checked``."""
    limits = limits or {}
    file_checks = file_checks or {}
    values, problems = {}, []
    for name, spec in options.items():
        values[name] = spec.get("default")
    for name in sorted(extra_vars):
        value = extra_vars[name]
        if name in options:
            spec = options[name]
            converted, problem = checked(name, value, spec, limits.get(spec.get("forwards") or name), file_checks)
            if problem:
                problems.append(problem)
            else:
                values[name] = converted
            continue
        if name.startswith(PASS_THROUGH_PREFIXES):
            continue
        role = _prefix_role(name, roles)
        if role is not None and name in roles[role]:
            _converted, problem = checked(name, value, roles[role][name], limits.get(name), file_checks)
            if problem:
                problems.append(problem)
            continue
        candidates = list(options) + (list(roles[role]) if role else [n for r in roles.values() for n in r])
        takes = [", ".join(sorted(options))] if options else []
        if roles:
            takes.append("the variables of role(s) " + ", ".join(sorted(roles)))
        problems.append("%s: unknown variable for %s%s; it takes: %s" % (
            name, playbook, suggest(name, candidates), " and ".join(takes) or "no variables"))
    return values, problems


def message(problems):
    """One line: the first problem, then the others."""
    if len(problems) == 1:
        return problems[0]
    return "%d problems with the command line: %s" % (len(problems), "; ".join(problems))


def validate_role_vars(role, present, role_opts, limits=None, file_checks=None):
    """Problems with a role's variables as the role sees them (``present``: name -> value,
    every ``<role>_*`` variable in scope): unknown names, wrong types, out of range."""
    limits = limits or {}
    problems = []
    for name in sorted(present):
        if name not in role_opts:
            problems.append("%s: unknown variable of role %s%s" % (name, role, suggest(name, role_opts)))
            continue
        _converted, problem = checked(name, present[name], role_opts[name], limits.get(name), file_checks or {})
        if problem:
            problems.append(problem)
    return problems


def _parse_desk(text, path):
    # The desk's own parser: the same rules the scorer applies later.
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise ValueError("not JSON: %s" % exc)
    try:
        parse_desk_entries(entries, path)
    except ScoringInputError as exc:
        raise ValueError(str(exc))


def _parse_catalog(_text, path):
    try:
        catalog.load([path])
    except catalog.CatalogError as exc:
        raise ValueError(str(exc))


def file_checks():
    """The checks ``limits`` may name: check name -> function(name, value) -> problem or None."""
    return {
        "writable_dir": check_writable_dir,
        "readable_file": lambda name, path: check_input_file(name, path, max_bytes=None),
        "desk_file": lambda name, path: check_input_file(name, path, _parse_desk),
        "catalog_file": lambda name, path: check_input_file(name, path, _parse_catalog),
    }
