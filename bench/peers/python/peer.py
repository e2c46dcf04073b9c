"""Peers: Python greenlet and gevent, measured beside the project in the same run.

Run (bench/run does this, with the venv it makes under bench/.peers/):

    bench/.peers/venv/bin/python bench/peers/python/peer.py [--group switch,lifecycle,hub] [--quick] [--duration S]

Prints one line per measurement in the format documented in bench/src/lib.rs, e.g.

    RESULT group=switch name=roundtrip peer=py-greenlet ns_per_op=310.2 n=200000

Counts are those of bench::Counts in bench/src/lib.rs (keep them in step). Time is per operation and includes
the interpreter's loop overhead, which is what a Python user pays.

- switch/roundtrip (py-greenlet): main switches into g, g switches back to main, passing an int each way.
- switch/roundtrip_ab (py-greenlet): greenlets A and B, neither the main one, switch A->B->A passing None.
- switch/create_run_finish (py-greenlet): greenlet(f).switch(x) with f returning at once.
- lifecycle/spawn_join_<n> (py-gevent): gevent.spawn n trivial functions, then gevent.joinall.
- lifecycle/parked_mem_<n>, maps_<n> (py-greenlet: started greenlets suspended in a switch; py-gevent:
  greenlets waiting on one Event): RSS growth per greenlet, measured in a fresh interpreter (--mem-*).
- hub/sleep0_x1, sleep0_x100 (py-gevent): gevent.sleep(0) in 1 or 100 greenlets; ns per sleep.
- hub/chan_handoff (py-gevent): ping-pong over two gevent.queue.Channel; ns per hand-off (round trip / 2).
- hub/event_set_<n> (py-gevent): n greenlets wait on one gevent.event.Event; set() until all have run.
- hub/timers_<n>_{mean,p99,cpu} (py-gevent): n greenlets each gevent.sleep a distinct duration (greenlet i:
  spread*(i+1)/n); lateness (wake - deadline) in us, and the process CPU time of the whole run per timer, ns.
"""

import argparse
import gc
import os
import subprocess
import sys
import time

MAX_BATCHES = 1000


def counts(quick):
    if quick:
        return dict(spawn=10_000, parked=10_000, ops=20_000, waiters=10_000, timers=1_000, timer_spread_ms=50)
    return dict(spawn=100_000, parked=100_000, ops=200_000, waiters=100_000, timers=100_000, timer_spread_ms=500)


