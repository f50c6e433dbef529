"""Datagram sealing: the clear header, AEAD suites, subkey derivation and the cluster key file.

Theory of operation (RFC 0005). Every datagram starts with a fixed 32-byte clear header::

    magic "GC" | version u8 | suite u8 | cluster id u32 | sender u32 | boot id u64 | epoch u32 |
    counter u64                                                     (all integers big-endian)

followed, for an AEAD suite, by the ciphertext of the CBOR frame and a 16-byte tag, with the
whole header as associated data; for suite 0 (unkeyed) by the CBOR frame itself. The header is
in the clear because a receiver needs it to pick the key and the replay window before it can
decrypt anything, and it is authenticated because it is the associated data.

Keys. All members share one cluster key (the key file). A sender never uses it directly: each
(suite, sender, boot id, epoch) gets its own 32-byte subkey by HKDF-SHA256 (RFC 5869) — Extract
once with a salt naming the cluster, Expand per subkey with an info string naming the suite,
sender, boot id and epoch. So the 96-bit nonce can be a plain counter (4 zero bytes then the
64-bit counter): it is unique because no two (sender, boot, epoch) triples share a subkey, and a
boot id strictly increases across restarts (RFC 0005 §7). The sender moves to the
next epoch, and so to a fresh subkey, before the suite's usage limit (``EPOCH_FRAMES``).

This module is pure apart from the two key-file helpers at the end, and has no randomness: the
key bytes come from the caller (``gcs keygen`` passes ``os.urandom``).
"""

from __future__ import annotations

import enum
import hmac
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from gcs.errors import ConfigError
from gcs.wire.codec import cluster_name_bytes
from gcs.wire.limits import HEADER_BYTES, WIRE_VERSION

__all__ = [
    "AEAD_SUITES",
    "EPOCH_FRAMES",
    "HEADER",
    "INTEGRITY_LIMITS",
    "MAGIC",
    "MAX_KEY_BYTES",
    "MIN_KEY_BYTES",
    "SALT_LABEL",
    "SUBKEY_BYTES",
    "SUBKEY_LABEL",
    "Aead",
    "ClearHeader",
    "KeySchedule",
    "Suite",
    "derive_subkey",
    "extract_prk",
    "generate_key",
    "load_key",
    "make_aead",
    "nonce_for",
    "pack_header",
    "parse_header",
    "seal_datagram",
]

MAGIC = b"GC"
HEADER = struct.Struct(">2sBBIIQIQ")
assert HEADER.size == HEADER_BYTES

SALT_LABEL = b"gcs/1 hkdf salt\x00"
"""HKDF-Extract salt = SALT_LABEL || UTF-8 cluster name (RFC 0005 §4.2)."""
SUBKEY_LABEL = b"gcs/1 subkey\x00"
"""HKDF-Expand info = SUBKEY_LABEL || suite u8 || sender u32 || boot id u64 || epoch u32."""
_INFO = struct.Struct(">BIQI")
SUBKEY_BYTES = 32
MIN_KEY_BYTES = 32
MAX_KEY_BYTES = 4096
_NONCE_PREFIX = bytes(4)
_COUNTER_OFFSET = HEADER_BYTES - 8


class Suite(enum.IntEnum):
    """The suite byte of the clear header (RFC 0005 §3.1, registry)."""

    NONE = 0
    AES_256_GCM = 1
    CHACHA20_POLY1305 = 2


AEAD_SUITES = frozenset({Suite.AES_256_GCM, Suite.CHACHA20_POLY1305})

