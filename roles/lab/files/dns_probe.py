#!/usr/bin/env python3
"""Ask the cluster DNS Service one A question and exit 0 once it answers.

The lab is only ready when a pod can resolve Service names: that needs CoreDNS up
*and* kube-proxy's rules for the kube-dns Service address, which arrive a moment
after the node is Ready. The host's OUTPUT chain carries the same KUBE-SERVICES
rules as pod traffic, so a query from here to the Service address checks both.

usage: dns_probe.py SERVER NAME [TIMEOUT_S]
"""
import os
import socket
import struct
import sys
import time


def build_query(name, query_id):
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    labels = b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.rstrip(".").split("."))
    return header + labels + b"\x00" + struct.pack("!HH", 1, 1)  # type A, class IN


def parse_answer(packet, query_id):
    """(rcode, answer count) of a reply to query_id; None for anything else."""
    if len(packet) < 12:
        return None
    got_id, flags, _qd, answers, _ns, _ar = struct.unpack("!HHHHHH", packet[:12])
    if got_id != query_id or not flags & 0x8000:
        return None
    return flags & 0x000F, answers


def probe(server, name, timeout_s, port=53):
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        query_id = struct.unpack("!H", os.urandom(2))[0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.sendto(build_query(name, query_id), (server, port))
                reply = parse_answer(sock.recv(4096), query_id)
            except OSError as exc:
                reply, last = None, str(exc) or type(exc).__name__
        if reply is not None:
            rcode, answers = reply
            if rcode == 0 and answers > 0:
                return True, "%s answered %s after %.1f s" % (server, name, timeout_s - (deadline - time.monotonic()))
            last = "rcode %d, %d answers" % (rcode, answers)
        time.sleep(0.5)
    return False, "cluster DNS at %s did not answer %s within %g s (last: %s)" % (server, name, timeout_s, last)


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    ok, message = probe(argv[1], argv[2], float(argv[3]) if len(argv) == 4 else 60.0)
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
