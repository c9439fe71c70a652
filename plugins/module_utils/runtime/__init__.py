# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill runtime that also runs outside Ansible: snapshot, restore, dead-man's switch.

The rule of this package: **standard library and siblings only.** These files run

- in a pod: the in-cluster dead-man's switch is a Job on a stock Python image that runs
  ``python3 /opsdrill/restore.py`` from a ConfigMap holding these files flat, side by side;
- beside the controller: the watchdog runs ``watchdog.py`` from a private directory,
  written there the same way, under ``python -I``.

So a module here imports its siblings twice: by their collection path (Ansible,
AnsiballZ, tests) and, failing that, flat (``import snapshot``) after putting its own
directory on ``sys.path``. Anything else it imports must be in the standard library
(``tests/unit/engine/test_runtime_package.py`` checks). The one exception is optional:
``k8s_rest`` reads a YAML kubeconfig with PyYAML when it is there.

``sources()`` is the list of files to ship; it is the package itself, never a hand list.
"""
from __future__ import annotations

import pkgutil

__all__ = ["sources"]


def sources():
    """``{"restore.py": text, ...}``: every module of this package, the files the
    dead-man's switch and the watchdog run flat. Read through the package's loader, so
    it works from a checkout and from an AnsiballZ zip alike. (This ``__init__`` is
    not shipped: flat files need no package.)"""
    out = {}
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            continue
        filename = info.name + ".py"
        data = pkgutil.get_data(__name__, filename)
        if data is None:
            raise OSError("cannot read %s of %s" % (filename, __name__))
        out[filename] = data.decode("utf-8")
    return out