def label(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def report(group, name, peer, metric, value, n):
    print(f"RESULT group={group} name={name} peer={peer} {metric}={value:.3f} n={n}", flush=True)


def median(v):
    v = sorted(v)
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def time_per_op(duration, ops, batch):
    """Mirrors bench::time_per_op: warm-up, then batches until `duration` s (3..MAX_BATCHES); median ns/op."""
    batch()
    samples = []
    start = time.perf_counter()
    while len(samples) < MAX_BATCHES and (len(samples) < 3 or time.perf_counter() - start < duration):
        t = time.perf_counter_ns()
        batch()
        samples.append((time.perf_counter_ns() - t) / ops)
    return median(samples)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


def map_count():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def report_parked(peer, n, before):
    per = max(rss_bytes() - before, 0) / n
    report("lifecycle", f"parked_mem_{label(n)}", peer, "bytes_per_task", per, n)
    report("lifecycle", f"maps_{label(n)}", peer, "maps", map_count(), n)


# --- greenlet ---------------------------------------------------------------------------------------------

def greenlet_roundtrip(c, d):
    from greenlet import greenlet, getcurrent

    main = getcurrent()

    def body(x):
        while x is not None:
            x = main.switch(x)

    g = greenlet(body)
    g.switch(0)
    ops = c["ops"]

    def batch():
        sw = g.switch
        for i in range(ops):
            sw(i)

    ns = time_per_op(d, ops, batch)
    g.switch(None)
    report("switch", "roundtrip", "py-greenlet", "ns_per_op", ns, ops)


def greenlet_roundtrip_ab(c, d):
    from greenlet import greenlet, getcurrent

    main = getcurrent()
    ops = c["ops"]

    def a_body(n):
        # n round trips with B per batch, then back to main; ends when given 0.
        while n:
            sw = gb.switch
            for _ in range(n):
                sw(None)
            n = main.switch(None)

    def b_body(x):
        while x is not False:
            x = ga.switch(None)

    ga, gb = greenlet(a_body), greenlet(b_body)
    ns = time_per_op(d, ops, lambda: ga.switch(ops))
    ga.switch(0)
    gb.switch(False)
    report("switch", "roundtrip_ab", "py-greenlet", "ns_per_op", ns, ops)


def greenlet_create_run_finish(c, d):
    from greenlet import greenlet

    def f(x):
        return x * 3

    ops = c["ops"]

    def batch():
        for i in range(ops):
            greenlet(f).switch(i)

    ns = time_per_op(d, ops, batch)
    report("switch", "create_run_finish", "py-greenlet", "ns_per_op", ns, ops)


def greenlet_parked(n):
    from greenlet import greenlet, getcurrent

    main = getcurrent()

    def body(x):
        # A little depth, like a real task parked inside a call.
        return main.switch(x)

    gc.collect()
    before = rss_bytes()
    gs = []
    for i in range(n):
        g = greenlet(body)
        g.switch(i)
        gs.append(g)
    report_parked("py-greenlet", n, before)
    for g in gs:
        g.switch(None)


# --- gevent -----------------------------------------------------------------------------------------------

def gevent_spawn_join(c, d):
    import gevent

    n = c["spawn"]

    def f(i):
        return i

    def batch():
        gevent.joinall([gevent.spawn(f, i) for i in range(n)])

    ns = time_per_op(d, n, batch)
    report("lifecycle", f"spawn_join_{label(n)}", "py-gevent", "ns_per_op", ns, n)


def gevent_parked(n):
    import gevent
    from gevent.event import Event

    ev = Event()
    gc.collect()
    before = rss_bytes()
    gs = [gevent.spawn(ev.wait) for _ in range(n)]
    gevent.sleep(0)  # every greenlet runs once and parks in ev.wait()
    report_parked("py-gevent", n, before)
    ev.set()
    gevent.joinall(gs)


def gevent_sleep0(c, d, tasks, name):
    import gevent

    per = max(c["ops"] // tasks, 1)
    total = per * tasks

    def loop():
        s = gevent.sleep
        for _ in range(per):
            s(0)

    def batch():
        gevent.joinall([gevent.spawn(loop) for _ in range(tasks)])

    ns = time_per_op(d, total, batch)
    report("hub", name, "py-gevent", "ns_per_op", ns, total)


def gevent_handoff(c, d):
    import gevent
    from gevent.queue import Channel

    ops = c["ops"]

    def batch():
        to_b, to_a = Channel(), Channel()

        def b():
            for _ in range(ops):
                to_a.put(to_b.get() + 1)

        gb = gevent.spawn(b)
        v = 0
        for _ in range(ops):
            to_b.put(v)
            v = to_a.get()
        gb.join()

    ns = time_per_op(d, 2 * ops, batch)
    report("hub", "chan_handoff", "py-gevent", "ns_per_op", ns, 2 * ops)


def gevent_event_set(c):
    import gevent
    from gevent.event import AsyncResult, Event

    n = c["waiters"]
    samples = []
    for _ in range(3):
        ev, all_done = Event(), AsyncResult()
        left = [n]

        def waiter():
            ev.wait()
            left[0] -= 1
            if left[0] == 0:
                all_done.set(True)

        gs = [gevent.spawn(waiter) for _ in range(n)]
        gevent.sleep(0)
        t = time.perf_counter_ns()
        ev.set()
        all_done.get()
        samples.append((time.perf_counter_ns() - t) / n)
        gevent.joinall(gs)
    report("hub", f"event_set_{label(n)}", "py-gevent", "ns_per_op", median(samples), n)


def gevent_timers(c):
    import gevent

    n, spread_ns = c["timers"], c["timer_spread_ms"] * 1_000_000
    late = [0] * n

    def sleeper(i, d_ns):
        deadline = time.perf_counter_ns() + d_ns
        gevent.sleep(d_ns / 1e9)
        late[i] = max(0, time.perf_counter_ns() - deadline)

    cpu0 = time.process_time_ns()
    gs = [gevent.spawn(sleeper, i, spread_ns * (i + 1) // n) for i in range(n)]
    gevent.joinall(gs)
    cpu = time.process_time_ns() - cpu0
    late.sort()
    p99 = late[-(-n * 99 // 100) - 1]
    base = f"timers_{label(n)}"
    report("hub", f"{base}_mean", "py-gevent", "us_late", sum(late) / n / 1e3, n)
    report("hub", f"{base}_p99", "py-gevent", "us_late", p99 / 1e3, n)
    report("hub", f"{base}_cpu", "py-gevent", "cpu_ns_per_timer", cpu / n, n)


HELLO = b"Hello, World!"


def serve(kind, port_file):
    """io group: bind 127.0.0.1:0, write the port to port_file (via a rename), serve until killed (at most
    15 minutes): echo with gevent.server.StreamServer, http with gevent.pywsgi.WSGIServer.

    Accepted sockets get TCP_NODELAY, as Go's and the Rust peers' do: pywsgi writes the headers and the body
    in separate sends, and with Nagle + delayed ACK each keep-alive connection would stall ~40 ms a request.
    """
    import socket

    import gevent
    from gevent.pywsgi import WSGIHandler, WSGIServer
    from gevent.server import StreamServer

    def nodelay(sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    class Handler(WSGIHandler):
        def handle(self):
            nodelay(self.socket)
            return super().handle()

    def echo(sock, _addr):
        nodelay(sock)
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)

    def app(_environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
        return [HELLO]

    if kind == "http":
        server = WSGIServer(("127.0.0.1", 0), app, log=None, handler_class=Handler)
    else:
        server = StreamServer(("127.0.0.1", 0), echo)
    server.start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_port))
    os.rename(port_file + ".tmp", port_file)
    gevent.sleep(15 * 60)


def parked_in_child(kind, n, quick):
    args = [sys.executable, os.path.abspath(__file__), f"--mem-{kind}", str(n)]
    if quick:
        args.append("--quick")
    sys.stdout.flush()
    r = subprocess.run(args, check=False)
    if r.returncode != 0:
        print(f"SKIP group=lifecycle name=parked_mem_{label(n)} peer=py-{kind} reason=child_exit_{r.returncode}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--group", "--groups", action="append", default=[])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--mem-greenlet", type=int, default=0, help="internal: parked memory in a fresh process")
    p.add_argument("--mem-gevent", type=int, default=0, help="internal: parked memory in a fresh process")
    p.add_argument("--serve", choices=["echo", "http"], help="io group: be a loopback server")
    p.add_argument("--port-file", help="io group: where to write the bound port")
    a = p.parse_args()
    if a.serve:
        serve(a.serve, a.port_file)
        return
    if a.mem_greenlet:
        greenlet_parked(a.mem_greenlet)
        return
    if a.mem_gevent:
        gevent_parked(a.mem_gevent)
        return
    groups = {g for x in a.group for g in x.split(",") if g}
    want = lambda g: not groups or g in groups  # noqa: E731
    d = a.duration if a.duration is not None else (0.05 if a.quick else 0.5)
    c = counts(a.quick)
    if want("switch"):
        greenlet_roundtrip(c, d)
        greenlet_roundtrip_ab(c, d)
        greenlet_create_run_finish(c, d)
    if want("lifecycle"):
        gevent_spawn_join(c, d)
        parked_in_child("greenlet", c["parked"], a.quick)
        parked_in_child("gevent", c["parked"], a.quick)
    if want("hub"):
        gevent_sleep0(c, d, 1, "sleep0_x1")
        gevent_sleep0(c, d, 100, "sleep0_x100")
        gevent_handoff(c, d)
        gevent_event_set(c)
        gevent_timers(c)


if __name__ == "__main__":
    main()
