"""Unit tests for roles/lab/files/oci_pack.py, the lab's OCI image packer.

Everything runs on small trees in temporary directories. Tests that need
root (device nodes, trusted.* xattrs, an overlay mount) skip themselves when
that is not available.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

PACKER_PATH = Path(__file__).resolve().parents[3] / "roles" / "lab" / "files" / "oci_pack.py"
_spec = importlib.util.spec_from_file_location("oci_pack", PACKER_PATH)
oci_pack = importlib.util.module_from_spec(_spec)
assert _spec.loader is not None
_spec.loader.exec_module(oci_pack)

CLAMP = 1_700_000_000  # 2023-11-14
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root")


# ---------------------------------------------------------------- helpers


def write(path: Path, data: str = "x", mode: int = 0o644, mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    path.chmod(mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def blob_path(blobs: Path, digest: str) -> Path:
    return blobs / digest.split(":", 1)[1]


def layer_members(blobs: Path, desc: dict) -> list[tarfile.TarInfo]:
    with tarfile.open(blob_path(blobs, desc["digest"]), "r:gz") as tar:
        return tar.getmembers()


def names(members) -> list[str]:
    return [m.name for m in members]


def raw_names(blobs: Path, desc: dict) -> list[str]:
    """Names exactly as stored (tarfile strips a directory's trailing slash)."""
    data = gzip.decompress(blob_path(blobs, desc["digest"]).read_bytes())
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            out.append(m.name + ("/" if m.isdir() else ""))
    return out


def set_xattr(path: Path, name: str, value: bytes) -> bool:
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
        return True
    except OSError:
        return False


def mknod_whiteout(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


@pytest.fixture()
def blobs(tmp_path: Path) -> Path:
    d = tmp_path / "blobs"
    d.mkdir()
    return d


# ---------------------------------------------------------------- plain layers


def test_plain_layer_layout_and_metadata(tmp_path: Path, blobs: Path) -> None:
    src = tmp_path / "src"
    write(src / "usr/bin/tool", "#!/bin/sh\n", mode=0o755, mtime=1_000_000)
    write(src / "etc/conf", "a=1\n", mtime=CLAMP + 10_000)  # newer than the clamp
    os.symlink("usr/bin", src / "bin")
    os.mkfifo(src / "etc/fifo")
    (src / "empty").mkdir()
    if IS_ROOT:
        os.chown(src / "etc/conf", 999, 998)

    desc = oci_pack.pack_layer(str(src), str(blobs), mtime_clamp=CLAMP)
    members = {m.name: m for m in layer_members(blobs, desc)}

    assert raw_names(blobs, desc) == [
        "bin", "empty/", "etc/", "etc/conf", "etc/fifo", "usr/", "usr/bin/", "usr/bin/tool",
    ]
    tool = members["usr/bin/tool"]
    assert tool.isreg() and tool.mode == 0o755 and tool.mtime == 1_000_000
    assert members["etc/conf"].mtime == CLAMP
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["etc/fifo"].isfifo()
    for m in members.values():
        assert m.uname == "" and m.gname == ""
    if IS_ROOT:
        assert (members["etc/conf"].uid, members["etc/conf"].gid) == (999, 998)
    with tarfile.open(blob_path(blobs, desc["digest"]), "r:gz") as tar:
        assert tar.extractfile("usr/bin/tool").read() == b"#!/bin/sh\n"


def test_layer_digests_sizes_and_blob_name(tmp_path: Path, blobs: Path) -> None:
    src = tmp_path / "src"
    write(src / "a", "hello")
    desc = oci_pack.pack_layer(str(src), str(blobs), mtime_clamp=CLAMP)
    blob = blob_path(blobs, desc["digest"])
    assert desc["mediaType"] == oci_pack.LAYER_MEDIA_TYPE
    assert sha256_file(blob) == desc["digest"]
    assert blob.stat().st_size == desc["size"]
    plain = gzip.decompress(blob.read_bytes())
    assert "sha256:" + hashlib.sha256(plain).hexdigest() == desc["diff_id"]
    assert len(plain) == desc["uncompressed_size"]
    assert len(plain) % 512 == 0
    # gzip header: no file name, mtime 0
    raw = blob.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[3] & 0x08 == 0 and raw[4:8] == b"\0\0\0\0"
    assert sorted(p.name for p in blobs.iterdir()) == [blob.name]  # no temp file left


def test_layer_is_deterministic(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(20):
        write(src / f"d{i % 3}/f{i}", str(i) * i)
    one = oci_pack.pack_layer(str(src), str(tmp_path / "b1"), mtime_clamp=CLAMP)
    # touching files to newer mtimes does not matter once they are clamped
    for p in src.rglob("*"):
        os.utime(p, (CLAMP + 5, CLAMP + 5), follow_symlinks=False)
    two = oci_pack.pack_layer(str(src), str(tmp_path / "b2"), mtime_clamp=CLAMP)
    assert one["digest"] == two["digest"] and one["diff_id"] == two["diff_id"]


def test_entries_sorted_bytewise(tmp_path: Path, blobs: Path) -> None:
    src = tmp_path / "src"
    for name in ["b", "B", "a", "_", "a.b", "a-b", "Z"]:
        write(src / name)
    desc = oci_pack.pack_layer(str(src), str(blobs), mtime_clamp=CLAMP)
    got = names(layer_members(blobs, desc))
    assert got == sorted(got, key=lambda s: s.encode())


def test_hardlinks_become_link_entries(tmp_path: Path, blobs: Path) -> None:
    src = tmp_path / "src"
    write(src / "a/first", "same")
    os.link(src / "a/first", src / "b_second")
    desc = oci_pack.pack_layer(str(src), str(blobs), mtime_clamp=CLAMP)
    members = {m.name: m for m in layer_members(blobs, desc)}
    assert members["a/first"].isreg() and members["a/first"].size == 4
    assert members["b_second"].islnk() and members["b_second"].linkname == "a/first"


@needs_root
def test_device_nodes_are_skipped(tmp_path: Path, blobs: Path) -> None:
    src = tmp_path / "src"
    (src / "dev").mkdir(parents=True)
    os.mknod(src / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    mknod_whiteout(src / "dev/wh")  # plain mode: not a whiteout, just a device
    desc = oci_pack.pack_layer(str(src), str(blobs), mtime_clamp=CLAMP)
    assert names(layer_members(blobs, desc)) == ["dev"]
    assert sorted(desc["skipped"]) == ["dev/null", "dev/wh"]


def test_unknown_mode_and_missing_source(tmp_path: Path, blobs: Path) -> None:
    with pytest.raises(oci_pack.PackError):
        oci_pack.pack_layer(str(tmp_path / "nope"), str(blobs))
    (tmp_path / "src").mkdir()
    with pytest.raises(oci_pack.PackError):
        oci_pack.pack_layer(str(tmp_path / "src"), str(blobs), mode="weird")
    with pytest.raises(oci_pack.PackError):
        oci_pack.pack_layer(str(tmp_path / "src"), str(blobs), mode="diff")


# ---------------------------------------------------------------- overlay whiteouts


@needs_root
def test_overlay_whiteouts_and_opaque_dirs(tmp_path: Path, blobs: Path) -> None:
    upper = tmp_path / "upper"
    write(upper / "etc/new.conf", "n")
    mknod_whiteout(upper / "etc/old.conf")
    (upper / "var/cache/apt").mkdir(parents=True)
    if not set_xattr(upper / "var/cache/apt", "trusted.overlay.opaque", b"y"):
        pytest.skip("trusted.* xattrs not supported here")
    write(upper / "var/cache/apt/keep", "k")
    mknod_whiteout(upper / "gone")

    desc = oci_pack.pack_layer(str(upper), str(blobs), mode="overlay", mtime_clamp=CLAMP)
    members = layer_members(blobs, desc)
    assert raw_names(blobs, desc) == [
        ".wh.gone",
        "etc/",
        "etc/.wh.old.conf",
        "etc/new.conf",
        "var/",
        "var/cache/",
        "var/cache/apt/",
        "var/cache/apt/.wh..wh..opq",
        "var/cache/apt/keep",
    ]
    by_name = {m.name: m for m in members}
    for wh in (".wh.gone", "etc/.wh.old.conf", "var/cache/apt/.wh..wh..opq"):
        assert by_name[wh].isreg() and by_name[wh].size == 0
    assert desc["skipped"] == []
    # overlay bookkeeping xattrs never reach the layer
    for m in members:
        assert not any("overlay" in k for k in m.pax_headers)


@needs_root
def test_overlay_redirect_is_refused(tmp_path: Path, blobs: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "moved").mkdir(parents=True)
    if not set_xattr(upper / "moved", "trusted.overlay.redirect", b"/orig"):
        pytest.skip("trusted.* xattrs not supported here")
    with pytest.raises(oci_pack.PackError, match="redirect"):
        oci_pack.pack_layer(str(upper), str(blobs), mode="overlay", mtime_clamp=CLAMP)


def test_user_overlay_opaque_xattr(tmp_path: Path, blobs: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    if not set_xattr(upper / "d", "user.overlay.opaque", b"y"):
        pytest.skip("user.* xattrs not supported here")
    desc = oci_pack.pack_layer(str(upper), str(blobs), mode="overlay", mtime_clamp=CLAMP)
    assert names(layer_members(blobs, desc)) == ["d", "d/.wh..wh..opq"]


@needs_root
def test_real_overlay_mount_upperdir(tmp_path: Path, blobs: Path) -> None:
    """Whiteouts the kernel itself writes into an upperdir convert correctly."""
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    write(lower / "keep", "k")
    write(lower / "remove-me", "r")
    write(lower / "dir/old", "o")
    write(lower / "edit", "v1")
    for d in (upper, work, merged):
        d.mkdir()
    opts = f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=off,metacopy=off,index=off"
    script = (
        f"mount -t overlay overlay -o {opts} {merged} && "
        f"rm {merged}/remove-me && rm -r {merged}/dir && mkdir {merged}/dir && "
        f"echo new > {merged}/dir/new && echo v2 > {merged}/edit; rc=$?; umount {merged}; exit $rc"
    )
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"overlay mount unavailable: {proc.stderr.strip()}")
    desc = oci_pack.pack_layer(str(upper), str(blobs), mode="overlay", mtime_clamp=CLAMP)
    members = {m.name: m for m in layer_members(blobs, desc)}
    assert set(members) == {".wh.remove-me", "dir", "dir/.wh..wh..opq", "dir/new", "edit"}
    with tarfile.open(blob_path(blobs, desc["digest"]), "r:gz") as tar:
        assert tar.extractfile("edit").read() == b"v2\n"


# ---------------------------------------------------------------- diff mode


def test_diff_mode(tmp_path: Path, blobs: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    write(lower / "etc/same", "s", mtime=1_000)
    write(lower / "etc/changed", "old", mtime=1_000)
    write(lower / "etc/deleted", "d", mtime=1_000)
    write(lower / "opt/tree/a", "a", mtime=1_000)
    write(lower / "usr/lib/x", "x", mtime=1_000)
    write(lower / "becomes-dir", "f", mtime=1_000)
    os.symlink("target-1", lower / "link")
    write(lower / "chmodded", "c", mode=0o644, mtime=1_000)

    subprocess.run(["cp", "-a", f"{lower}/.", str(upper)], check=True)
    write(upper / "etc/changed", "new", mtime=2_000)
    (upper / "etc/deleted").unlink()
    subprocess.run(["rm", "-rf", str(upper / "opt/tree")], check=True)
    write(upper / "usr/lib/added", "+")
    (upper / "becomes-dir").unlink()
    write(upper / "becomes-dir/inner", "i")
    (upper / "link").unlink()
    os.symlink("target-2", upper / "link")
    (upper / "chmodded").chmod(0o600)

    desc = oci_pack.pack_layer(str(upper), str(blobs), mode="diff", lower=str(lower),
                               mtime_clamp=CLAMP)
    assert raw_names(blobs, desc) == [
        "becomes-dir/",
        "becomes-dir/inner",
        "chmodded",
        "etc/",
        "etc/.wh.deleted",
        "etc/changed",
        "link",
        "opt/",
        "opt/.wh.tree",
        "usr/",
        "usr/lib/",
        "usr/lib/added",
    ]


def test_diff_mode_identical_trees_give_empty_layer(tmp_path: Path, blobs: Path) -> None:
    lower = tmp_path / "lower"
    write(lower / "a/b", "b")
    upper = tmp_path / "upper"
    subprocess.run(["cp", "-a", str(lower), str(upper)], check=True)
    desc = oci_pack.pack_layer(str(upper), str(blobs), mode="diff", lower=str(lower),
                               mtime_clamp=CLAMP)
    assert layer_members(blobs, desc) == []


# ---------------------------------------------------------------- image archives


def build_sample_image(tmp_path: Path, ref: str = "localhost/opsdrill/demo:1.2") -> tuple[Path, dict, list]:
    blobs = tmp_path / "blobs"
    base, delta = tmp_path / "base", tmp_path / "delta"
    write(base / "etc/os-release", "ID=debian\n")
    write(delta / "usr/local/bin/run", "#!/bin/sh\n", mode=0o755)
    layers = [oci_pack.pack_layer(str(d), str(blobs), mtime_clamp=CLAMP) for d in (base, delta)]
    out = tmp_path / "demo.oci.tar"
    config = {
        "User": "65534:65534",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
        "Entrypoint": ["/usr/local/bin/run"],
        "Cmd": ["--flag"],
        "WorkingDir": "/work",
        "ExposedPorts": {"8080/tcp": {}},
    }
    desc = oci_pack.build_image(ref, layers, str(blobs), str(out), config, created=CLAMP,
                                arch="amd64", history=["base", "delta"])
    return out, desc, layers


def read_archive(path: Path) -> dict[str, bytes]:
    files = {}
    with tarfile.open(path) as tar:
        for m in tar:
            files[m.name] = tar.extractfile(m).read() if m.isreg() else None
    return files


def test_image_archive_layout(tmp_path: Path) -> None:
    out, desc, layers = build_sample_image(tmp_path)
    files = read_archive(out)
    assert list(files)[:4] == ["oci-layout", "index.json", "blobs", "blobs/sha256"]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}

    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    (entry,) = index["manifests"]
    assert entry["annotations"] == {
        "io.containerd.image.name": "localhost/opsdrill/demo:1.2",
        "org.opencontainers.image.ref.name": "1.2",
    }
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert entry["digest"] == desc["digest"]

    # every blob is named by its own digest
    for name, data in files.items():
        if name.startswith("blobs/sha256/") and data is not None:
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]

    manifest_bytes = files["blobs/sha256/" + entry["digest"].split(":")[1]]
    assert entry["size"] == len(manifest_bytes)
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == oci_pack.MANIFEST_MEDIA_TYPE
    assert [l["digest"] for l in manifest["layers"]] == [l["digest"] for l in layers]
    assert all(l["mediaType"] == oci_pack.LAYER_MEDIA_TYPE for l in manifest["layers"])

    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert config["rootfs"] == {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]}
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/run"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert [h["created_by"] for h in config["history"]] == ["base", "delta"]


def test_image_archive_is_deterministic(tmp_path: Path) -> None:
    a = build_sample_image(tmp_path / "one")[0]
    b = build_sample_image(tmp_path / "two")[0]
    assert a.read_bytes() == b.read_bytes()


def test_shared_base_layer_has_one_digest(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    write(tmp_path / "base/etc/debian_version", "12\n")
    base = oci_pack.pack_layer(str(tmp_path / "base"), str(blobs), mtime_clamp=CLAMP)
    digests = []
    for name in ("x", "y"):
        write(tmp_path / name / name, name)
        delta = oci_pack.pack_layer(str(tmp_path / name), str(blobs), mtime_clamp=CLAMP)
        out = tmp_path / f"{name}.tar"
        oci_pack.build_image(f"localhost/t/{name}:1", [base, delta], str(blobs), str(out), {},
                             created=CLAMP, arch="amd64")
        files = read_archive(out)
        index = json.loads(files["index.json"])
        manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
        digests.append(manifest["layers"][0]["digest"])
    assert digests == [base["digest"], base["digest"]]


def test_image_refuses_missing_blob(tmp_path: Path) -> None:
    fake = {"digest": "sha256:" + "0" * 64, "size": 1, "diff_id": "sha256:" + "1" * 64}
    (tmp_path / "blobs").mkdir()
    with pytest.raises(oci_pack.PackError):
        oci_pack.build_image("localhost/x:1", [fake], str(tmp_path / "blobs"),
                             str(tmp_path / "x.tar"), {}, created=CLAMP)


@pytest.mark.parametrize(
    "ref,expected",
    [
        ("localhost/opsdrill/pause:3.10", ("localhost/opsdrill/pause", "3.10")),
        ("localhost:5000/a/b:v1", ("localhost:5000/a/b", "v1")),
        ("localhost:5000/a/b", ("localhost:5000/a/b", "latest")),
        ("busybox", ("busybox", "latest")),
    ],
)
def test_split_ref(ref: str, expected: tuple) -> None:
    assert oci_pack.split_ref(ref) == expected


# ---------------------------------------------------------------- CLI


def test_cli_round_trip(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    write(src / "pause", "\x7fELF", mode=0o755)
    blobs = tmp_path / "blobs"
    layer_json = tmp_path / "layer.json"
    assert oci_pack.main(["layer", str(src), "--blobs", str(blobs), "--mtime-clamp", str(CLAMP),
                          "--json-out", str(layer_json)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(layer_json.read_text())

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"config": {"Entrypoint": ["/pause"]}, "history": ["pause"]}))
    out = tmp_path / "pause.oci.tar"
    assert oci_pack.main(["image", "--ref", "localhost/opsdrill/pause:3.10", "--blobs", str(blobs),
                          "--config", str(config), "--layer", str(layer_json), "--out", str(out),
                          "--created", str(CLAMP), "--arch", "amd64"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["annotations"]["io.containerd.image.name"] == "localhost/opsdrill/pause:3.10"
    assert out.exists() and not Path(str(out) + ".tmp").exists()

    assert oci_pack.main(["layer", str(tmp_path / "missing"), "--blobs", str(blobs)]) == 1
