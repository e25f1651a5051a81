"""Worker "hosts" for end-to-end tests and the burst bench: network namespaces with addresses of their own.

A host is a network namespace (`ip netns`) joined to this machine by a veth pair on a /30 of HOSTS_SUBNET
(10.213.77.0/26: the machine's side `.4n+1`, the host's `.4n+2`). Nothing is routed anywhere else: a process in
a host reaches only the machine's side of its own veth, where this module's forwarders listen and relay to the
servers that listen on 127.0.0.1 (PostgreSQL, Redis, the Stripe emulator). A Celery worker or beat runs inside a
host with `ip netns exec`.

A host is lost the way a machine is lost: `drop()` takes its end of the link down, so every packet to it vanishes
and its TCP connections hang (nothing closes them: no FIN, no RST reaches this side), then `kill()` sends
SIGKILL to every process in it. Its sessions end only when the server side gives up on the silent peer.

The forwarder stands in for the server's own network stack, so it behaves as the server would towards a silent
peer: a connection it accepted carries the TCP keepalives (and user timeout) the real server would put on it —
its configured `tcp_keepalives_*` / `tcp-keepalive` (read from the server when the forwarder starts), or for
PostgreSQL the values the client asked for in its startup packet's `options` (`-c tcp_keepalives_idle=…`:
PostgreSQL applies those to the session's socket). When that socket fails (the keepalives went unanswered), the
forwarder closes its connection to the server, which ends the session as the server's own socket error would.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOSTS_SUBNET = "10.213.77"  # a /26: four /30s at most here; nothing else on the machine uses it
PREFIX = "tollgate-host"
VETH_PREFIX = "tgh"
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def netns_available() -> str:
    """Why hosts cannot be made here ('' when they can)."""
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    try:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, timeout=10, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "needs `ip netns` (iproute2)"
    if listed.returncode != 0:
        return f"`ip netns` is unavailable: {listed.stderr.decode(errors='replace').strip()}"
    return ""


def _ip(*args: str, netns: str = "") -> None:
    command = ["ip", "netns", "exec", netns, "ip", *args] if netns else ["ip", *args]
    result = subprocess.run(command, capture_output=True, timeout=10, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.decode(errors='replace').strip()}")


def netns_pids(name: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", name], capture_output=True, timeout=10, check=False)
    return [int(pid) for pid in result.stdout.split()] if result.returncode == 0 else []


def remove_leftovers() -> None:
    """Namespaces of an earlier run that could not clean up (killed itself): their processes and links go."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, timeout=10, check=False)
    for line in listed.stdout.decode().splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            _remove(name)


def _remove(name: str) -> None:
    for pid in netns_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while netns_pids(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Deleting the namespace destroys its end of the veth, and with it the pair.
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


# --- keepalives -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keepalive:
    """TCP keepalive settings of a socket (seconds); 0 idle: the kernel's defaults (two hours)."""

    idle: int = 0
    interval: int = 0
    count: int = 0
    user_timeout_ms: int = 0

    def apply(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if self.idle:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, self.idle)
        if self.interval:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, self.interval)
        if self.count:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, self.count)
        if self.user_timeout_ms:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.user_timeout_ms)


def postgres_server_keepalive(dsn: str) -> Keepalive:
    """What the PostgreSQL server puts on a client's socket unless the session asks otherwise (0: the kernel's)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        values = {
            name: int(str(conn.execute(f"SHOW {name}").fetchone()[0]).rstrip("ms") or 0)  # type: ignore[index]
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        }
        user_timeout = str(conn.execute("SHOW tcp_user_timeout").fetchone()[0])  # type: ignore[index]
    return Keepalive(
        idle=values["tcp_keepalives_idle"],
        interval=values["tcp_keepalives_interval"],
        count=values["tcp_keepalives_count"],
        user_timeout_ms=int(re.sub(r"\D", "", user_timeout) or 0),
    )


def redis_server_keepalive(url: str) -> Keepalive:
    """Redis's `tcp-keepalive N`: idle N, probes every N/3, three of them (Redis's anetKeepAlive)."""
    import redis

    seconds = int(redis.Redis.from_url(url).config_get("tcp-keepalive").get("tcp-keepalive") or 0)
    if not seconds:
        return Keepalive()
    return Keepalive(idle=seconds, interval=max(1, seconds // 3), count=3)


def session_keepalive(startup: bytes, server: Keepalive) -> Keepalive:
    """The keepalives PostgreSQL puts on a session's socket: the startup packet's `options` (`-c name=value` or
    `--name=value`) over the server's configuration."""
    fields = startup[8:].split(b"\0")
    params = dict(zip(fields[0::2], fields[1::2], strict=False))
    options = params.get(b"options", b"").decode(errors="replace")
    asked = dict(re.findall(r"(?:-c\s*|--)(tcp_\w+)=(\d+)", options))
    return Keepalive(
        idle=int(asked.get("tcp_keepalives_idle", server.idle)),
        interval=int(asked.get("tcp_keepalives_interval", server.interval)),
        count=int(asked.get("tcp_keepalives_count", server.count)),
        user_timeout_ms=int(asked.get("tcp_user_timeout", server.user_timeout_ms)),
    )


# --- forwarders -----------------------------------------------------------------------------------------------


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed during the startup")
        data += chunk
    return data


