#!/usr/bin/env python3
"""Pack directory trees into OCI image layers and OCI image archives.

Standard library only: the lab builds its container images without a
registry or a container engine, and this is the piece that turns root
filesystem directories into something ``ctr images import`` accepts.

Subcommands
-----------
layer SRC --blobs DIR [--mode plain|overlay|diff] [--lower DIR] [--mtime-clamp N]
    Write SRC as a gzip-compressed layer blob into DIR (named by its sha256)
    and print its descriptor as JSON (mediaType, digest, size, diff_id).

    plain    every file under SRC; device nodes and sockets are skipped.
    overlay  SRC is an overlayfs upperdir: a 0:0 character device becomes a
             ``.wh.NAME`` whiteout and a directory with the
             ``trusted.overlay.opaque=y`` xattr gets a ``.wh..wh..opq`` entry.
    diff     SRC is a complete tree that started as a copy of --lower: only
             what was added or changed is written, and what was removed
             becomes a whiteout (the fallback when overlayfs is unavailable).

image --ref REF --blobs DIR --config FILE --layer DESC... --out ARCHIVE
    Write an OCI image layout (oci-layout, index.json, blobs/sha256/...) as
    an uncompressed tar. FILE is JSON with the container config ("User",
    "Env", "Entrypoint", "Cmd", ...) under "config" and optional "history"
    comments; each DESC is the JSON that ``layer`` printed (a file path).
    index.json names the image with both ``io.containerd.image.name``
    (the full reference) and ``org.opencontainers.image.ref.name`` (the tag).

Output is deterministic: entries are sorted by name, mtimes are clamped
(``--mtime-clamp`` or SOURCE_DATE_EPOCH), owners are numeric only, the gzip
header carries no name or time, and JSON is written with sorted keys.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import platform
import stat
import sys
import tarfile
from typing import BinaryIO, Dict, Iterator, List, Optional, Tuple

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
OCI_REF_ANNOTATION = "org.opencontainers.image.ref.name"

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
# xattrs carried into the layer; everything else (overlay bookkeeping,
# SELinux labels of the build host) is dropped.
KEPT_XATTRS = ("security.capability",)

GZIP_LEVEL = 6
COPY_CHUNK = 1 << 20


class PackError(Exception):
    """A tree that cannot be represented faithfully as a layer."""


# ---------------------------------------------------------------------------
# helpers


def _sort_key(name: str) -> bytes:
    return os.fsencode(name)


def _listdir_sorted(path: str) -> List[str]:
    return sorted(os.listdir(path), key=_sort_key)


def _xattr(path: str, name: str) -> Optional[bytes]:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _overlay_xattr(path: str, suffix: str) -> Optional[bytes]:
    for prefix in OVERLAY_XATTR_PREFIXES:
        value = _xattr(path, prefix + suffix)
        if value is not None:
            return value
    return None


def is_overlay_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_overlay_opaque(path: str) -> bool:
    value = _overlay_xattr(path, "opaque")
    return value is not None and value.rstrip(b"\0") == b"y"


def default_clamp() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    return int(datetime.datetime.now(datetime.timezone.utc).timestamp())


def host_arch() -> str:
    machine = platform.machine().lower()
    return {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "arm",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }.get(machine, machine)


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(epoch: int) -> str:
    dt = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through."""

    def __init__(self, target: BinaryIO):
        super().__init__()
        self.target = target
        self.sha = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self.sha.update(data)
        self.count += len(data)
        self.target.write(data)
        return len(data)


# ---------------------------------------------------------------------------
# tree -> tar entries
#
# An "op" is (tar_name, kind, source_path, stat) where kind is "entry"
# (copy the file system object) or "whiteout" (an empty .wh. file).


Op = Tuple[str, str, Optional[str], Optional[os.stat_result]]


def _join(rel: str, name: str) -> str:
    return name if not rel else rel + "/" + name


def _whiteout_name(rel_path: str) -> str:
    parent, _sep, base = rel_path.rpartition("/")
    return _join(parent, WHITEOUT_PREFIX + base)


def _check_overlay_features(path: str) -> None:
    for feature in ("redirect", "metacopy"):
        if _overlay_xattr(path, feature) is not None:
            raise PackError(
                f"{path}: overlayfs {feature} xattr found; mount the overlay with "
                f"redirect_dir=off,metacopy=off so the upperdir is self-contained"
            )


