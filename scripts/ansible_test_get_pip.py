"""Offline stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test downloads get-pip.py from a host this network cannot reach; its error message
says to save a bootstrap script at ~/.ansible/test/cache/get_pip_<version>.py instead.
This one bootstraps pip with the standard library's ensurepip, then installs the pip
version asked for from the package index.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
requested = [arg for arg in sys.argv[1:] if not arg.startswith("--")] or ["pip"]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *requested])
