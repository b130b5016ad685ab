#!/usr/bin/env python3
"""Build an OCI image archive (importable by `ctr images import`) from a rootfs tar.
usage: mkoci.py ROOTFS.tar OUT.tar IMAGE_REF [--entrypoint JSON] [--cmd JSON] [--env K=V ...]
                [--workdir D] [--user U] [--layer MORE.tar ...] [--image REF2 CMD2_JSON ...]
--layer adds layers on top of ROOTFS.tar; --image adds images with the same layers and
settings but another name and Cmd (one archive, each layer stored once)."""

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
ap.add_argument("--layer", action="append", default=[])
ap.add_argument("--image", nargs=2, action="append", default=[], metavar=("REF", "CMD_JSON"))
a = ap.parse_args()
layers = [(path, sha(path), os.path.getsize(path)) for path in [a.rootfs, *a.layer]]


def image(ref, cmd_json):
    """One image's blobs (config, manifest) and its index entry."""
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {
            "Env": a.env,
            "Entrypoint": json.loads(a.entrypoint),
            "Cmd": json.loads(cmd_json),
            "WorkingDir": a.workdir,
            **({"User": a.user} if a.user else {}),
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for _, d, _ in layers]},
        "history": [
            {"created": "2026-01-01T00:00:00Z", "created_by": "mkoci.py " + os.path.basename(p)}
            for p, _, _ in layers
        ],
    }
    cfgb = json.dumps(cfg, separators=(",", ":")).encode()
    man = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(cfgb).hexdigest(),
            "size": len(cfgb),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + d,
                "size": n,
            }
            for _, d, n in layers
        ],
    }
    manb = json.dumps(man, separators=(",", ":")).encode()
    mand = hashlib.sha256(manb).hexdigest()
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + mand,
        "size": len(manb),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
    }
    return [cfgb, manb], entry


def add(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 0
    t.addfile(ti, io.BytesIO(data))


images = [image(a.ref, a.cmd), *(image(ref, cmd) for ref, cmd in a.image)]
idx = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [entry for _, entry in images],
}
with tarfile.open(a.out, "w") as t:
    add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add(t, "index.json", json.dumps(idx).encode())
    written = set()  # images that differ only in name share their config and manifest
    for blobs, _ in images:
        for blob in blobs:
            name = "blobs/sha256/" + hashlib.sha256(blob).hexdigest()
            if name not in written:
                add(t, name, blob)
                written.add(name)
    for path, digest, _ in layers:
        t.add(path, "blobs/sha256/" + digest)
for _, entry in images:
    print(entry["annotations"]["io.containerd.image.name"], "manifest", entry["digest"])
print("layers", " ".join(f"{os.path.basename(p)}:{n}" for p, _, n in layers))