def walk_plain(root: str, overlay: bool) -> Iterator[Op]:
    """Every object under root, depth-first, sorted; optional whiteout conversion."""

    def rec(rel: str) -> Iterator[Op]:
        abs_dir = os.path.join(root, rel) if rel else root
        children: List[Tuple[str, str, str, Optional[os.stat_result]]] = []
        for name in _listdir_sorted(abs_dir):
            path = os.path.join(abs_dir, name)
            st = os.lstat(path)
            child_rel = _join(rel, name)
            if overlay and is_overlay_whiteout(st):
                children.append((_whiteout_name(child_rel), "whiteout", path, st))
            else:
                children.append((child_rel, "entry", path, st))
        children.sort(key=lambda c: _sort_key(c[0]))
        for tar_name, kind, path, st in children:
            if overlay and kind == "entry":
                _check_overlay_features(path)
            yield (tar_name, kind, path, st)
            if kind == "entry" and stat.S_ISDIR(st.st_mode):
                if overlay and is_overlay_opaque(path):
                    yield (_join(tar_name, OPAQUE_MARKER), "whiteout", path, st)
                yield from rec(tar_name)

    if overlay:
        _check_overlay_features(root)
        if is_overlay_opaque(root):
            raise PackError(f"{root}: the layer root itself is opaque")
    yield from rec("")


def _changed(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    """Docker-style change detection between an upper and a lower object."""
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return True
    if stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
        return True
    if a.st_uid != b.st_uid or a.st_gid != b.st_gid:
        return True
    if stat.S_ISDIR(a.st_mode):
        return False  # a directory's own mtime is noise; its children are diffed
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) != os.readlink(pb)
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev != b.st_rdev
    if a.st_size != b.st_size or a.st_mtime_ns != b.st_mtime_ns:
        return True
    for name in KEPT_XATTRS:
        if _xattr(pa, name) != _xattr(pb, name):
            return True
    return False


def walk_diff(upper: str, lower: str) -> Iterator[Op]:
    """What changed from lower to upper, with whiteouts for removed paths."""

    def full(rel: str, path: str, st: os.stat_result) -> List[Op]:
        ops: List[Op] = [(rel, "entry", path, st)]
        if stat.S_ISDIR(st.st_mode):
            for name in _listdir_sorted(path):
                child = os.path.join(path, name)
                ops.extend(full(_join(rel, name), child, os.lstat(child)))
        return ops

    def rec(rel: str) -> List[Op]:
        up_dir = os.path.join(upper, rel) if rel else upper
        low_dir = os.path.join(lower, rel) if rel else lower
        up_names = set(os.listdir(up_dir))
        low_names = set(os.listdir(low_dir))
        groups: List[Tuple[str, List[Op]]] = []
        for name in up_names:
            child_rel = _join(rel, name)
            up_path = os.path.join(up_dir, name)
            ust = os.lstat(up_path)
            if name not in low_names:
                groups.append((child_rel, full(child_rel, up_path, ust)))
                continue
            low_path = os.path.join(low_dir, name)
            lst = os.lstat(low_path)
            both_dirs = stat.S_ISDIR(ust.st_mode) and stat.S_ISDIR(lst.st_mode)
            if both_dirs:
                inner = rec(child_rel)
                if inner or _changed(ust, lst, up_path, low_path):
                    groups.append((child_rel, [(child_rel, "entry", up_path, ust)] + inner))
            elif _changed(ust, lst, up_path, low_path):
                groups.append((child_rel, full(child_rel, up_path, ust)))
        for name in low_names - up_names:
            wh = _whiteout_name(_join(rel, name))
            groups.append((wh, [(wh, "whiteout", None, None)]))
        groups.sort(key=lambda g: _sort_key(g[0]))
        return [op for _path, ops in groups for op in ops]

    yield from rec("")


# ---------------------------------------------------------------------------
# tar writing


