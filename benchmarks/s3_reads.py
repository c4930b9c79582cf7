"""CPU per object GET against SeaweedFS: boto3's `GetObject`, the store's signed urllib3 read, and the
floor under both (urllib3 alone, URL signed beforehand), interleaved in one process.

    python -m benchmarks.s3_reads [--objects 100] [--bytes 33000] [--reads 400] [--rounds 3]

What a byte-cache miss costs the serving API in the thread that reads (docs/performance.md, section 5).
CPU seconds of this process, so other load on the machine inflates them less than wall time; the
table gives the median over rounds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import urllib3
from botocore.config import Config

from benchmarks.common import machine, median, table, write_results
from tvdb_images.storage import Bucket
from tvdb_images.storage.s3 import S3ObjectStore
from tvdb_images_tests.support import services

BUCKET = "bench-reads"


def per_read(read: Callable[[str], bytes], keys: list[str], reads: int, size: int) -> float:
    """CPU milliseconds per read of `reads` reads rotating over `keys`."""
    for key in keys[:10]:
        read(key)  # connections and lazy imports
    started = time.process_time()
    for index in range(reads):
        if len(read(keys[index % len(keys)])) != size:
            raise RuntimeError("short read")
    return (time.process_time() - started) * 1000 / reads


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--bytes", type=int, default=33_000, help="object size (the serving mean)")
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    context = machine()
    with tempfile.TemporaryDirectory() as scratch, services.seaweedfs_server(Path(scratch)) as server:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        client.create_bucket(Bucket=BUCKET)
        data = os.urandom(args.bytes)
        keys = [f"series/ab/cd/{i}/poster/small.webp" for i in range(args.objects)]
        for key in keys:
            client.put_object(Bucket=BUCKET, Key=key, Body=data)
        store = S3ObjectStore(
            bucket_names={Bucket.ORIGINALS: BUCKET, Bucket.THUMBNAILS: BUCKET},
            endpoint_url=server.endpoint,
            access_key_id=server.access_key,
            secret_access_key=server.secret_key,
            region="us-east-1",
        )
        pool = urllib3.PoolManager(maxsize=4)
        presigned = {
            key: client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
            for key in keys
        }
        readers: dict[str, Callable[[str], bytes]] = {
            "boto3 GetObject": lambda key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read(),
            "S3ObjectStore.get (signed urllib3)": lambda key: store.get(Bucket.THUMBNAILS, key),
            "urllib3 only (URL signed beforehand)": lambda key: pool.request("GET", presigned[key]).data,
        }
        rounds: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.rounds):
            for name, read in readers.items():
                rounds[name].append(per_read(read, keys, args.reads, args.bytes))
    summary = {name: median(values) for name, values in rounds.items()}
    baseline = summary["boto3 GetObject"]
    print(
        table(
            ["reader", "CPU ms per GET", "vs boto3"],
            [[name, ms, f"{ms / baseline:.2f}"] for name, ms in summary.items()],
        )
    )
    result = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "objects": args.objects,
        "bytes": args.bytes,
        "reads": args.reads,
        "rounds": rounds,
        "cpu_ms_per_get": summary,
    }
    print(f"wrote {write_results('s3_reads', result)}")


if __name__ == "__main__":
    main()
