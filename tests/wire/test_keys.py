"""The cluster key file and ``gcs keygen`` (RFC 0005 §2: SEC-2-1, SEC-2-2)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gcs.cli import main
from gcs.errors import ConfigError
from gcs.wire.channel import Channel
from gcs.wire.frames import MembMergeDetect, RingId
from gcs.wire.seal import generate_key, load_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.req("SEC-2-2")
def test_generate_key_writes_private_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    generate_key(path, bytes(range(64)))
    assert path.read_bytes() == bytes(range(64))
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["authkey"]  # no temporary left behind


@pytest.mark.req("SEC-2-2")
def test_generate_key_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    generate_key(path, b"a" * 32)
    with pytest.raises(ConfigError, match="exists"):
        generate_key(path, b"b" * 32)
    assert path.read_bytes() == b"a" * 32
    generate_key(path, b"b" * 40, force=True)
    assert path.read_bytes() == b"b" * 40
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.req("SEC-2-2")
def test_generate_key_checks_length(tmp_path: Path) -> None:
    for size in (0, 31, 4097):
        with pytest.raises(ConfigError):
            generate_key(tmp_path / f"k{size}", bytes(size))
    assert not list(tmp_path.iterdir())


@pytest.mark.req("SEC-2-1")
def test_load_key_refuses_keys_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    generate_key(path, bytes(range(48)))
    assert load_key(path) == bytes(range(48))
    for loose in (0o640, 0o604, 0o644):
        path.chmod(loose)
        with pytest.raises(ConfigError, match="chmod 600"):
            load_key(path)
    path.chmod(0o400)
    assert load_key(path) == bytes(range(48))


@pytest.mark.req("SEC-2-1")
def test_load_key_checks_length_and_kind(tmp_path: Path) -> None:
    for size in (0, 31, 4097):
        path = tmp_path / f"k{size}"
        path.write_bytes(bytes(size))
        path.chmod(0o600)
        with pytest.raises(ConfigError, match="gcs keygen"):
            load_key(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_key(tmp_path / "missing")
    with pytest.raises(ConfigError):
        load_key(tmp_path)


@pytest.mark.req("SEC-2-2")
def test_keygen_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "authkey"
    assert main(["keygen", str(path)]) == 0
    first = load_key(path)
    assert len(first) == 64
    assert "64-byte" in capsys.readouterr().out
    assert main(["keygen", str(path)]) == 1
    assert "exists" in capsys.readouterr().err
    assert load_key(path) == first
    assert main(["keygen", str(path), "--force", "--bytes", "32"]) == 0
    second = load_key(path)
    assert len(second) == 32 and second != first[:32]
    assert main(["keygen", str(tmp_path / "small"), "--bytes", "16"]) == 1
    assert not (tmp_path / "small").exists()


def test_channels_share_a_generated_key_file(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    assert main(["keygen", str(path)]) == 0
    frame = MembMergeDetect(1, RingId(seq=4, rep=1))
    a = Channel(1, 1, "key-tests", load_key(path))
    b = Channel(2, 1, "key-tests", load_key(path))
    assert b.open(a.seal(frame)) == (1, frame)