class LayerWriter:
    """Streams tar entries through gzip into a file, hashing both sides."""

    def __init__(self, out: BinaryIO, mtime_clamp: int, level: int = GZIP_LEVEL):
        self.clamp = mtime_clamp
        self._compressed = _HashingWriter(out)
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._compressed,
                                   compresslevel=level, mtime=0)
        self._plain = _HashingWriter(self._gzip)
        self._tar = tarfile.open(fileobj=self._plain, mode="w|", format=tarfile.PAX_FORMAT,
                                 encoding="utf-8", errors="surrogateescape")
        self._hardlinks: Dict[Tuple[int, int], str] = {}
        self.skipped: List[str] = []
        self.entries = 0

    def _info(self, name: str, st: Optional[os.stat_result]) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.uname = info.gname = ""
        if st is not None:
            info.uid, info.gid = st.st_uid, st.st_gid
            info.mode = stat.S_IMODE(st.st_mode)
            info.mtime = min(int(st.st_mtime), self.clamp)
        else:
            info.uid = info.gid = 0
            info.mode = 0o644
            info.mtime = self.clamp
        return info

    def add_op(self, op: Op) -> None:
        name, kind, path, st = op
        if kind == "whiteout":
            info = self._info(name, st)
            info.type = tarfile.REGTYPE
            info.size = 0
            info.mode = 0o600 if st is None or not stat.S_ISDIR(st.st_mode) else info.mode
            self._tar.addfile(info)
            self.entries += 1
            return
        assert path is not None and st is not None
        mode = st.st_mode
        info = self._info(name, st)
        xattrs = {}
        for key in KEPT_XATTRS:
            value = _xattr(path, key)
            if value is not None:
                xattrs["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
        if xattrs:
            # tarfile switches to hdrcharset=BINARY itself for undecodable bytes
            info.pax_headers = xattrs
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            info.name = name + "/"
            self._tar.addfile(info)
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(path)
            self._tar.addfile(info)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._hardlinks:
                info.type = tarfile.LNKTYPE
                info.linkname = self._hardlinks[key]
                self._tar.addfile(info)
            else:
                if st.st_nlink > 1:
                    self._hardlinks[key] = name
                info.type = tarfile.REGTYPE
                with open(path, "rb") as fh:
                    info.size = os.fstat(fh.fileno()).st_size
                    self._tar.addfile(info, fh)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            self._tar.addfile(info)
        else:
            # device nodes (the runtime provides /dev) and sockets
            self.skipped.append(name)
            return
        self.entries += 1

    def close(self) -> Dict[str, object]:
        self._tar.close()
        self._gzip.close()
        return {
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": "sha256:" + self._compressed.sha.hexdigest(),
            "size": self._compressed.count,
            "diff_id": "sha256:" + self._plain.sha.hexdigest(),
            "uncompressed_size": self._plain.count,
        }


def write_layer(ops: Iterator[Op], blobs_dir: str, mtime_clamp: int,
                level: int = GZIP_LEVEL) -> Dict[str, object]:
    """Write ops as a layer blob named by its digest inside blobs_dir."""
    os.makedirs(blobs_dir, exist_ok=True)
    tmp = os.path.join(blobs_dir, f".layer.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            writer = LayerWriter(out, mtime_clamp, level)
            for op in ops:
                writer.add_op(op)
            desc = writer.close()
        desc["entries"] = writer.entries
        desc["skipped"] = writer.skipped
        os.replace(tmp, os.path.join(blobs_dir, str(desc["digest"]).split(":", 1)[1]))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return desc


def pack_layer(src: str, blobs_dir: str, mode: str = "plain", lower: Optional[str] = None,
               mtime_clamp: Optional[int] = None, level: int = GZIP_LEVEL) -> Dict[str, object]:
    clamp = default_clamp() if mtime_clamp is None else mtime_clamp
    if not os.path.isdir(src):
        raise PackError(f"{src}: not a directory")
    if mode == "diff":
        if not lower or not os.path.isdir(lower):
            raise PackError("diff mode needs --lower DIR")
        ops = walk_diff(src, lower)
    elif mode in ("plain", "overlay"):
        ops = walk_plain(src, overlay=(mode == "overlay"))
    else:
        raise PackError(f"unknown layer mode {mode!r}")
    return write_layer(ops, blobs_dir, clamp, level)


# ---------------------------------------------------------------------------
# image archive


def split_ref(ref: str) -> Tuple[str, str]:
    """'localhost/opsdrill/pause:3.10' -> ('localhost/opsdrill/pause', '3.10')."""
    if "@" in ref:
        raise PackError(f"{ref}: digest references are not supported")
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


def _tar_add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = mtime
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _tar_add_dir(tar: tarfile.TarFile, name: str, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = mtime
    info.uname = info.gname = ""
    tar.addfile(info)


def build_image(ref: str, layers: List[Dict[str, object]], blobs_dir: str, out: str,
                image_config: Dict[str, object], created: Optional[int] = None,
                arch: Optional[str] = None, history: Optional[List[str]] = None) -> Dict[str, object]:
    """Write an OCI image layout tar; returns the manifest descriptor."""
    created = default_clamp() if created is None else created
    arch = arch or host_arch()
    tag = split_ref(ref)[1]
    history = list(history or [])
    history += [""] * (len(layers) - len(history))
    config = {
        "architecture": arch,
        "os": "linux",
        "created": rfc3339(created),
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": [
            {"created": rfc3339(created), "created_by": h or "opsdrill oci_pack"}
            for h in history[: len(layers)]
        ],
    }
    config_bytes = canonical_json(config)
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest,
                   "size": len(config_bytes)},
        "layers": [{"mediaType": l.get("mediaType", LAYER_MEDIA_TYPE), "digest": l["digest"],
                    "size": l["size"]} for l in layers],
    }
    manifest_bytes = canonical_json(manifest)
    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    manifest_desc = {
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": manifest_digest,
        "size": len(manifest_bytes),
        "annotations": {CONTAINERD_NAME_ANNOTATION: ref, OCI_REF_ANNOTATION: tag},
        "platform": {"architecture": arch, "os": "linux"},
    }
    index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [manifest_desc]}

    for layer in layers:
        blob = os.path.join(blobs_dir, str(layer["digest"]).split(":", 1)[1])
        if not os.path.isfile(blob) or os.path.getsize(blob) != layer["size"]:
            raise PackError(f"layer blob {blob} missing or of the wrong size")

    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _tar_add_bytes(tar, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}), created)
        _tar_add_bytes(tar, "index.json", canonical_json(index), created)
        _tar_add_dir(tar, "blobs/", created)
        _tar_add_dir(tar, "blobs/sha256/", created)
        blobs = {config_digest: ("bytes", config_bytes), manifest_digest: ("bytes", manifest_bytes)}
        for layer in layers:
            blobs[str(layer["digest"])] = ("file", os.path.join(
                blobs_dir, str(layer["digest"]).split(":", 1)[1]))
        for digest in sorted(blobs):
            name = "blobs/sha256/" + digest.split(":", 1)[1]
            kind, value = blobs[digest]
            if kind == "bytes":
                _tar_add_bytes(tar, name, value, created)  # type: ignore[arg-type]
            else:
                info = tarfile.TarInfo(name)
                info.size = os.path.getsize(value)  # type: ignore[arg-type]
                info.mode = 0o644
                info.mtime = created
                info.uname = info.gname = ""
                with open(value, "rb") as fh:  # type: ignore[arg-type]
                    tar.addfile(info, fh)
    os.replace(tmp, out)
    return dict(manifest_desc, config_digest=config_digest)


