# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local deploy repository: a git repository with one manifest per service.

A ``release`` fault ships a bad release the way teams do: a commit to the deploy
repository (``services/<name>/deployment.yaml``) and a rollout with a change-cause. The
seed's ``git log -p services/api-gateway`` then shows the release and its diff. The
rollback commits the pre-drill manifest back (a revert), so the history stays true.

    repo = DeployRepo("~/.local/share/opsdrill/deploy-repo/seo-tool")
    repo.record_release(before_obj, after_obj, "api-gateway: release 1.5.0 (...)")
    repo.record_revert(snapshot_obj, "api-gateway: release 1.5.0 (...)")
    repo.record_stack(deployments, "Stack as deployed by setup.yml")   # the first commit

Runs on the controller (git must be installed).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

__all__ = ["DeployRepo", "DeployRepoError", "manifest_text", "release_steps"]

DEFAULT_AUTHOR = ("SEO platform release bot", "release-bot@seo-tool.invalid")


class DeployRepoError(Exception):
    """git failed or is missing."""


def manifest_text(obj):
    """The manifest as the deploy repository keeps it: the normalised object without the
    namespace (the repository serves every namespace of the team), as YAML."""
    import yaml  # controller only
    body = snapshot.normalise(obj)
    body.get("metadata", {}).pop("namespace", None)
    # Sorted keys: the live object (API order) and the snapshot (sorted JSON) of the same
    # Deployment give the same text (apiVersion, kind, metadata, spec come first anyway).
    return yaml.safe_dump(body, default_flow_style=False, sort_keys=True, width=100)


def release_steps(entry):
    """``[(object ref, commit message)]`` of the entry's ``release`` steps that name a
    ``commit_message``."""
    out = []
    for step in entry.get("steps") or []:
        if step.get("handler") == "release" and (step.get("params") or {}).get("commit_message"):
            out.append((step["object"], step["params"]["commit_message"]))
    return out


# Kubernetes object names (DNS-1123 subdomain) and kinds: nothing else becomes a path.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KIND = re.compile(r"^[A-Z][A-Za-z]{0,62}$")


def service_path(ref):
    """``services/<name>/<kind>.yaml`` for ``Kind/name``. A ref from a drill state is data the
    team may have written: anything but a valid kind and object name is refused."""
    kind, _sep, name = str(ref).partition("/")
    if not _KIND.match(kind) or not _NAME.match(name):
        raise DeployRepoError("%r is not Kind/name of a Kubernetes object: no deploy-repository path for it" % (ref,))
    return "services/%s/%s.yaml" % (name, kind.lower())


class DeployRepo:
    def __init__(self, path, author=DEFAULT_AUTHOR):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.author = author
        if shutil.which("git") is None:
            raise DeployRepoError("git is not installed on the controller: the deploy repository "
                                  "%s cannot be written" % self.path)

    def _git(self, *args, check=True):
        env = dict(os.environ, GIT_AUTHOR_NAME=self.author[0], GIT_AUTHOR_EMAIL=self.author[1],
                   GIT_COMMITTER_NAME=self.author[0], GIT_COMMITTER_EMAIL=self.author[1],
                   GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
        proc = subprocess.run(["git", "-C", self.path] + list(args), capture_output=True,
                              text=True, env=env, check=False)
        if check and proc.returncode != 0:
            raise DeployRepoError("git %s in %s failed (%d): %s"
                                  % (" ".join(args), self.path, proc.returncode,
                                     (proc.stderr or proc.stdout).strip()))
        return proc.stdout

    def ensure(self):
        """Create the repository when missing. Returns True when it was created."""
        if os.path.isdir(os.path.join(self.path, ".git")):
            return False
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        self._git("init", "--quiet")
        self._git("config", "commit.gpgsign", "false")
        readme = os.path.join(self.path, "README.md")
        with open(readme, "w", encoding="utf-8") as handle:
            handle.write("# Deploy repository\n\nOne manifest per service under services/. "
                         "Every release is a commit;\n`git log -p services/<service>` shows "
                         "what each release changed.\n")
        self._git("add", "README.md")
        self._git("commit", "--quiet", "-m", "Deploy repository")
        return True

    def head(self):
        return self._git("rev-parse", "--short", "HEAD").strip()

    def _write(self, relpath, text):
        full = os.path.realpath(os.path.join(self.path, relpath))
        if not full.startswith(os.path.realpath(self.path) + os.sep):
            raise DeployRepoError("%s is outside the deploy repository %s" % (relpath, self.path))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        current = None
        if os.path.exists(full):
            with open(full, encoding="utf-8") as handle:
                current = handle.read()
        if current == text:
            return False
        with open(full, "w", encoding="utf-8") as handle:
            handle.write(text)
        return True

    def commit_manifest(self, ref, obj, message):
        """Write the object's manifest and commit it; returns the commit or None when the
        file already had that content."""
        relpath = service_path(ref)
        if not self._write(relpath, manifest_text(obj)):
            return None
        self._git("add", relpath)
        self._git("commit", "--quiet", "-m", message)
        return self.head()

    @staticmethod
    def _manifests(objects):
        """``[(relative path, manifest text)]`` of ``objects``, in a stable order."""
        out = []
        for obj in sorted(objects, key=lambda o: (o.get("kind") or "", (o.get("metadata") or {}).get("name") or "")):
            out.append((service_path("%s/%s" % (obj.get("kind"), (obj.get("metadata") or {}).get("name"))),
                        manifest_text(obj)))
        return out

    def stack_changes(self, objects):
        """The manifests of ``objects`` the repository does not have as they are (nothing
        is written: check mode)."""
        pending = []
        for relpath, text in self._manifests(objects):
            full = os.path.join(self.path, relpath)
            if not os.path.exists(full):
                pending.append(relpath)
                continue
            with open(full, encoding="utf-8") as handle:
                if handle.read() != text:
                    pending.append(relpath)
        return pending

    def record_stack(self, objects, message):
        """Every object's manifest in one commit (the stack as deployed, the history's
        first entry); None when the repository already has them all."""
        self.ensure()
        changed = [relpath for relpath, text in self._manifests(objects) if self._write(relpath, text)]
        if not changed:
            return None
        self._git("add", *changed)
        self._git("commit", "--quiet", "-m", message)
        return self.head()

    def record_release(self, ref, before, after, message):
        """The running release first (when the repository does not have it yet), then the
        new one. Returns the commits made."""
        self.ensure()
        commits = []
        cause = ((before.get("metadata") or {}).get("annotations") or {}).get(
            "kubernetes.io/change-cause") or "sync from the cluster"
        baseline = self.commit_manifest(ref, before, "%s: %s" % (ref.split("/", 1)[1], cause)
                                        if not cause.startswith(ref.split("/", 1)[1]) else cause)
        if baseline:
            commits.append(baseline)
        release = self.commit_manifest(ref, after, message)
        if release:
            commits.append(release)
        return commits

    def record_revert(self, ref, restored, message):
        """Commit the restored manifest back, as a revert of ``message``; None when the
        repository already matches."""
        if not os.path.isdir(os.path.join(self.path, ".git")):
            return None
        return self.commit_manifest(ref, restored, 'Revert "%s"\n\nRolled back by the opsdrill '
                                    'drill engine: the pre-drill manifest is live again.' % message)
