"""A real S3-compatible server on localhost (moto's server mode) for the tests of `--storage s3://`: the sweep, its
Ray workers and pyarrow talk to it over HTTP exactly as they would to a bucket in the cloud."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def s3_bucket(bucket: str) -> Iterator[dict[str, str]]:
    """Start the server with one empty bucket; yields the environment that points AWS clients at it (set in
    os.environ while the block runs, so subprocesses and their Ray workers inherit it)."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        deadline = time.time() + 60
        while True:
            try:
                boto3.client("s3").create_bucket(Bucket=bucket)
                break
            except Exception:
                if server.poll() is not None or time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        server.wait(timeout=30)


def bucket_files(uri: str) -> list[str]:
    """Every file under an s3:// URI, as pyarrow lists them."""
    import pyarrow.fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(uri)
    found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return [info.path for info in found if info.type == pafs.FileType.File]