EPOCH_FRAMES: dict[Suite, int] = {
    # RFC 9001 §6.6: the confidentiality limit of AEAD_AES_256_GCM is 2^23 packets per key.
    Suite.AES_256_GCM: 1 << 23,
    # RFC 9001 §6.6 puts ChaCha20-Poly1305's confidentiality limit beyond 2^62 packets, so any
    # finite epoch is safe. We use the same 2^23 so the epoch schedule, the replay-window
    # behaviour and the test vectors do not depend on the suite, and a subkey's exposure stays
    # bounded; the cost is one HKDF-Expand per 8,388,608 frames (RFC 0005 §6).
    Suite.CHACHA20_POLY1305: 1 << 23,
    # Unkeyed datagrams have no key to wear out; the same schedule keeps the code path identical.
    Suite.NONE: 1 << 23,
}
"""Frames a sender seals under one subkey before it moves to the next epoch."""

INTEGRITY_LIMITS: dict[Suite, int] = {
    Suite.AES_256_GCM: 1 << 52,
    Suite.CHACHA20_POLY1305: 1 << 36,
}
"""RFC 9001 §6.6 forgery-attempt limits per key; documented and counted, see RFC 0005 §6.3."""

Aead = AESGCM | ChaCha20Poly1305


class ClearHeader(NamedTuple):
    """The 32-byte clear header, field by field (RFC 0005 §3)."""

    magic: bytes
    version: int
    suite: int
    cluster_id: int
    sender: int
    boot_id: int
    epoch: int
    counter: int


def pack_header(
    suite: int, cluster_id: int, sender: int, boot_id: int, epoch: int, counter: int
) -> bytes:
    """The clear header of a datagram of the current wire version."""
    return HEADER.pack(MAGIC, WIRE_VERSION, suite, cluster_id, sender, boot_id, epoch, counter)


def parse_header(datagram: bytes) -> ClearHeader:
    """Split the first 32 bytes into fields; the caller checks length and values."""
    return ClearHeader(*HEADER.unpack_from(datagram))


def nonce_for(header: bytes) -> bytes:
    """The AEAD nonce of a datagram: 4 zero bytes then the header's 8 counter bytes."""
    return _NONCE_PREFIX + header[_COUNTER_OFFSET:HEADER_BYTES]


def seal_datagram(aead: Aead | None, header: bytes, body: bytes) -> bytes:
    """Header, then the AEAD ciphertext and tag of ``body`` (the header is the associated data).

    With ``aead=None`` (suite 0) the body follows the header unchanged.
    """
    if aead is None:
        return header + body
    return header + aead.encrypt(_NONCE_PREFIX + header[_COUNTER_OFFSET:HEADER_BYTES], body, header)


def extract_prk(cluster_key: bytes, cluster_name: str) -> bytes:
    """HKDF-Extract (SHA-256): PRK = HMAC(salt = SALT_LABEL || name, cluster key).

    Naming the cluster in the salt separates the subkeys of two clusters that share a key file
    by mistake, on top of the cluster id check.
    """
    check_key_length(cluster_key)
    return hmac.digest(SALT_LABEL + cluster_name_bytes(cluster_name), cluster_key, "sha256")


def derive_subkey(prk: bytes, suite: int, sender: int, boot_id: int, epoch: int) -> bytes:
    """HKDF-Expand (SHA-256) to 32 bytes: one block, T(1) = HMAC(PRK, info || 0x01)."""
    info = SUBKEY_LABEL + _INFO.pack(suite, sender, boot_id, epoch)
    return hmac.digest(prk, info + b"\x01", "sha256")


def make_aead(suite: int, subkey: bytes) -> Aead:
    """The cipher object of an AEAD suite (both take a 32-byte key and a 12-byte nonce)."""
    if suite == Suite.AES_256_GCM:
        return AESGCM(subkey)
    if suite == Suite.CHACHA20_POLY1305:
        return ChaCha20Poly1305(subkey)
    raise ValueError(f"suite {suite} is not an AEAD suite")


