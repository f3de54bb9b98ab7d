#!/usr/bin/env python3
"""What one console keeper costs: spawn-to-ready time and resident memory, per build of kiln.

    python3 bench/keeper_cost.py --kiln fdd=/tmp/pub/fdd/kiln --kiln aot=/tmp/pub/aot/kiln [--runs 10]

For each run and each build, interleaved (so a machine whose load drifts skews both alike): a stand-in VMM
(`sleep`, holding the keeper's FIFO read-write as Firecracker does) is started, then `kiln console-keeper` for it; the
time from the keeper's spawn to its ready file (`console.log.keeper`, which it writes once it holds the FIFO and serves
its socket) is taken, then its RSS and PSS (/proc/PID/smaps_rollup) and thread count (/proc/PID/status), once at ready
and once after 1 MiB of console output went through it (rotating at 64 KiB). The floor is `cat FIFO >> file` (a
hand-written C reader of the same FIFO, no rotation, no socket): its memory is what "a process that copies a FIFO to
a file" costs at least. Medians are reported, with the ratio of each build to the first one.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time


def smaps(pid):
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:"):
                values[parts[0][:-1]] = int(parts[1])
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                values["Threads"] = int(line.split()[1])
    return values


def start_time_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2:].split()[19]


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(0.0005)


def one_run(kiln, directory):
    output = os.path.join(directory, "console.log")
    fifo = output + ".fifo"
    os.mkfifo(fifo, 0o600)
    # The stand-in VMM: holds the FIFO read-write on its stdout, as Firecracker's spawn does.
    vmm = subprocess.Popen(["sleep", "600"], stdout=os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
    exe = os.readlink(f"/proc/{vmm.pid}/exe")
    args = [kiln, "console-keeper", "--vmm-pid", str(vmm.pid), "--vmm-start", start_time_ticks(vmm.pid), "--vmm-exe", exe,
            "--fifo", fifo, "--output", output, "--max-bytes", str(64 * 1024), "--files", "2", "--socket", output + ".sock"]
    ready = output + ".keeper"
    started = time.monotonic()
    keeper = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: os.path.exists(ready))
    ready_ms = (time.monotonic() - started) * 1000
    at_ready = smaps(keeper.pid)
    # 1 MiB of console output, written by another holder of the FIFO (the VMM holds it too).
    with open(fifo, "wb", buffering=0) as writer:
        line = (b"x" * 99) + b"\n"
        for _ in range(1024 * 1024 // len(line)):
            writer.write(line)
        writer.write(b"END-OF-RUN\n")

    def drained():
        if not os.path.exists(output):
            return False
        with open(output, "rb") as f:
            return f.read().endswith(b"END-OF-RUN\n")
    wait_for(drained)
    after = smaps(keeper.pid)
    vmm.kill()
    vmm.wait()
    keeper.wait(timeout=30)
    return ready_ms, at_ready, after


def floor_run(directory):
    fifo = os.path.join(directory, "floor.fifo")
    os.mkfifo(fifo, 0o600)
    holder = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    with open(os.path.join(directory, "floor.log"), "ab") as out:
        cat = subprocess.Popen(["cat", fifo], stdout=out)
        wait_for(lambda: os.path.exists(f"/proc/{cat.pid}/fd/3"))
        values = smaps(cat.pid)
    os.close(holder)
    cat.wait(timeout=30)
    return values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", action="append", required=True, help="NAME=PATH of a kiln executable")
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    builds = [tuple(k.split("=", 1)) for k in options.kiln]
    results = {name: [] for name, _ in builds}
    floors = []
    for _ in range(options.runs):
        for name, path in builds:
            with tempfile.TemporaryDirectory(prefix="keeper-cost-") as directory:
                results[name].append(one_run(path, directory))
        with tempfile.TemporaryDirectory(prefix="keeper-cost-") as directory:
            floors.append(floor_run(directory))

    def median(values):
        return statistics.median(values)

    first = None
    print(f"{'build':<8} {'ready ms':>9} {'RSS@ready':>10} {'PSS@ready':>10} {'thr':>4} {'RSS@1MiB':>9} {'PSS@1MiB':>9} {'thr':>4}")
    for name, _ in builds:
        runs = results[name]
        row = (median([r[0] for r in runs]),
               median([r[1]["Rss"] for r in runs]), median([r[1]["Pss"] for r in runs]), median([r[1]["Threads"] for r in runs]),
               median([r[2]["Rss"] for r in runs]), median([r[2]["Pss"] for r in runs]), median([r[2]["Threads"] for r in runs]))
        first = first or row
        print(f"{name:<8} {row[0]:>9.1f} {row[1]:>8} K {row[2]:>8} K {row[3]:>4} {row[4]:>7} K {row[5]:>7} K {row[6]:>4}"
              f"   (x{row[0] / first[0]:.2f} time, x{row[5] / first[5]:.2f} PSS vs {builds[0][0]})")
    print(f"{'floor':<8} {'':>9} {median([f['Rss'] for f in floors]):>8} K {median([f['Pss'] for f in floors]):>8} K "
          f"{median([f['Threads'] for f in floors]):>4}   (cat FIFO >> file)")


if __name__ == "__main__":
    main()
