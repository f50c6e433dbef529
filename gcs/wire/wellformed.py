"""Name the first CBOR-level fault of a frame, in byte order (RFC 0002 §8, rows F2-F9).

Why a second reader. The codec decodes with cbor2, which is fast but decides the order of its
own complaints: it reads a tag's content before refusing the tag, so ``c2`` followed by nothing
is "premature end" to cbor2 while RFC 0002 says a tag is refused where it starts. A conformance
suite compares drop reasons, so the reason for malformed input must follow the specification,
not a library's internals. This scanner is that specification, executable: it walks the bytes
as one CBOR data item, left to right, and reports the first fault it meets. The codec calls it
only after cbor2 has refused the input, so well-formed frames never pay for it.

The walk is iterative, holds one counter per open array or map (at most five, since a sixth
level is already a fault), and consumes at least one byte per step, so it runs in time linear in
the input and constant memory whatever lengths the input claims (WIRE-8.1-10).
"""

from __future__ import annotations

from gcs.wire.errors import DropReason

__all__ = ["MAX_CBOR_DEPTH", "first_fault"]

MAX_CBOR_DEPTH = 4
"""Most arrays and maps that may enclose a data item: frame > rtr list > rtr entry > ring id >
rep is the deepest valid path, and the rep integer is enclosed by four arrays (RFC 0002
WIRE-8.1-2)."""

_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}
_MAJOR_TEXT = 3
_MAJOR_ARRAY = 4
_MAJOR_MAP = 5
_MAJOR_TAG = 6
_MAJOR_SIMPLE = 7
_INDEFINITE = 31
_SIMPLE_ONE_BYTE = 24
_FIRST_TWO_BYTE_SIMPLE = 32

Fault = tuple[DropReason, str]


def first_fault(data: bytes | bytearray | memoryview) -> Fault | None:
    """The first fault of the CBOR data item starting at ``data[0]``, or None if it is complete.

    Bytes after a complete item are not looked at (they are ``trailing_bytes``, a later check).
    """
    size = len(data)
    open_counts: list[int] = []  # items still expected by each open array or map, outermost first
    pos = 0
    while True:
        if pos >= size:
            return DropReason.TRUNCATED, f"input ends at byte {pos}, inside the data item"
        initial = data[pos]
        fault = _initial_byte_fault(initial, len(open_counts), pos)
        if fault is not None:
            return fault
        major, info = initial >> 5, initial & 31
        width = _ARGUMENT_BYTES.get(info, 0)
        if pos + 1 + width > size:
            return DropReason.TRUNCATED, f"input ends inside the argument of byte {pos}"
        argument = info if width == 0 else int.from_bytes(data[pos + 1 : pos + 1 + width], "big")
        start, pos = pos, pos + 1 + width
        two_byte_simple = major == _MAJOR_SIMPLE and info == _SIMPLE_ONE_BYTE
        if two_byte_simple and argument < _FIRST_TWO_BYTE_SIMPLE:
            return DropReason.CBOR, f"byte {start}: simple value {argument} in two bytes"
        if major in (2, _MAJOR_TEXT):
            if size - pos < argument:
                return DropReason.TRUNCATED, f"string at byte {start} runs past the input"
            if major == _MAJOR_TEXT and not _is_utf8(data[pos : pos + argument]):
                return DropReason.CBOR, f"text string at byte {start} is not valid UTF-8"
            pos += argument
        elif major in (_MAJOR_ARRAY, _MAJOR_MAP) and argument > 0:
            open_counts.append(argument if major == _MAJOR_ARRAY else 2 * argument)
            continue
        # A data item is complete: count it against the containers it closes.
        while open_counts:
            open_counts[-1] -= 1
            if open_counts[-1]:
                break
            open_counts.pop()
        if not open_counts:
            return None


def _initial_byte_fault(initial: int, depth: int, pos: int) -> Fault | None:
    """Faults visible in an initial byte alone, given how many containers enclose the item."""
    major, info = initial >> 5, initial & 31
    if depth > MAX_CBOR_DEPTH:
        return DropReason.CBOR, f"byte {pos}: a data item nested deeper than {MAX_CBOR_DEPTH}"
    if major == _MAJOR_TAG:
        return DropReason.CBOR, f"byte {pos}: a tag"
    if 28 <= info <= 30:  # the reserved additional-information values
        return DropReason.CBOR, f"byte {pos}: reserved additional information {info}"
    if info == _INDEFINITE:
        if major == _MAJOR_SIMPLE:
            return DropReason.CBOR, f"byte {pos}: a break outside an indefinite-length item"
        return DropReason.CBOR, f"byte {pos}: an indefinite length"
    return None


def _is_utf8(raw: bytes | bytearray | memoryview) -> bool:
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
