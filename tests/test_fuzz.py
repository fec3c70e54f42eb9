"""10,000 seeded malformed messages (tests/fuzz_corpus.py) sent over one real DEALER socket to a real `relight serve`:
every one gets an error reply naming its request (or none, when the header could not be read), the server answers ping
afterwards, and its resident memory stays within a stated bound."""

import collections
import json
import time
import uuid

import pytest
import zmq

from fuzz_corpus import CATEGORIES, corpus
from relight_protocol import errors
from relight_protocol.envelope import deserialize
from relight_protocol.version import PROTOCOL_VERSION
from server_fixture import start_server

SEED = 17
N_MESSAGES = 10_000
WINDOW = 128  # messages in flight: pipelined, but below ZeroMQ's default high-water marks (1000), which would drop
REPLY_TIMEOUT = 120.0  # seconds without any reply before the test gives up (2 shared cores)
# The server keeps nothing of a refused message. What it may hold at once is the in-flight window (WINDOW messages of
# at most MAX_CONTENT_BYTES + a few small buffers, about 1 MiB each, so 128 MiB if every one were the largest; the
# corpus has few large ones) plus the allocator's slack. 64 MiB over the RSS measured after a first pass of the same
# corpus catches any per-message leak (10,000 messages leaking only 7 KiB each would cross it).
RSS_GROWTH_BOUND = 64 * 1024 * 1024
WARM_UP_MESSAGES = 1_000  # the first pass, after which the RSS baseline is read
PROTOCOL_ENAMES = {cls.__name__ for cls in vars(errors).values()
                   if isinstance(cls, type) and issubclass(cls, errors.ProtocolError)}


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run(sock: zmq.Socket, cases: list) -> tuple[dict, list]:
    """Send `cases` with at most WINDOW in flight; (reply by parent msg_id, replies without a parent)."""
    by_parent: dict[str, list] = collections.defaultdict(list)
    orphans: list = []
    sent = received = 0
    while received < len(cases):
        while sent < len(cases) and sent - received < WINDOW:
            sock.send_multipart(cases[sent].frames)
            sent += 1
        if not sock.poll(int(REPLY_TIMEOUT * 1000)):
            raise TimeoutError(f"no reply for {REPLY_TIMEOUT} s after {received} of {len(cases)} replies")
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            assert frames[0] == b"", "replies start with the empty delimiter"
            msg = deserialize(frames[1:], peer="client")
            if msg.msg_type == "progress":
                raise AssertionError(f"a malformed message started a job: progress {msg.content} for {msg.parent_id}")
            if not msg.msg_type.endswith("_reply"):
                continue  # a message the server sends of its own accord (a heartbeat, say): no request's answer
            (by_parent[msg.parent_id] if msg.parent_id else orphans).append(msg)
            received += 1
    return by_parent, orphans


def check(cases: list, by_parent: dict, orphans: list) -> collections.Counter:
    """Every case answered once with an error of a protocol class; the count per category."""
    per_category = collections.Counter()
    expected_orphans = 0
    for case in cases:
        per_category[case.category] += 1
        if case.parent is None:
            expected_orphans += 1
            continue
        replies = by_parent.pop(case.parent, [])
        assert len(replies) == 1, f"{case.category}: {len(replies)} replies to {case.parent}: {case.frames[:3]!r:.300}"
        reply = replies[0]
        assert reply.content["status"] == "error", f"{case.category} was served: {case.frames[:3]!r:.300}"
        assert reply.content["ename"] in PROTOCOL_ENAMES, (case.category, reply.content)
        assert "traceback" not in reply.content
    assert not by_parent, f"replies to requests never sent: {list(by_parent)[:5]}"
    assert len(orphans) == expected_orphans
    for reply in orphans:
        assert reply.msg_type == "error_reply" and reply.content["status"] == "error", reply.content
        assert reply.content["ename"] in PROTOCOL_ENAMES, reply.content
    return per_category


def ping(sock: zmq.Socket) -> dict:
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "ping_request", "protocol_version": PROTOCOL_VERSION}
    sock.send_multipart([b"", json.dumps(header).encode(), b"{}"])
    while True:  # skipping anything the server sends of its own accord
        assert sock.poll(int(REPLY_TIMEOUT * 1000)), "the server did not answer ping"
        reply = deserialize(sock.recv_multipart()[1:], peer="client")
        if reply.parent_id == msg_id:
            assert reply.msg_type == "ping_reply"
            return reply.content


def test_the_corpus_is_seeded_and_covers_every_category():
    a, b = corpus(SEED, 300), corpus(SEED, 300)
    assert [c.frames for c in a] == [c.frames for c in b]
    assert [c.frames for c in corpus(SEED + 1, 300)] != [c.frames for c in a]
    big = corpus(SEED, N_MESSAGES)
    assert len(big) >= 10_000
    counts = collections.Counter(c.category for c in big)
    assert len(counts) == len(CATEGORIES) and min(counts.values()) >= 400, counts


@pytest.fixture
def server(tmp_path):
    s = start_server(tmp_path / "store")
    yield s
    s.stop()


def test_every_malformed_message_gets_an_error_reply_and_the_server_stays_well(server):
    cases = corpus(SEED, N_MESSAGES)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    try:
        assert ping(sock)["status"] == "ok"
        check(cases[:WARM_UP_MESSAGES], *run(sock, cases[:WARM_UP_MESSAGES]))  # the allocator's working set
        rss_before = rss_bytes(server.proc.pid)
        t0 = time.perf_counter()
        counts = check(cases, *run(sock, cases))
        seconds = time.perf_counter() - t0
        assert ping(sock)["status"] == "ok"
        rss_after = rss_bytes(server.proc.pid)
    finally:
        sock.close()
        ctx.term()
    print(f"\nfuzz: {len(cases)} messages answered in {seconds:.1f} s ({len(cases) / seconds:.0f}/s); server RSS "
          f"{rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB; per category {dict(counts)}")
    assert server.proc.poll() is None
    assert rss_after - rss_before <= RSS_GROWTH_BOUND, (rss_before, rss_after)
    assert not [line for line in server.stderr if "Traceback" in line], "\n".join(server.stderr[-40:])