class Forwarder:
    """Listens on (address, port 0 → chosen) and relays each connection to `target`, two threads a connection.
    `server` is the keepalive the real server puts on its clients' sockets; `postgres`: read each session's own
    from its startup packet."""

    def __init__(
        self, address: str, target: tuple[str, int], *, server: Keepalive, postgres: bool = False
    ) -> None:
        self.target = target
        self.server = server
        self.postgres = postgres
        self.listener = socket.create_server((address, 0))
        self.address = address
        self.port = int(self.listener.getsockname()[1])
        self.closed = threading.Event()
        self.connections: set[socket.socket] = set()
        self.guard = threading.Lock()
        self.dead_peers: list[float] = []  # when a client's socket failed (its keepalives went unanswered)
        threading.Thread(target=self._accept, name=f"forward-{address}:{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with self.guard:
            self.connections.update((client, upstream))
        try:
            keepalive = self.server
            if self.postgres:
                keepalive = self._postgres_startup(client, upstream)
            keepalive.apply(client)
        except (OSError, ConnectionError):
            self._close(client, upstream)
            return
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _postgres_startup(self, client: socket.socket, upstream: socket.socket) -> Keepalive:
        """Relays the requests before the startup packet (SSL, GSS: answered by the server) and the startup
        packet itself; the session's keepalives from it."""
        while True:
            size = struct.unpack("!I", _read_exactly(client, 4))[0]
            packet = struct.pack("!I", size) + _read_exactly(client, size - 4)
            upstream.sendall(packet)
            code = struct.unpack("!I", packet[4:8])[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                answer = _read_exactly(upstream, 1)
                client.sendall(answer)
                if answer != b"N":  # encrypted from here on: the options cannot be read
                    return self.server
                continue
            return session_keepalive(packet, self.server)

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError as exc:
            if from_client and exc.errno == errno.ETIMEDOUT:
                self.dead_peers.append(time.monotonic())
        finally:
            self._close(source, sink)

    def _close(self, *socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
            with self.guard:
                self.connections.discard(sock)

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self.guard:
            open_now = list(self.connections)
        self._close(*open_now)


# --- hosts ----------------------------------------------------------------------------------------------------


@dataclass
class Host:
    """One network namespace joined to this machine by a veth pair; its forwarders and processes."""

    index: int
    name: str = ""
    outside: str = ""  # this machine's end (forwarders listen here)
    inside: str = ""  # the host's own address
    forwarders: dict[str, Forwarder] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = f"{PREFIX}-{self.index}"
        self.outside = f"{HOSTS_SUBNET}.{4 * self.index + 1}"
        self.inside = f"{HOSTS_SUBNET}.{4 * self.index + 2}"
        self.veth_outside = f"{VETH_PREFIX}{self.index}o"
        self.veth_inside = f"{VETH_PREFIX}{self.index}i"

    def create(self) -> None:
        _remove(self.name)
        subprocess.run(["ip", "link", "del", self.veth_outside], capture_output=True, timeout=10, check=False)
        _ip("netns", "add", self.name)
        _ip("link", "add", self.veth_outside, "type", "veth", "peer", "name", self.veth_inside)
        _ip("link", "set", self.veth_inside, "netns", self.name)
        _ip("addr", "add", f"{self.outside}/30", "dev", self.veth_outside)
        _ip("link", "set", self.veth_outside, "up")
        _ip("addr", "add", f"{self.inside}/30", "dev", self.veth_inside, netns=self.name)
        _ip("link", "set", self.veth_inside, "up", netns=self.name)
        _ip("link", "set", "lo", "up", netns=self.name)

    def forward(
        self, label: str, target: tuple[str, int], *, server: Keepalive, postgres: bool = False
    ) -> str:
        """A forwarder on this machine's end of the link to `target`; returns `address:port` for the host."""
        forwarder = Forwarder(self.outside, target, server=server, postgres=postgres)
        self.forwarders[label] = forwarder
        return f"{forwarder.address}:{forwarder.port}"

    def start(
        self, label: str, args: list[str], *, env: dict[str, str], cwd: Path, log_dir: Path
    ) -> subprocess.Popen[bytes]:
        """Runs `args` inside the host (its output in `log_dir/<host>-<label>.log`)."""
        log = log_dir / f"{self.name}-{label}.log"
        self.logs[label] = log
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.name, *args],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def output(self, label: str) -> str:
        log = self.logs.get(label)
        return log.read_text(errors="replace") if log is not None and log.exists() else ""

    def drop(self) -> None:
        """The host's end of the link goes down: what this machine sends it vanishes, nothing comes back."""
        _ip("link", "set", self.veth_inside, "down", netns=self.name)

    def kill(self) -> list[int]:
        """SIGKILL to every process in the host (no cleanup; with the link down, their sockets' FIN and RST
        never leave it). Returns the pids killed."""
        pids = netns_pids(self.name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        return pids

    def destroy(self) -> None:
        self.kill()
        _remove(self.name)
        # The namespace's end goes with it, and takes this end along, once the kernel has let go of the namespace
        # (asynchronously): this end is removed now, so the next run can make it again at once.
        subprocess.run(["ip", "link", "del", self.veth_outside], capture_output=True, timeout=10, check=False)
        for forwarder in self.forwarders.values():
            forwarder.close()


class Hosts:
    """`count` hosts, removed by `destroy()` (also at exit, should the caller never get there)."""

    def __init__(self, count: int) -> None:
        if count > 4:
            raise ValueError("at most four hosts fit the subnet")
        remove_leftovers()
        self.hosts = [Host(index) for index in range(count)]
        atexit.register(self.destroy)
        try:
            for host in self.hosts:
                host.create()
        except Exception:
            self.destroy()
            raise

    def __iter__(self) -> Any:
        return iter(self.hosts)

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def destroy(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(Exception):
                host.destroy()
