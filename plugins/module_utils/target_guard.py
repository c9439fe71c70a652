# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which namespaces a drill may touch: only those that opted in, never the system ones."""

from __future__ import annotations

import re

OPT_IN_LABEL = "opsdrill.io/drill-target"
# Refused whatever their labels say.
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def namespace_refusal(name, exists, labels, allow_missing):
    """Why a drill must not use this namespace, or None when it may.

    name: namespace name; exists: whether it exists; labels: its labels (dict or None);
    allow_missing: a missing namespace is fine (the caller creates it, labelled, or is removing it).
    """
    if name in PROTECTED_NAMESPACES:
        return (f"namespace {name!r} is refused: opsdrill never touches "
                f"{', '.join(PROTECTED_NAMESPACES)}; use a namespace of its own (e.g. seo-tool)")
    if not isinstance(name, str) or not _DNS1123_LABEL.match(name):
        return f"namespace {name!r} is not a valid namespace name (lowercase letters, digits and '-', at most 63)"
    if not exists:
        if allow_missing:
            return None
        return f"namespace {name!r} does not exist: run setup.yml first (it creates the namespace, opted in)"
    if (labels or {}).get(OPT_IN_LABEL) != "true":
        return (f"namespace {name!r} has not opted in to drills: it needs the label {OPT_IN_LABEL}=\"true\" "
                f"(kubectl label namespace {name} {OPT_IN_LABEL}=true)")
    return None
