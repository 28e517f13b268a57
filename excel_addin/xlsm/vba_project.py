"""Edit a VBA project (vbaProject.bin) at the source level: add, replace and remove standard modules.

The template's VBA starts from the project inside xlwings' ``quickstart_standalone.xlsm`` (it carries the
xlwings module and its Dictionary class) and gets our modules added as source only, as MS-OVBA allows:

* each new module stream is just its MS-OVBA-compressed source (MODULEOFFSET 0, no compiled p-code);
* the ``_VBA_PROJECT`` stream is the 7-byte form with version 0xFFFF, so Office ignores any cached
  p-code and recompiles every module from source on open (2.3.4.1);
* the dir stream (2.3.4.2) is rebuilt with the module records, the PROJECT stream (2.3.1) gets
  ``Module=`` lines and PROJECTwm the name map (2.3.3);
* the compound file is written anew by ``cfb_writer`` (olefile can read it but not resize streams).

Modules this class does not touch keep their streams byte for byte.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import olefile

from excel_addin.xlsm.cfb_writer import write_compound_file
from excel_addin.xlsm.ovba_compression import compress, decompress

# dir stream record ids (MS-OVBA 2.3.4.2)
_PROJECTCODEPAGE = 0x0003
_PROJECTVERSION = 0x0009  # its size field says 4 but 6 bytes follow
_PROJECTMODULES = 0x000F
_PROJECTCOOKIE = 0x0013
_MODULENAME = 0x0019
_MODULESTREAMNAME = 0x001A
_MODULEDOCSTRING = 0x001C
_MODULEHELPCONTEXT = 0x001E
_MODULETYPE_PROCEDURAL = 0x0021
_MODULETYPE_OTHER = 0x0022  # document and class modules
_MODULECOOKIE = 0x002C
_MODULEOFFSET = 0x0031
_MODULESTREAMNAME_UNICODE = 0x0032
_MODULENAMEUNICODE = 0x0047
_MODULEDOCSTRING_UNICODE = 0x0048
_MODULE_TERMINATOR = 0x002B
_DIR_TERMINATOR = 0x0010

# _VBA_PROJECT stream that makes Office recompile from source (2.3.4.1): reserved 0x61CC, version 0xFFFF.
VBA_PROJECT_STREAM = b"\xcc\x61\xff\xff\x00\x00\x00"

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}")
_VB_NAME = re.compile(r'^Attribute VB_Name = "([^"]*)"\r?$', re.MULTILINE)

Record = tuple[int, bytes]


def _parse_records(data: bytes) -> list[Record]:
    records = []
    pos = 0
    while pos < len(data):
        if pos + 6 > len(data):
            raise ValueError(f"dir stream: truncated record header at byte {pos}")
        rid, size = struct.unpack_from("<HI", data, pos)
        pos += 6
        if rid == _PROJECTVERSION:
            size = 6
        if pos + size > len(data):
            raise ValueError(f"dir stream: record 0x{rid:04X} at byte {pos - 6} runs past the end")
        records.append((rid, data[pos : pos + size]))
        pos += size
    return records


def _serialize_records(records: list[Record]) -> bytes:
    out = bytearray()
    for rid, payload in records:
        size = 4 if rid == _PROJECTVERSION else len(payload)
        out += struct.pack("<HI", rid, size) + payload
    return bytes(out)


@dataclass
class _Module:
    """One module's dir records, and its stream when added or replaced here (None: keep the original)."""

    records: list[Record]
    stream: bytes | None = None

    def field(self, rid: int) -> bytes:
        for r, payload in self.records:
            if r == rid:
                return payload
        raise KeyError(rid)

    @property
    def offset(self) -> int:
        return struct.unpack("<I", self.field(_MODULEOFFSET))[0]


def normalize_source(name: str, source: str) -> str:
    """Module source as VBA stores it: CRLF line ends and ``Attribute VB_Name`` as the first line.

    A ``.bas`` file exported from the VBA editor already starts with that line; if it names another
    module, that is an error rather than a silent rename.
    """
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    match = _VB_NAME.search(text)
    if match is None:
        text = f'Attribute VB_Name = "{name}"\n' + text
    elif match.group(1) != name:
        raise ValueError(f"module source says Attribute VB_Name = {match.group(1)!r}, expected {name!r}")
    if not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", "\r\n")


