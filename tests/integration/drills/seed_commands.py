"""The seeds' commands, read from the seed documents themselves and run exactly as written
through the trainee shell (scripts/trainee_shell.py), with each answer checked.

The seeds' ``bash`` blocks are the source: a command there that this module does not know
how to check fails the test, so a seed that changes is noticed.
"""
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import drill_runner

SHELL = drill_runner.REPO / "scripts" / "trainee_shell.py"
SEED_DIRS = [drill_runner.REPO.parent / "shared" / "seeds", Path("/work/shared/seeds")]
SEEDS = {"outage": "service-outage-scenario.md", "error_spike": "error-spike-scenario.md"}
# `watch` redraws a terminal until stopped: run it in a pseudo-terminal this long.
WATCH_S = 6


def seed_commands(scenario):
    """The commands of the seed's ``bash`` blocks, in order (comments left out)."""
    for base in SEED_DIRS:
        path = base / SEEDS[scenario]
        if path.exists():
            break
    else:
        raise AssertionError("seed document %s not found in %s" % (SEEDS[scenario], SEED_DIRS))
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        commands += [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    return commands


def _argv(trainee, namespace, command, deploy_repo_base=None):
    argv = [str(drill_runner.VENV_BIN / "python"), str(SHELL), "--trainee", trainee, "--namespace", namespace]
    if deploy_repo_base:
        argv += ["--deploy-repo-base", str(deploy_repo_base)]
    return argv + ["-c", command]


def run_in_shell(trainee, namespace, command, deploy_repo_base=None, timeout=60):
    """``(rc, output)`` of ``command`` in the trainee shell; ``watch`` gets a terminal."""
    argv = _argv(trainee, namespace, command, deploy_repo_base)
    if not command.startswith("watch "):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        return proc.returncode, proc.stdout + proc.stderr
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    chunks, deadline = [], time.time() + WATCH_S
    while time.time() < deadline:
        ready, _w, _x = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunks.append(os.read(fd, 65536))
            except OSError:
                break
    os.kill(pid, 2)
    time.sleep(0.5)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    return 0, b"".join(chunks).decode("utf-8", "replace")


# What the trainee shell answers when api-gateway has no ready pod (an outage takes the
# gateway's deep readiness with it): the real api.seo-tool.com would be down too.
GATEWAY_DOWN = "no ready api-gateway pods"


def check_answer(command, rc, output, release_message=None, gateway_may_be_down=False):
    """None when the answer is what the command should give on a drill, else why not.
    ``gateway_may_be_down``: an outage drill, where api-gateway may have no ready pod."""
    if gateway_may_be_down and command.startswith("curl") and GATEWAY_DOWN in output:
        return None
    if command.startswith("kubectl get pods"):
        ok = rc == 0 and "NAME" in output and "Running" in output
    elif command.startswith("kubectl get events"):
        ok = rc == 0 and "REASON" in output
    elif command.startswith("kubectl logs") and "--previous" in command:
        # Answered by the API server: the previous containers' logs, or that there is none.
        ok = rc == 0 or "previous terminated container" in output
    elif command.startswith("kubectl logs") and "| grep" in command:
        ok = rc in (0, 1)          # grep: lines found, or none; the logs were read
    elif command.startswith("kubectl logs"):
        ok = rc == 0 and output.strip() != ""
    elif command.startswith("kubectl rollout restart"):
        ok = rc == 0 and "restarted" in output
    elif command.startswith("kubectl scale"):
        ok = rc == 0 and "scaled" in output
    elif command.startswith("curl -I") and "/health" in command:
        ok = rc == 0 and re.match(r"HTTP/\S+ \d{3}", output.strip()) is not None
    elif command.startswith("curl") and "/metrics" in command and "| grep errors" in command:
        ok = rc in (0, 1)          # the metrics were fetched; a line with "errors" or none
    elif command.startswith("curl") and "/metrics" in command:
        ok = rc == 0 and "error_rate" in output
    elif command.startswith("watch") and "/metrics" in command:
        ok = "error_rate" in output
    elif command.startswith("watch") and "/health" in command:
        ok = '"status"' in output or "status" in output
    elif command.startswith("git log -p services/api-gateway"):
        ok = rc == 0 and "services/api-gateway/deployment.yaml" in output and (
            release_message is None or release_message in output)
    elif command == "redis-cli FLUSHDB":
        ok = rc == 0 and output.strip().endswith("OK")
    else:
        return "no check for this seed command: %r" % command
    return None if ok else "rc %s, output: %s" % (rc, output[-600:])
