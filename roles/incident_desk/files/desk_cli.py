# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A terminal client for the incident desk (standard library only).

    desk_cli.py [--url URL] [--token-file F | --kubeconfig F] feed|ack|update|log|fix \
        DRILL_ID [TEXT] [--audience team|users|management]

The token (your Kubernetes bearer token, the one kubectl uses) comes from, in order:
``--token-file`` (the file's content), ``--kubeconfig`` (the ``token`` of the current
context's user), ``$DESK_TOKEN``. The URL from ``--url``, else ``$DESK_URL``, else
http://127.0.0.1:8080 (e.g. ``kubectl port-forward svc/incident-desk 8080``).

Kubeconfig parsing is minimal on purpose (no PyYAML): JSON is read as JSON; YAML must be
the block style kubectl writes (``current-context: X``, lists of ``- name: ...`` items under
``contexts:`` and ``users:``, ``user:``/``token:`` scalars, optionally quoted). Flow style,
anchors and multi-line strings are not supported; ``tokenFile`` is honoured.

``feed`` prints one line per entry: ``ts author kind text`` (newlines in text shown as
`` / ``). Exit codes: 0 ok, 1 refused (the server's error is printed), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

COMMAND_KIND = {"ack": "acknowledge", "update": "status_update", "log": "log", "fix": "fix"}


class UsageError(Exception):
    pass


def _scalar(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _simple_yaml_kubeconfig(text):
    """{current-context, contexts: [{name, user}], users: [{name, token, tokenFile}]} from
    kubectl's block-style YAML."""
    result = {"current-context": None, "contexts": [], "users": []}
    section, item, item_indent = None, None, 0
    for line in text.splitlines():
        stripped = line.split(" #")[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not stripped.strip():
            continue
        indent = len(stripped) - len(stripped.lstrip())
        body = stripped.strip()
        if indent == 0 and not body.startswith("- "):
            key, value = body.partition(":")[::2]
            section = key if key in ("contexts", "users") else None
            item = None
            if key == "current-context":
                result["current-context"] = _scalar(value) or None
            continue
        if section is None:
            continue
        if body.startswith("- ") and (item is None or indent <= item_indent - 2):
            item = {}                  # a new list item of the section
            item_indent = indent + 2
            result[section].append(item)
            body, indent = body[2:], item_indent
        if item is None:
            continue
        key, sep, value = body.partition(":")
        key = key.strip()
        if not sep or not value.strip() or key not in ("name", "user", "token", "tokenFile"):
            continue
        # contexts: the item's own name and its context's user; users: name and token
        if key == "name" and indent != item_indent:
            continue
        item.setdefault(key, _scalar(value))
    return result


def token_from_kubeconfig(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        config = json.loads(text)
        contexts = [{"name": c.get("name"), "user": (c.get("context") or {}).get("user")}
                    for c in config.get("contexts") or []]
        users = [dict(u.get("user") or {}, name=u.get("name")) for u in config.get("users") or []]
        current = config.get("current-context")
    except ValueError:
        config = _simple_yaml_kubeconfig(text)
        contexts, users, current = config["contexts"], config["users"], config["current-context"]
    user_name = next((c.get("user") for c in contexts if c.get("name") == current), None)
    user = next((u for u in users if u.get("name") == user_name), None)
    if user is None and len(users) == 1:
        user = users[0]
    if user is None:
        raise UsageError("%s: no user for the current context %r" % (path, current))
    if user.get("token"):
        return user["token"]
    if user.get("tokenFile"):
        token_file = user["tokenFile"]
        if not os.path.isabs(token_file):
            token_file = os.path.join(os.path.dirname(path), token_file)
        with open(token_file, encoding="utf-8") as handle:
            return handle.read().strip()
    raise UsageError("%s: user %r has no token (client certificates cannot log in to the "
                     "desk)" % (path, user.get("name")))


def find_token(args, environ):
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as handle:
            return handle.read().strip()
    if args.kubeconfig:
        return token_from_kubeconfig(args.kubeconfig)
    if environ.get("DESK_TOKEN"):
        return environ["DESK_TOKEN"].strip()
    raise UsageError("no token: give --token-file, --kubeconfig or set DESK_TOKEN")


class Refused(Exception):
    pass


def call(url, token, method, path, body=None, timeout=15):
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers={
        "Authorization": "Bearer " + token, "Accept": "application/json",
        "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            message = json.loads(text).get("error") or text
        except (ValueError, AttributeError):
            message = text.strip() or exc.reason
        raise Refused("HTTP %d: %s" % (exc.code, message))
    except (urllib.error.URLError, OSError) as exc:
        raise Refused("cannot reach the desk at %s: %s" % (url, getattr(exc, "reason", exc)))


def feed_lines(entries):
    for record in entries:
        kind = record.get("kind")
        text = (record.get("text") or "").replace("\r", "").replace("\n", " / ")
        yield "%s %s %s %s" % (record.get("ts"), record.get("author"), kind, text)


def build_parser():
    parser = argparse.ArgumentParser(prog="desk_cli.py", description="incident desk client")
    parser.add_argument("--url", default=None, help="desk URL ($DESK_URL, http://127.0.0.1:8080)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--token-file", help="file holding your Kubernetes bearer token")
    source.add_argument("--kubeconfig", help="kubeconfig whose current user's token to use")
    parser.add_argument("command", choices=("feed", "ack", "update", "log", "fix"))
    parser.add_argument("drill_id")
    parser.add_argument("text", nargs="?")
    parser.add_argument("--audience", choices=("team", "users", "management"), default=None,
                        help="update only: who the status update is for (team)")
    return parser


def main(argv=None, environ=None, out=None, err=None):
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        if args.command in ("update", "log", "fix") and not (args.text or "").strip():
            raise UsageError("%s needs TEXT" % args.command)
        if args.command == "feed" and args.text:
            raise UsageError("feed takes no TEXT")
        if args.audience and args.command != "update":
            raise UsageError("--audience is for update only")
        token = find_token(args, environ)
    except (UsageError, OSError) as exc:
        err.write("desk_cli: %s\n" % exc)
        return 2
    url = args.url or environ.get("DESK_URL") or "http://127.0.0.1:8080"
    path = "/api/drills/%s/entries" % urllib.parse.quote(args.drill_id, safe="")
    try:
        if args.command == "feed":
            answer = call(url, token, "GET", path)
            for line in feed_lines(answer.get("entries") or []):
                out.write(line + "\n")
            return 0
        body = {"kind": COMMAND_KIND[args.command]}
        if args.text:
            body["text"] = args.text
        if args.command == "update":
            body["audience"] = args.audience or "team"
        record = call(url, token, "POST", path, body)
        out.write("%s %s %s %s\n" % (record.get("id"), record.get("ts"), record.get("author"),
                                     record.get("kind")))
        return 0
    except Refused as exc:
        err.write("desk_cli: refused: %s\n" % exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
