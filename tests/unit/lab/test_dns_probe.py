"""Unit tests for roles/lab/files/dns_probe.py against a small DNS responder on loopback."""

from __future__ import annotations

import importlib.util
import socket
import struct
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "lab" / "files" / "dns_probe.py"
_spec = importlib.util.spec_from_file_location("dns_probe", SCRIPT)
dns_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dns_probe)


class Responder:
    """Answers each query with the next scripted reply: 'nxdomain', 'wrong_id' or 'answer'."""

    def __init__(self, script):
        self.script = list(script)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.questions = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.script:
            try:
                packet, peer = self.sock.recvfrom(512)
            except OSError:
                return
            query_id = struct.unpack("!H", packet[:2])[0]
            self.questions.append(packet[12:])
            kind = self.script.pop(0)
            if kind == "wrong_id":
                query_id ^= 0xFFFF
            rcode, answers = (3, 0) if kind == "nxdomain" else (0, 1)
            header = struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, answers, 0, 0)
            self.sock.sendto(header + packet[12:], peer)

    def close(self):
        self.sock.close()


@pytest.fixture
def responder(request):
    made = []

    def make(script):
        made.append(Responder(script))
        return made[-1]
    yield make
    for item in made:
        item.close()


def test_query_asks_for_the_a_record_of_the_name():
    packet = dns_probe.build_query("kubernetes.default.svc.cluster.local", 0x1234)
    assert packet[:2] == b"\x12\x34"
    assert packet[12:] == (b"\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00" + b"\x00\x01\x00\x01")


def test_an_answer_ends_the_probe(responder):
    server = responder(["answer"])
    ok, message = dns_probe.probe("127.0.0.1", "kubernetes.default.svc.cluster.local", 5, port=server.port)
    assert ok, message
    assert "answered kubernetes.default.svc.cluster.local" in message


def test_nxdomain_and_foreign_replies_are_retried_until_an_answer(responder):
    server = responder(["nxdomain", "wrong_id", "answer"])
    ok, message = dns_probe.probe("127.0.0.1", "a.b", 10, port=server.port)
    assert ok, message
    assert len(server.questions) == 3


def test_no_answer_fails_naming_the_server_and_the_last_reply(responder):
    server = responder(["nxdomain"] * 20)
    ok, message = dns_probe.probe("127.0.0.1", "a.b", 1.5, port=server.port)
    assert not ok
    assert "cluster DNS at 127.0.0.1 did not answer a.b within 1.5 s" in message
    assert "rcode 3" in message


def test_usage_error_without_arguments(capsys):
    assert dns_probe.main(["dns_probe.py"]) == 2
    assert "usage" in capsys.readouterr().err
