# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill runtime that also runs outside Ansible: snapshot, restore, dead-man's switch.

The rule of this package: **standard library and siblings only.** These files run

- in a pod: the in-cluster dead-man's switch is a Job on a stock Python image that runs
  ``python3 -m ansible_collections.opsdrill.drills.plugins.module_utils.runtime.restore``
  with ``PYTHONPATH`` on a ConfigMap volume holding ``tree()``;
- beside the controller: the watchdog runs ``python -m ...runtime.watchdog`` the same way,
  from a private directory ``tree()`` is written into.

Either way this is the package it is everywhere, so a module here imports its siblings
by their collection path only. Anything else it imports must be in the standard library
(``tests/unit/engine/test_runtime_package.py`` checks). The one exception is optional:
``k8s_rest`` reads a YAML kubeconfig with PyYAML when it is there. This ``__init__`` is
shipped too: it must stay as plain.

``sources()`` is the list of files to ship; it is the package itself, never a hand list.
``tree()`` lays them out as the package under a ``sys.path`` entry.
"""
from __future__ import annotations

import pkgutil

__all__ = ["sources", "tree"]


def sources():
    """``{"__init__.py": text, "restore.py": text, ...}``: every module of this package,
    the files the dead-man's switch and the watchdog run. Read through the package's
    loader, so it works from a checkout and from an AnsiballZ zip alike."""
    out = {}
    names = ["__init__"] + [info.name for info in pkgutil.iter_modules(__path__) if not info.ispkg]
    for name in names:
        filename = name + ".py"
        data = pkgutil.get_data(__name__, filename)
        if data is None:
            raise OSError("cannot read %s of %s" % (filename, __name__))
        out[filename] = data.decode("utf-8")
    return out


def tree():
    """``{"ansible_collections/__init__.py": "", ...,
    "ansible_collections/opsdrill/drills/plugins/module_utils/runtime/restore.py": text, ...}``:
    ``sources()`` at their package path, relative to a directory that goes on ``sys.path``,
    with an empty ``__init__.py`` for each package above this one (so the package never
    resolves against an installed ``ansible_collections``). The one layout of the
    dead-man's ConfigMap volume and the watchdog's directory."""
    parts = __name__.split(".")
    out = {"/".join(parts[:depth] + ["__init__.py"]): "" for depth in range(1, len(parts))}
    for filename, text in sources().items():
        out["/".join(parts + [filename])] = text
    return out
