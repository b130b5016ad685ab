#!/usr/bin/env python3
"""Build a single-layer OCI image archive (importable by `ctr images import`) from a rootfs tar.
usage: mkoci.py ROOTFS.tar OUT.tar IMAGE_REF [--entrypoint JSON] [--cmd JSON] [--env K=V ...] [--workdir D]"""

import argparse
import hashlib
import io
import json
import os
import tarfile


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


ap = argparse.ArgumentParser()
ap.add_argument("rootfs")
ap.add_argument("out")
ap.add_argument("ref")
ap.add_argument("--entrypoint", default="null")
ap.add_argument("--cmd", default="null")
ap.add_argument(
    "--env",
    action="append",
    default=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
)
ap.add_argument("--workdir", default="/")
ap.add_argument("--user", default="")
a = ap.parse_args()
layer_digest = sha(a.rootfs)
layer_size = os.path.getsize(a.rootfs)
cfg = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2026-01-01T00:00:00Z",
    "config": {
        "Env": a.env,
        "Entrypoint": json.loads(a.entrypoint),
        "Cmd": json.loads(a.cmd),
        "WorkingDir": a.workdir,
        **({"User": a.user} if a.user else {}),
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    "history": [
        {"created": "2026-01-01T00:00:00Z", "created_by": "mkoci.py " + os.path.basename(a.rootfs)}
    ],
}
cfgb = json.dumps(cfg, separators=(",", ":")).encode()
cfgd = hashlib.sha256(cfgb).hexdigest()
man = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + cfgd,
        "size": len(cfgb),
    },
    "layers": [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": "sha256:" + layer_digest,
            "size": layer_size,
        }
    ],
}
manb = json.dumps(man, separators=(",", ":")).encode()
mand = hashlib.sha256(manb).hexdigest()
idx = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + mand,
            "size": len(manb),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": a.ref,
                "org.opencontainers.image.ref.name": a.ref,
            },
        }
    ],
}


def add(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 0
    t.addfile(ti, io.BytesIO(data))


with tarfile.open(a.out, "w") as t:
    add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add(t, "index.json", json.dumps(idx).encode())
    add(t, "blobs/sha256/" + cfgd, cfgb)
    add(t, "blobs/sha256/" + mand, manb)
    t.add(a.rootfs, "blobs/sha256/" + layer_digest)
print(a.ref, "manifest sha256:" + mand, "layer", layer_size)
