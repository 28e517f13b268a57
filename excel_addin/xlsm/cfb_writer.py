"""A minimal compound-file (MS-CFB) writer: a tree of storages and streams in, the file's bytes out.

vbaProject.bin is a compound file. olefile reads those but cannot resize streams, and the one writer on
PyPI is AGPL, so this module writes version-3 files (512-byte sectors) from scratch: streams under the
4096-byte cutoff go to the mini stream (64-byte mini sectors), larger ones to regular sectors, one FAT
chain each, the directory as a red-black tree per storage (MS-CFB 2.6.4). Timestamps and CLSIDs are
zero, so the same tree always gives the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
MAX_REGSECT = 0xFFFFFFFA
DIFSECT = 0xFFFFFFFC
FATSECT = 0xFFFFFFFD
ENDOFCHAIN = 0xFFFFFFFE
FREESECT = 0xFFFFFFFF
NOSTREAM = 0xFFFFFFFF
_HEADER_DIFAT_SLOTS = 109
_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_RED, _BLACK = 0, 1

Tree = Mapping[str, "bytes | Tree"]


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: list[_Entry] = field(default_factory=list)
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    color: int = _BLACK
    start: int = ENDOFCHAIN
    size: int = 0
    sid: int = 0


def _sort_key(name: str) -> tuple[int, str]:
    """CFB directory order: shorter names first, then by upper-cased code units (2.6.4)."""
    return (len(name.encode("utf-16-le")), name.upper())


def _check_name(name: str) -> None:
    if not name or len(name) > 31 or any(c in name for c in "/\\:!"):
        raise ValueError(f"invalid compound-file entry name {name!r}: 1-31 characters, none of / \\ : !")


def _build(name: str, node: Tree, kind: int) -> _Entry:
    entry = _Entry(name, kind)
    seen: set[str] = set()
    for child_name, value in node.items():
        _check_name(child_name)
        if child_name.upper() in seen:
            raise ValueError(
                f"duplicate compound-file entry name {child_name!r} (names are case-insensitive)"
            )
        seen.add(child_name.upper())
        if isinstance(value, bytes | bytearray):
            entry.children.append(_Entry(child_name, _STREAM, bytes(value)))
        elif isinstance(value, Mapping):
            entry.children.append(_build(child_name, value, _STORAGE))
        else:
            raise TypeError(f"entry {child_name!r}: expected bytes (stream) or a mapping (storage)")
    entry.children.sort(key=lambda e: _sort_key(e.name))
    return entry


def _link_siblings(children: list[_Entry]) -> int:
    """Arrange sorted siblings as a balanced binary search tree coloured as a valid red-black tree.

    Splitting at the median fills every level but the deepest, so colouring the deepest level red (when
    it is not the root) and all others black gives every path the same number of black nodes.
    Returns the sid of the subtree's root.
    """
    depth_of: dict[int, int] = {}

    def place(lo: int, hi: int, depth: int) -> int:
        if lo >= hi:
            return NOSTREAM
        mid = (lo + hi) // 2
        node = children[mid]
        depth_of[mid] = depth
        node.left = place(lo, mid, depth + 1)
        node.right = place(mid + 1, hi, depth + 1)
        return node.sid

    root = place(0, len(children), 0)
    deepest = max(depth_of.values(), default=0)
    for index, node in enumerate(children):
        node.color = _RED if deepest > 0 and depth_of[index] == deepest else _BLACK
    return root


def _dir_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le") + b"\0\0"
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name,
        len(name),
        entry.kind,
        entry.color,
        entry.left,
        entry.right,
        entry.child,
        b"\0" * 16,
        0,
        0,
        0,
        entry.start,
        entry.size,
    )


def _unused_dir_entry() -> bytes:
    return struct.pack(
        "<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, b"\0" * 16, 0, 0, 0, 0, 0
    )


def _sectors(nbytes: int, size: int) -> int:
    return -(-nbytes // size)


def _numbered(root: _Entry) -> list[_Entry]:
    """Every directory entry in directory order (depth first from the root, each storage's children in
    sorted order), numbered, with each storage's children linked into its red-black tree."""
    entries: list[_Entry] = []

    def number(entry: _Entry) -> None:
        entry.sid = len(entries)
        entries.append(entry)
        for child in entry.children:
            number(child)

    number(root)
    for entry in entries:
        if entry.children:
            entry.child = _link_siblings(entry.children)
    return entries


def _mini_stream(small: list[_Entry]) -> tuple[list[int], bytes]:
    """The mini FAT and the mini stream: small streams back to back in 64-byte mini sectors (each entry's
    start and size set)."""
    mini_fat: list[int] = []
    mini_stream = bytearray()
    for entry in small:
        count = _sectors(len(entry.data), MINI_SECTOR)
        first = len(mini_fat)
        mini_fat += [first + k + 1 for k in range(count - 1)] + [ENDOFCHAIN]
        entry.start, entry.size = first, len(entry.data)
        mini_stream += entry.data.ljust(count * MINI_SECTOR, b"\0")
    return mini_fat, bytes(mini_stream)


