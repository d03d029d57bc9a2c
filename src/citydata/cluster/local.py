"""Several ``citydata serve`` nodes on one machine, on loopback ports: ``make cluster``, the cluster tests and
``bench/scale_out.py`` use it.

``python -m citydata.cluster.local --nodes 3`` starts three nodes (role ``all``) against the NATS and the
PostgreSQL named by ``CITYDATA_BUS_URL`` / ``CITYDATA_DB_URL`` (default: the local services, in the schema
``citydata_cluster``), one after the other (the first creates the schema, the reference city and the keys in
the shared data directory), prints each node's URL and stops them all on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    name: str
    port: int
    role: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class LocalCluster:
    """Nodes sharing one NATS, one database and one data directory (keys, admin password)."""

    data_dir: Path
    env: dict[str, str]
    nodes: dict[str, Node] = field(default_factory=dict)

    @classmethod
    def create(cls, data_dir: Path, *, bus_url: str, db_url: str, db_schema: str | None = None,
               partitions: int = 16, lease_s: float = 6.0, stream: str = "CITYDATA",
               **extra: str) -> LocalCluster:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYDATA_")}
        env.update({"CITYDATA_DATA_DIR": str(data_dir), "CITYDATA_LOG_FORMAT": "text",
                    "CITYDATA_BUS_URL": bus_url, "CITYDATA_DB_URL": db_url, "CITYDATA_MQTT_URL": "none://",
                    "CITYDATA_BUS_PARTITIONS": str(partitions), "CITYDATA_CLUSTER_LEASE_S": str(lease_s),
                    "CITYDATA_BUS_STREAM": stream, **extra})
        if db_schema:
            env["CITYDATA_DB_SCHEMA"] = db_schema
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir, env)

    def start(self, name: str, *, role: str = "all", port: int | None = None, wait: bool = True,
              timeout: float = 90.0, **extra: str) -> Node:
        port = port or free_port()
        log_path = self.data_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**self.env, **extra}
        args = [sys.executable, "-m", "citydata", "serve", "--role", role, "--node-id", name, "--port", str(port)]
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our CLI
        node = Node(name, port, role, proc, log_path, log)
        self.nodes[name] = node
        if wait:
            self.wait_ready(node, timeout)
        return node

    def wait_ready(self, node: Node, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if not node.alive():
                raise RuntimeError(f"node {node.name} exited with {node.proc.returncode}; "
                                   f"log: {node.log_path}\n{self.tail(node)}")
            try:
                r = httpx.get(f"{node.url}/readyz", timeout=2)
                last = r.json()
                if r.status_code == 200:
                    return dict(last)
            except (httpx.HTTPError, ValueError) as err:
                last = err
            time.sleep(0.2)
        raise RuntimeError(f"node {node.name} not ready in {timeout}s ({last}); log:\n{self.tail(node)}")

    def tail(self, node: Node, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(node.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no lease given back."""
        node = self.nodes[name]
        node.proc.kill()
        node.proc.wait(10)
        node.log.close()

    def stop(self, name: str, timeout: float = 30.0) -> None:
        node = self.nodes[name]
        if node.alive():
            node.proc.send_signal(signal.SIGTERM)
            try:
                node.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(10)
        node.log.close()

    def stop_all(self) -> None:
        for node in self.nodes.values():   # all at once, then wait for each
            if node.alive():
                node.proc.send_signal(signal.SIGTERM)
        for name in list(self.nodes):
            with contextlib.suppress(Exception):
                self.stop(name)

    def cluster_view(self, name: str) -> str:
        """The node's cluster line from /readyz."""
        r = httpx.get(f"{self.nodes[name].url}/readyz", timeout=5)
        return str(r.json().get("checks", r.json()).get("cluster", {}).get("detail", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=8101, help="HTTP port of the first node")
    parser.add_argument("--data-dir", type=Path, default=Path("data/cluster"))
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args(argv)
    cluster = LocalCluster.create(
        args.data_dir, bus_url=os.environ.get("CITYDATA_BUS_URL", "nats://127.0.0.1:4222"),
        db_url=os.environ.get("CITYDATA_DB_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        db_schema=os.environ.get("CITYDATA_DB_SCHEMA", "citydata_cluster"), partitions=args.partitions,
        stream=os.environ.get("CITYDATA_BUS_STREAM", "CITYDATA_CLUSTER"))
    try:
        for i in range(args.nodes):
            node = cluster.start(f"node{i + 1}", port=args.base_port + i)
            _say(f"  node{i + 1}  {node.url}   (docs {node.url}/docs, readyz {node.url}/readyz, "
                  f"log {node.log_path})")
        time.sleep(2 * float(cluster.env["CITYDATA_CLUSTER_LEASE_S"]) / 3 + 0.5)   # let them rebalance
        for name in cluster.nodes:
            _say(f"  {name}: {cluster.cluster_view(name)}")
        _say(f"CityData cluster of {args.nodes} nodes running (admin password in "
              f"{(args.data_dir / 'admin_password').resolve()}); Ctrl-C stops it")
        stop = False

        def on_signal(*_: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        reported: set[str] = set()
        while not stop:
            time.sleep(0.5)
            for node in cluster.nodes.values():   # a node killed (kill -9 to try a takeover) is reported once
                if not node.alive() and node.name not in reported:
                    reported.add(node.name)
                    _say(f"  {node.name} exited ({node.proc.returncode}); log {node.log_path}; the others "
                         f"take its partitions within CITYDATA_CLUSTER_LEASE_S")
            stop = stop or len(reported) == len(cluster.nodes)
    finally:
        cluster.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