class KeySchedule:
    """Derives and caches the cipher objects of one cluster key (RFC 0005 §4).

    Extract runs once, here; Expand plus cipher set-up (a few µs) runs the first time a
    (suite, sender, boot id, epoch) is seen. The cache is bounded because an attacker chooses
    the header fields of forged datagrams: a flood of made-up epochs costs derivations, never
    memory. The channel keeps the cipher of each live replay window, so evictions are harmless.
    """

    __slots__ = ("_cache", "_cache_size", "_prk", "derivations")

    def __init__(self, cluster_key: bytes, cluster_name: str, cache_size: int = 256) -> None:
        self._prk = extract_prk(cluster_key, cluster_name)
        self._cache: dict[tuple[int, int, int, int], Aead] = {}
        self._cache_size = cache_size
        self.derivations = 0

    def aead(self, suite: int, sender: int, boot_id: int, epoch: int) -> Aead:
        key = (suite, sender, boot_id, epoch)
        cipher = self._cache.get(key)
        if cipher is None:
            cipher = make_aead(suite, derive_subkey(self._prk, suite, sender, boot_id, epoch))
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]  # oldest first (insertion order)
            self._cache[key] = cipher
            self.derivations += 1
        return cipher


# ---------------------------------------------------------------- the key file (RFC 0005 §2)


def check_key_length(key: bytes) -> None:
    """Refuse a cluster key outside 32..4096 bytes (ValueError)."""
    if type(key) is not bytes:
        raise TypeError(f"cluster key must be bytes, got {type(key).__name__}")
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"cluster key must be {MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes, got {len(key)}"
        )


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read the cluster key file, refusing one that others can read (RFC 0005 §2, SEC-2-1).

    The mode is checked on the open file descriptor, so the file checked is the file read. On
    POSIX a key readable by group or others is refused outright rather than warned about: the key
    lets its holder impersonate every member, and a warning in a log nobody reads protects
    nothing.
    """
    where = "key_file"
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(where, f"{path} is not a regular file")
            if os.name == "posix" and info.st_mode & 0o044:
                mode = stat.S_IMODE(info.st_mode)
                raise ConfigError(
                    where,
                    f"{path} is readable by group or others (mode {mode:04o}); "
                    f"run: chmod 600 {path}",
                )
            key = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise ConfigError(where, f"cannot read {path}: {exc.strerror or exc}") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ConfigError(
            where,
            f"{path} holds {len(key)}{'+' if len(key) > MAX_KEY_BYTES else ''} bytes; "
            f"a cluster key is {MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes (make one with gcs keygen)",
        )
    return key


def generate_key(path: str | os.PathLike[str], rng_bytes: bytes, *, force: bool = False) -> None:
    """Write ``rng_bytes`` as a new key file, mode 0600, atomically (RFC 0005 §2, SEC-2-2).

    The bytes go to a private temporary file in the same directory, are flushed to disk, and
    the file is then linked into place (which fails if ``path`` exists) or, with ``force``,
    renamed over it. A reader therefore sees either no key, the old key or the whole new key,
    never a partial one, and an existing key is never replaced by accident.
    """
    where = "key_file"
    try:
        check_key_length(rng_bytes)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from exc
    target = Path(path)
    if not force and (target.exists() or target.is_symlink()):
        raise ConfigError(where, f"{target} exists; pass --force to replace it")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    except OSError as exc:
        raise ConfigError(where, f"cannot create a file in {target.parent}: {exc}") from exc
    try:
        _write_private(fd, rng_bytes)
        if force:
            os.replace(tmp_name, target)
        else:
            os.link(tmp_name, target)
        _fsync_directory(target.parent)
    except FileExistsError as exc:
        raise ConfigError(where, f"{target} exists; pass --force to replace it") from exc
    except OSError as exc:
        raise ConfigError(where, f"cannot write {target}: {exc}") from exc
    finally:
        if os.path.lexists(tmp_name):
            os.unlink(tmp_name)


def _write_private(fd: int, data: bytes) -> None:
    with open(fd, "wb", closefd=True) as handle:
        if hasattr(os, "fchmod"):
            os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    """Make the new directory entry durable (POSIX only; elsewhere it is a no-op)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
