#!/usr/bin/env python3
"""A userspace Ethernet switch that impairs IPv4 frames like `tc qdisc ... netem`.

The fault lab (tests/lab/run.ts) uses it when the kernel has no netem qdisc
(CONFIG_NET_SCH_NETEM unset, as on the lab's CI machine): the lab detaches the hosts'
switch-side veth ends from the kernel bridge and this process forwards between them
instead, through raw AF_PACKET sockets.

    impair.py --ports p0,p1,p2 [--loss 0.3] [--delay-ms 100] [--jitter-ms 50]
              [--duplicate 0.05] [--reorder 0.1] [--seed 1]

Every IPv4 frame that enters a port is, independently:
  - dropped with probability --loss;
  - otherwise sent once, or twice with probability --duplicate (each copy on its own);
  - each copy sent at once with probability --reorder (it overtakes the delayed ones), or
    else after a delay drawn uniformly from delay-ms +- jitter-ms (so delayed frames also
    overtake each other, as with netem's jitter).
Other frames (ARP) are forwarded at once, unimpaired. Forwarding learns source MAC
addresses per port and floods unknown, broadcast and multicast destinations.

It prints "ready" once its sockets are bound, and on SIGTERM or SIGINT one JSON line with
what it did, then exits 0.
"""

import argparse
import heapq
import json
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def without_udp_checksum(frame: bytes) -> bytes:
    """The frame with its UDP checksum zeroed ("not computed", valid over IPv4).

    A veth leaves the checksum of outgoing UDP to the (virtual) hardware: a raw socket
    reads it unfinished, and the receiving kernel would drop the frame as corrupt once it
    has been through userspace.
    """
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != 17 or len(frame) < 14 + ihl + 8:  # not UDP
        return frame
    if frame[20] & 0x1F or frame[21]:  # a later IP fragment: no UDP header
        return frame
    at = 14 + ihl + 6
    return frame[:at] + b"\x00\x00" + frame[at + 2 :]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True)
    parser.add_argument("--loss", type=float, default=0.3)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--jitter-ms", type=float, default=50.0)
    parser.add_argument("--duplicate", type=float, default=0.05)
    parser.add_argument("--reorder", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    names = [p for p in args.ports.split(",") if p]
    socks = {}
    for name in names:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
        socks[name] = s
    by_fd = {s.fileno(): name for name, s in socks.items()}
    poller = select.poll()
    for s in socks.values():
        poller.register(s, select.POLLIN)

    stats = {
        "frames": 0,  # IPv4 frames that entered the switch
        "dropped": 0,
        "duplicated": 0,
        "immediate": 0,  # copies sent without delay (reordered ahead of delayed ones)
        "delayed": 0,
        "out_of_order": 0,  # copies sent before a copy that entered earlier
        "other": 0,  # non-IPv4 frames, forwarded unimpaired
        "send_errors": 0,
        "delay_ms_sum": 0.0,
    }
    macs = {}  # source MAC -> port
    pending = []  # heap of (due, seq, arrival, port, frame)
    seq = 0
    last_sent_arrival = 0
    stop = False

    def on_signal(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def out_ports(src_port, frame):
        dst = frame[0:6]
        if not dst[0] & 1:
            port = macs.get(bytes(dst))
            if port is not None:
                return [] if port == src_port else [port]
        return [p for p in names if p != src_port]

    def send(port, frame):
        try:
            socks[port].send(frame)
        except OSError:
            stats["send_errors"] += 1

    def release(arrival, ports, frame):
        nonlocal last_sent_arrival
        if arrival < last_sent_arrival:
            stats["out_of_order"] += 1
        last_sent_arrival = max(last_sent_arrival, arrival)
        for port in ports:
            send(port, frame)

    print("ready", flush=True)
    arrivals = 0
    while not stop:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, arrival, ports, frame = heapq.heappop(pending)
            release(arrival, ports, frame)
        timeout = -1 if not pending else max(0, int((pending[0][0] - now) * 1000) + 1)
        try:
            events = poller.poll(timeout)
        except InterruptedError:
            continue
        for fd, _ in events:
            src_port = by_fd[fd]
            sock = socks[src_port]
            while True:
                try:
                    frame, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own transmission on this port
                if len(frame) < 14:
                    continue
                macs[bytes(frame[6:12])] = src_port
                ports = out_ports(src_port, frame)
                if not ports:
                    continue
                if frame[12:14] != b"\x08\x00":
                    stats["other"] += 1
                    for port in ports:
                        send(port, frame)
                    continue
                stats["frames"] += 1
                arrivals += 1
                frame = without_udp_checksum(frame)
                if rng.random() < args.loss:
                    stats["dropped"] += 1
                    continue
                copies = 1
                if rng.random() < args.duplicate:
                    copies = 2
                    stats["duplicated"] += 1
                for _ in range(copies):
                    if rng.random() < args.reorder:
                        stats["immediate"] += 1
                        release(arrivals, ports, frame)
                        continue
                    delay = args.delay_ms + rng.uniform(-args.jitter_ms, args.jitter_ms)
                    delay = max(0.0, delay)
                    stats["delayed"] += 1
                    stats["delay_ms_sum"] += delay
                    seq += 1
                    heapq.heappush(
                        pending, (time.monotonic() + delay / 1000, seq, arrivals, ports, frame)
                    )
    stats["pending_at_exit"] = len(pending)
    stats["mean_delay_ms"] = (
        round(stats["delay_ms_sum"] / stats["delayed"], 1) if stats["delayed"] else 0
    )
    del stats["delay_ms_sum"]
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
