#!/usr/bin/env python3
"""Supervise the lab's control-plane and node processes where there is no systemd.

usage: lab_supervisor.py start SPEC.json   daemonise and start every component
       lab_supervisor.py stop SPEC.json    stop the supervisor and its components
       lab_supervisor.py status SPEC.json  print one JSON line per component

SPEC.json: {"run_dir": "...", "log_dir": "...", "components": [
              {"name": "etcd", "argv": [...], "env": {...}, "ready": {"tcp": "127.0.0.1:2379"}}
              (ready may also be {"path": "/some/socket"}), ...]}

Components start in order; each waits for the previous one's readiness check so
the API server never starts before etcd answers. A component that exits is
restarted with a capped backoff. Each writes RUN_DIR/NAME.pid and LOG_DIR/NAME.log;
the supervisor itself writes RUN_DIR/supervisor.pid. Stopping sends SIGTERM in
reverse order and SIGKILL to what is still alive after a grace period.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

GRACE_S = 10
BACKOFF_MAX_S = 10


def _load(spec_path):
    with open(spec_path, encoding="utf-8") as handle:
        return json.load(handle)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not running.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _read_pid(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _tcp_ready(address, timeout=0.5):
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _log(message):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} supervisor: {message}", flush=True)


class Supervisor:
    def __init__(self, spec):
        self.spec = spec
        self.run_dir = spec["run_dir"]
        self.log_dir = spec["log_dir"]
        self.children = {}
        self.restarts = {}
        self.stopping = False

    def _start(self, component):
        name = component["name"]
        env = dict(os.environ)
        env.update(component.get("env", {}))
        log = open(os.path.join(self.log_dir, f"{name}.log"), "ab", buffering=0)
        proc = subprocess.Popen(
            component["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=component.get("cwd", self.run_dir), start_new_session=True,
        )
        log.close()
        self.children[name] = proc
        with open(os.path.join(self.run_dir, f"{name}.pid"), "w", encoding="utf-8") as handle:
            handle.write(f"{proc.pid}\n")
        _log(f"started {name} pid {proc.pid}")
        return proc

    def _wait_ready(self, component, timeout=120):
        check = component.get("ready", {})
        if "tcp" in check:
            probe, target = _tcp_ready, check["tcp"]
        elif "path" in check:
            probe, target = os.path.exists, check["path"]
        else:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            if probe(target):
                return
            time.sleep(0.2)
        _log(f"{component['name']} not ready at {target} after {timeout}s; continuing")

    def _on_term(self, _signum, _frame):
        self.stopping = True

    def run(self):
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        for component in self.spec["components"]:
            if self.stopping:
                break
            self._start(component)
            self._wait_ready(component)
        next_start = {}
        while not self.stopping:
            for component in self.spec["components"]:
                name = component["name"]
                proc = self.children.get(name)
                if proc is None or proc.poll() is None:
                    continue
                now = time.monotonic()
                if name not in next_start:
                    count = self.restarts.get(name, 0) + 1
                    self.restarts[name] = count
                    delay = min(BACKOFF_MAX_S, 2 ** min(count, 4) / 4)
                    _log(f"{name} exited with {proc.returncode}; restart {count} in {delay:.1f}s")
                    next_start[name] = now + delay
                elif now >= next_start[name]:
                    del next_start[name]
                    self._start(component)
            time.sleep(0.5)
        self._stop_children()

    def _stop_children(self):
        for component in reversed(self.spec["components"]):
            proc = self.children.get(component["name"])
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                _log(f"{component['name']} ignored SIGTERM; killing")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            _log(f"stopped {component['name']}")
        for component in self.spec["components"]:
            try:
                os.unlink(os.path.join(self.run_dir, f"{component['name']}.pid"))
            except FileNotFoundError:
                pass


def start(spec):
    os.makedirs(spec["run_dir"], exist_ok=True)
    os.makedirs(spec["log_dir"], exist_ok=True)
    pid_path = os.path.join(spec["run_dir"], "supervisor.pid")
    pid = _read_pid(pid_path)
    if pid and _pid_alive(pid):
        print(json.dumps({"changed": False, "supervisor_pid": pid}))
        return 0
    # Double fork: the supervisor outlives the Ansible task that started it.
    if os.fork():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid = _read_pid(pid_path)
            if pid and _pid_alive(pid):
                print(json.dumps({"changed": True, "supervisor_pid": pid}))
                return 0
            time.sleep(0.1)
        print(json.dumps({"changed": True, "error": "supervisor did not write its pid file"}))
        return 1
    os.setsid()
    if os.fork():
        os._exit(0)
    log = os.open(os.path.join(spec["log_dir"], "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    with open(pid_path, "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    try:
        Supervisor(spec).run()
    finally:
        try:
            os.unlink(pid_path)
        except FileNotFoundError:
            pass
    os._exit(0)


def stop(spec, timeout=60):
    pid_path = os.path.join(spec["run_dir"], "supervisor.pid")
    pid = _read_pid(pid_path)
    changed = False
    if pid and _pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        changed = True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    # Components left behind by a killed supervisor: their pid files still name them.
    for component in spec["components"]:
        child = _read_pid(os.path.join(spec["run_dir"], f"{component['name']}.pid"))
        if child and _pid_alive(child):
            changed = True
            try:
                os.killpg(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
    print(json.dumps({"changed": changed}))
    return 0


def status(spec):
    for component in spec["components"]:
        pid = _read_pid(os.path.join(spec["run_dir"], f"{component['name']}.pid"))
        print(json.dumps({"name": component["name"], "pid": pid, "running": bool(pid and _pid_alive(pid))}))
    return 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop", "status"):
        print(__doc__, file=sys.stderr)
        return 2
    spec = _load(argv[2])
    return {"start": start, "stop": stop, "status": status}[argv[1]](spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