def _fat_sector_count(n_other: int) -> int:
    """How many FAT sectors a file of ``n_other`` other sectors needs (the FAT maps itself too)."""
    n_fat = 1
    while n_fat * (SECTOR // 4) < n_fat + n_other:
        n_fat += 1
    if n_fat > _HEADER_DIFAT_SLOTS:
        raise ValueError("compound file too large for this writer (needs DIFAT sectors)")
    return n_fat


def _header(n_fat: int, dir_first: int, minifat_first: int, n_minifat: int) -> bytes:
    """The 512-byte header of a version-3 file whose FAT sectors come first."""
    difat = list(range(n_fat)) + [FREESECT] * (_HEADER_DIFAT_SLOTS - n_fat)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        _SIGNATURE,
        b"\0" * 16,
        0x003E,  # minor version
        0x0003,  # major version 3: 512-byte sectors
        0xFFFE,  # byte order mark
        9,  # sector shift: 2**9 = 512
        6,  # mini sector shift: 2**6 = 64
        b"\0" * 6,
        0,  # number of directory sectors (always 0 in version 3)
        n_fat,
        dir_first,
        0,  # transaction signature
        MINI_CUTOFF,
        minifat_first,
        n_minifat,
        ENDOFCHAIN,  # first DIFAT sector: none
        0,
    ) + struct.pack(f"<{_HEADER_DIFAT_SLOTS}I", *difat)
    assert len(header) == SECTOR
    return header


class _Sectors:
    """The file's sectors after the header, as they are allocated: the FAT chains and their contents."""

    def __init__(self, n_fat: int):
        self.fat: list[int] = [FATSECT] * n_fat
        self.contents: list[bytes] = []

    def chain(self, count: int) -> int:
        """Chain ``count`` new sectors in the FAT; the first one's number."""
        first = len(self.fat)
        self.fat.extend(first + k + 1 for k in range(count - 1))
        self.fat.append(ENDOFCHAIN)
        return first

    def allocate(self, data: bytes, count: int) -> int:
        """``data`` in ``count`` new chained sectors after the others; the first one's number."""
        self.contents.append(data.ljust(count * SECTOR, b"\0"))
        return self.chain(count)

    def fat_bytes(self, n_fat: int) -> bytes:
        words = self.fat + [FREESECT] * (n_fat * SECTOR // 4 - len(self.fat))
        return struct.pack(f"<{len(words)}I", *words)


def write_compound_file(tree: Tree) -> bytes:
    """The bytes of a version-3 compound file holding ``tree`` (name -> bytes for a stream, or a mapping
    for a storage). Raises ValueError for invalid names or a file too large for the header's FAT list.

    Layout after the header: the FAT, the directory, the mini FAT, the mini stream (the root entry's
    stream), then each large stream."""
    root = _build("Root Entry", tree, _ROOT)
    entries = _numbered(root)
    streams = [e for e in entries if e.kind == _STREAM]
    large = [e for e in streams if len(e.data) >= MINI_CUTOFF]
    mini_fat, mini_stream = _mini_stream([e for e in streams if 0 < len(e.data) < MINI_CUTOFF])
    for entry in streams:
        if not entry.data:
            entry.start, entry.size = ENDOFCHAIN, 0

    n_dir = _sectors(len(entries) * 128, SECTOR)
    n_minifat = _sectors(len(mini_fat) * 4, SECTOR)
    n_ministream = _sectors(len(mini_stream), SECTOR)
    n_large = [_sectors(len(e.data), SECTOR) for e in large]
    n_fat = _fat_sector_count(n_dir + n_minifat + n_ministream + sum(n_large))

    sectors = _Sectors(n_fat)
    dir_first = sectors.chain(n_dir)  # the directory's contents go in last, once every entry is placed
    minifat_first = ENDOFCHAIN
    if n_minifat:
        minifat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
        minifat_bytes += struct.pack("<I", FREESECT) * (n_minifat * SECTOR // 4 - len(mini_fat))
        minifat_first = sectors.allocate(minifat_bytes, n_minifat)
    if n_ministream:
        root.start, root.size = sectors.allocate(mini_stream, n_ministream), len(mini_stream)
    for entry, count in zip(large, n_large, strict=True):
        entry.start, entry.size = sectors.allocate(entry.data, count), len(entry.data)

    directory = b"".join(_dir_entry(e) for e in entries)
    directory += _unused_dir_entry() * (n_dir * 4 - len(entries))
    header = _header(n_fat, dir_first, minifat_first, n_minifat)
    return header + sectors.fat_bytes(n_fat) + directory + b"".join(sectors.contents)