# ---------------------------------------------------------------------------
# CLI


def _cmd_layer(args: argparse.Namespace) -> int:
    desc = pack_layer(args.src, args.blobs, args.mode, args.lower, args.mtime_clamp, args.level)
    text = json.dumps(desc, sort_keys=True, indent=1)
    if args.json_out:
        with open(args.json_out + ".tmp", "w") as fh:
            fh.write(text + "\n")
        os.replace(args.json_out + ".tmp", args.json_out)
    print(text)
    if desc["skipped"]:
        print(f"oci_pack: skipped {len(desc['skipped'])} device/socket entries",
              file=sys.stderr)
    return 0


def _cmd_image(args: argparse.Namespace) -> int:
    layers = []
    for path in args.layer:
        with open(path) as fh:
            layers.append(json.load(fh))
    with open(args.config) as fh:
        spec = json.load(fh)
    image_config = spec.get("config", spec)
    history = spec.get("history") if "config" in spec else None
    desc = build_image(args.ref, layers, args.blobs, args.out, image_config,
                       created=args.created, arch=args.arch, history=history)
    print(json.dumps(desc, sort_keys=True))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("layer", help="pack a directory as a gzip layer blob")
    p.add_argument("src")
    p.add_argument("--blobs", required=True, help="directory receiving the blob")
    p.add_argument("--mode", choices=("plain", "overlay", "diff"), default="plain")
    p.add_argument("--lower", help="the original tree, for --mode diff")
    p.add_argument("--mtime-clamp", type=int, default=None)
    p.add_argument("--level", type=int, default=GZIP_LEVEL, help="gzip level")
    p.add_argument("--json-out", help="also write the descriptor to this file")
    p.set_defaults(func=_cmd_layer)

    p = sub.add_parser("image", help="write an OCI image archive")
    p.add_argument("--ref", required=True)
    p.add_argument("--blobs", required=True)
    p.add_argument("--config", required=True, help="JSON file with the container config")
    p.add_argument("--layer", action="append", default=[], help="layer descriptor JSON file")
    p.add_argument("--out", required=True)
    p.add_argument("--created", type=int, default=None)
    p.add_argument("--arch", default=None)
    p.set_defaults(func=_cmd_image)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (PackError, OSError) as exc:
        print(f"oci_pack: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