class VbaProject:
    """A VBA project read from vbaProject.bin bytes; edit modules, then ``to_bytes()``."""

    def __init__(self, data: bytes):
        ole = olefile.OleFileIO(io.BytesIO(data))
        try:
            self._streams: dict[tuple[str, ...], bytes] = {
                tuple(path): ole.openstream(path).read() for path in ole.listdir(streams=True)
            }
            self._storages = [tuple(p) for p in ole.listdir(streams=False, storages=True)]
        finally:
            ole.close()
        for required in (("PROJECT",), ("VBA", "dir"), ("VBA", "_VBA_PROJECT")):
            if required not in self._streams:
                raise ValueError(f"not a VBA project: stream {'/'.join(required)} is missing")
        records = _parse_records(decompress(self._streams[("VBA", "dir")]))
        ids = [r for r, _ in records]
        if _PROJECTMODULES not in ids or ids[-1] != _DIR_TERMINATOR:
            raise ValueError("dir stream: PROJECTMODULES or the terminator is missing")
        start = ids.index(_PROJECTMODULES)
        self._head = records[:start]
        (count,) = struct.unpack("<H", records[start][1])
        if records[start + 1][0] != _PROJECTCOOKIE:
            raise ValueError("dir stream: PROJECTCOOKIE must follow PROJECTMODULES")
        self._cookie = records[start + 1]
        self._modules: list[_Module] = []
        current: list[Record] = []
        for record in records[start + 2 : -1]:
            current.append(record)
            if record[0] == _MODULE_TERMINATOR:
                self._modules.append(_Module(current))
                current = []
        if current or len(self._modules) != count:
            raise ValueError(f"dir stream: expected {count} module records, found {len(self._modules)}")
        (codepage,) = struct.unpack("<H", dict(self._head)[_PROJECTCODEPAGE])
        self.codec = f"cp{codepage}"
        self._project_lines = self._streams[("PROJECT",)].decode(self.codec).split("\r\n")

    @classmethod
    def from_xlsm(cls, path: str | Path) -> VbaProject:
        """The project inside a macro-enabled workbook (its ``xl/vbaProject.bin``)."""
        with zipfile.ZipFile(path) as archive:
            return cls(archive.read("xl/vbaProject.bin"))

    # ---- reading -----------------------------------------------------------------------------------
    def _find(self, name: str) -> _Module | None:
        for module in self._modules:
            if self._name(module).lower() == name.lower():
                return module
        return None

    def _name(self, module: _Module) -> str:
        return module.field(_MODULENAME).decode(self.codec)

    @property
    def module_names(self) -> list[str]:
        """All modules in project order (document, class and standard)."""
        return [self._name(m) for m in self._modules]

    def module_type(self, name: str) -> str:
        """ "standard" for procedural modules, "other" for document and class modules."""
        module = self._require(name)
        ids = {r for r, _ in module.records}
        return "standard" if _MODULETYPE_PROCEDURAL in ids else "other"

    def source(self, name: str) -> str:
        """A module's source text (with its Attribute lines), decoded from the project code page."""
        module = self._require(name)
        if module.stream is not None:
            stream = module.stream
        else:
            stream_name = module.field(_MODULESTREAMNAME).decode(self.codec)
            stream = self._streams[("VBA", stream_name)]
        return decompress(stream[module.offset :]).decode(self.codec)

    def _require(self, name: str) -> _Module:
        module = self._find(name)
        if module is None:
            raise KeyError(f"no module named {name!r} in the VBA project (has {self.module_names})")
        return module

    # ---- editing -----------------------------------------------------------------------------------
    def set_module(self, name: str, source: str) -> None:
        """Add a standard module, or replace one of the same name, with ``source`` (source only)."""
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"invalid VBA module name {name!r}: a letter, then letters, digits or _, <= 31")
        text = normalize_source(name, source)
        try:
            encoded = text.encode(self.codec)
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            raise ValueError(
                f"module {name!r}: character {bad!r} cannot be stored in the project code page {self.codec}"
            ) from None
        existing = self._find(name)
        if existing is not None and self.module_type(name) != "standard":
            raise ValueError(
                f"module {name!r} is a document or class module; only standard ones are replaced"
            )
        mbcs = name.encode(self.codec)
        utf16 = name.encode("utf-16-le")
        module = _Module(
            records=[
                (_MODULENAME, mbcs),
                (_MODULENAMEUNICODE, utf16),
                (_MODULESTREAMNAME, mbcs),
                (_MODULESTREAMNAME_UNICODE, utf16),
                (_MODULEDOCSTRING, b""),
                (_MODULEDOCSTRING_UNICODE, b""),
                (_MODULEOFFSET, struct.pack("<I", 0)),
                (_MODULEHELPCONTEXT, struct.pack("<I", 0)),
                (_MODULECOOKIE, b"\xff\xff"),
                (_MODULETYPE_PROCEDURAL, b""),
                (_MODULE_TERMINATOR, b""),
            ],
            stream=compress(encoded),
        )
        if existing is not None:
            old_stream = existing.field(_MODULESTREAMNAME).decode(self.codec)
            self._streams.pop(("VBA", old_stream), None)
            self._modules[self._modules.index(existing)] = module
            return
        self._modules.append(module)
        self._add_project_line(f"Module={name}", f"{name}=0, 0, 0, 0, C")

    def remove_module(self, name: str) -> None:
        """Remove a standard module (its stream, dir records, PROJECT and PROJECTwm entries)."""
        module = self._require(name)
        if self.module_type(name) != "standard":
            raise ValueError(f"module {name!r} is a document or class module; only standard ones are removed")
        self._modules.remove(module)
        if module.stream is None:
            self._streams.pop(("VBA", module.field(_MODULESTREAMNAME).decode(self.codec)), None)
        real = self._name(module)
        self._project_lines = [
            line
            for line in self._project_lines
            if line != f"Module={real}" and not line.startswith(f"{real}=")
        ]

    def _add_project_line(self, module_line: str, workspace_line: str) -> None:
        lines = self._project_lines
        keys = ("Document=", "Module=", "Class=", "BaseClass=", "Package=")
        last = max((i for i, line in enumerate(lines) if line.startswith(keys)), default=0)
        lines.insert(last + 1, module_line)
        if "[Workspace]" in lines:
            end = lines.index("[Workspace]") + 1
            while end < len(lines) and lines[end]:
                end += 1
            lines.insert(end, workspace_line)

    # ---- writing -----------------------------------------------------------------------------------
    def _dir_stream(self) -> bytes:
        records = list(self._head)
        records.append((_PROJECTMODULES, struct.pack("<H", len(self._modules))))
        records.append(self._cookie)
        for module in self._modules:
            records += module.records
        records.append((_DIR_TERMINATOR, b""))
        return compress(_serialize_records(records))

    def _projectwm(self) -> bytes:
        out = bytearray()
        for module in self._modules:
            name = self._name(module)
            out += name.encode(self.codec) + b"\0" + name.encode("utf-16-le") + b"\0\0"
        return bytes(out + b"\0\0")

    def to_bytes(self) -> bytes:
        """The project as vbaProject.bin bytes (deterministic: same edits, same bytes)."""
        streams = dict(self._streams)
        streams[("PROJECT",)] = "\r\n".join(self._project_lines).encode(self.codec)
        streams[("PROJECTwm",)] = self._projectwm()
        streams[("VBA", "dir")] = self._dir_stream()
        version = streams[("VBA", "_VBA_PROJECT")]
        if len(version) != 7 or version[2:4] != b"\xff\xff":
            streams[("VBA", "_VBA_PROJECT")] = VBA_PROJECT_STREAM
        for module in self._modules:
            if module.stream is not None:
                streams[("VBA", module.field(_MODULESTREAMNAME).decode(self.codec))] = module.stream
        tree: dict = {}
        for storage in self._storages:
            node = tree
            for part in storage:
                node = node.setdefault(part, {})
        for path, data in streams.items():
            node = tree
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = data
        return write_compound_file(tree)
