"""The VBA project writer: MS-OVBA compression, the compound-file writer and module editing, each checked
by independent readers (oletools' decompressor and olevba, olefile, LibreOffice)."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import olefile
import pytest
import xlwings
from oletools.olevba import VBA_Parser, decompress_stream

from excel_addin.testing import libreoffice
from excel_addin.xlsm.cfb_writer import write_compound_file
from excel_addin.xlsm.ovba_compression import compress, decompress
from excel_addin.xlsm.vba import XLWINGS_STANDALONE
from excel_addin.xlsm.vba_project import VbaProject

# MS-OVBA 3.2.1 and 3.2.3: examples of compressed containers from the spec.
SPEC_PLAIN_1 = b"abcdefghijklmnopqrstuv."
SPEC_PACKED_1 = bytes.fromhex("0119B000616263646566676800696A6B6C6D6E6F70007172737475762E")
SPEC_PLAIN_3 = b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
SPEC_PACKED_3 = bytes.fromhex(
    "012FB000236161616263646582660070616768696A013808616B6C00306D6E6F700671027004107273747576107778797A003C"
)


def _oletools_decompress(data: bytes) -> bytes:
    return bytes(decompress_stream(bytearray(data)))


def _vba_text(n_lines: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = ["Dim", "x", "As", "Double", "If", "Then", "End", "Sub", "=", "+", "rng", "Cells(1, 2)", "'é€ü"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 14))) for _ in range(n_lines)]
    return "\r\n".join(lines).encode("cp1252")


# ---- compression --------------------------------------------------------------------------------------


def test_spec_examples_decompress():
    assert decompress(SPEC_PACKED_1) == SPEC_PLAIN_1
    assert decompress(SPEC_PACKED_3) == SPEC_PLAIN_3


def test_spec_example_without_matches_compresses_to_the_spec_bytes():
    assert compress(SPEC_PLAIN_1) == SPEC_PACKED_1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"a",
        SPEC_PLAIN_3,
        b"x" * 4096,
        b"x" * 4097,
        b"ab" * 50_000,  # runs far longer than a copy token's maximum length
        pytest.param(_vba_text(6000, 1), id="long-module-many-chunks"),
        pytest.param(
            'Sub Grüße()\r\n  MsgBox "Ça coûte 5 € – naïve"\r\nEnd Sub\r\n'.encode("cp1252") * 300,
            id="non-ascii",
        ),
        pytest.param(random.Random(7).randbytes(3 * 4096 + 100), id="incompressible-raw-chunks"),
    ],
)
@pytest.mark.slow
def test_compression_round_trips_through_both_decompressors(data):
    packed = compress(data)
    assert decompress(packed) == data
    assert _oletools_decompress(packed) == data


def test_compression_shrinks_source_text():
    data = _vba_text(3000, 2)
    assert len(compress(data)) < len(data) / 2


def test_chunk_headers_are_well_formed():
    packed = compress(_vba_text(3000, 3))
    pos, chunks = 1, 0
    while pos < len(packed):
        (header,) = struct.unpack_from("<H", packed, pos)
        assert (header >> 12) & 0b111 == 0b011
        pos += (header & 0x0FFF) + 3
        chunks += 1
    assert pos == len(packed)
    assert chunks == -(-len(decompress(packed)) // 4096)


def test_decompress_rejects_garbage():
    with pytest.raises(ValueError, match="0x01"):
        decompress(b"\x02abc")
    with pytest.raises(ValueError, match="signature"):
        decompress(b"\x01\xff\x0f")


# ---- compound file -----------------------------------------------------------------------------------


def _tree() -> dict:
    tree: dict = {
        "PROJECT": b"ID=...\r\n" * 3,
        "PROJECTwm": b"",
        "VBA": {f"Module{k}": bytes([k]) * (k * 700 + 1) for k in range(12)},
        "Storage": {"Nested": {"deep": b"d" * 10_000}, "a": b"1"},
    }
    tree["VBA"]["big"] = bytes(range(256)) * 100
    return tree


def _walk(tree, prefix=()):
    for name, value in tree.items():
        if isinstance(value, dict):
            yield from _walk(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def test_olefile_reads_back_every_stream():
    data = write_compound_file(_tree())
    assert len(data) % 512 == 0
    ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    streams = dict(_walk(_tree()))
    assert {tuple(p) for p in ole.listdir(streams=True)} == set(streams)
    for path, value in streams.items():
        assert ole.openstream("/".join(path)).read() == value
    assert ole.get_type("Storage/Nested") == olefile.STGTY_STORAGE


def test_directory_is_a_red_black_search_tree_per_storage():
    data = write_compound_file(_tree())
    ole = olefile.OleFileIO(io.BytesIO(data))
    entries = ole.direntries

    def key(entry):
        return (len(entry.name), entry.name.upper())

    def check(sid, lo, hi):
        """Black height of the subtree at sid; asserts order and red-black rules."""
        if sid == olefile.NOSTREAM:
            return 1
        entry = entries[sid]
        assert (lo is None or key(lo) < key(entry)) and (hi is None or key(entry) < key(hi))
        for child in (entry.sid_left, entry.sid_right):
            if entry.color == 0 and child != olefile.NOSTREAM:
                assert entries[child].color == 1, "a red node has a red child"
        left = check(entry.sid_left, lo, entry)
        right = check(entry.sid_right, entry, hi)
        assert left == right, "unequal black heights"
        return left + (entry.color == 1)

    storages = [
        e for e in entries if e is not None and e.entry_type in (olefile.STGTY_ROOT, olefile.STGTY_STORAGE)
    ]
    assert len(storages) == 4  # root, VBA, Storage, Storage/Nested
    for storage in storages:
        if storage.sid_child != olefile.NOSTREAM:
            assert entries[storage.sid_child].color == 1, "the root of a sibling tree is black"
            check(storage.sid_child, None, None)


def test_writer_is_deterministic_and_validates_names():
    assert write_compound_file(_tree()) == write_compound_file(_tree())
    with pytest.raises(ValueError, match="invalid compound-file entry name"):
        write_compound_file({"a/b": b""})
    with pytest.raises(ValueError, match="duplicate"):
        write_compound_file({"abc": b"", "ABC": b""})


# ---- VBA project ---------------------------------------------------------------------------------------


def _olevba_modules(data: bytes) -> dict[str, str]:
    parser = VBA_Parser("vbaProject.bin", data=data)
    try:
        return {stream.split("/")[-1]: code for _, stream, _, code in parser.extract_macros()}
    finally:
        parser.close()


def _strip_attributes(source: str) -> str:
    return "\r\n".join(line for line in source.split("\r\n") if not line.startswith("Attribute VB_"))


@pytest.fixture(scope="module")
def standalone() -> bytes:
    with zipfile.ZipFile(XLWINGS_STANDALONE) as archive:
        return archive.read("xl/vbaProject.bin")


def test_reads_the_xlwings_standalone_project(standalone):
    project = VbaProject(standalone)
    assert project.module_names == ["ThisWorkbook", "Sheet1", "Module1", "Sheet2", "xlwings", "Dictionary"]
    assert project.module_type("xlwings") == "standard"
    assert project.module_type("Dictionary") == "other"
    assert f'XLWINGS_VERSION As String = "{xlwings.__version__}"' in project.source("xlwings")


@pytest.mark.slow
def test_added_replaced_and_removed_modules_read_back_with_olevba(standalone):
    long_source = _vba_text(5000, 4).decode("cp1252")  # ~25 chunks
    accented = 'Sub Grüße()\r\n    MsgBox "Größe: 5 €, naïve café"\r\nEnd Sub\r\n'
    project = VbaProject(standalone)
    project.remove_module("Module1")
    project.set_module("LongOne", long_source)
    project.set_module("Accents", "placeholder\n")
    project.set_module("Accents", accented)  # replace
    data = project.to_bytes()

    modules = _olevba_modules(data)
    assert set(modules) == {"ThisWorkbook", "Sheet1", "Sheet2", "xlwings", "Dictionary", "LongOne", "Accents"}
    assert _strip_attributes(modules["LongOne"]).rstrip("\r\n") == long_source.rstrip("\r\n")
    assert _strip_attributes(modules["Accents"]).rstrip("\r\n") == accented.rstrip("\r\n")
    original = VbaProject(standalone)
    assert modules["xlwings"].replace("\r\n", "\n") in original.source("xlwings").replace("\r\n", "\n")

    reread = VbaProject(data)
    assert reread.module_names == [
        "ThisWorkbook",
        "Sheet1",
        "Sheet2",
        "xlwings",
        "Dictionary",
        "LongOne",
        "Accents",
    ]
    assert reread.source("Accents") == 'Attribute VB_Name = "Accents"\r\n' + accented
    for name in ("ThisWorkbook", "Sheet1", "xlwings", "Dictionary"):
        assert reread.source(name) == original.source(name)
    # Round trip through our own writer again: nothing drifts.
    assert VbaProject(reread.to_bytes()).to_bytes() == reread.to_bytes()


def test_written_project_follows_ms_ovba(standalone):
    project = VbaProject(standalone)
    project.set_module("Added", "Sub A()\nEnd Sub\n")
    data = project.to_bytes()
    ole = olefile.OleFileIO(io.BytesIO(data))
    # 2.3.4.1: the 7-byte _VBA_PROJECT stream with version 0xFFFF (Office recompiles from source).
    vba_project = ole.openstream("VBA/_VBA_PROJECT").read()
    assert len(vba_project) == 7 and vba_project[:4] == b"\xcc\x61\xff\xff"
    # The new module's stream is its compressed source from offset 0.
    assert (
        decompress(ole.openstream("VBA/Added").read())
        == b'Attribute VB_Name = "Added"\r\nSub A()\r\nEnd Sub\r\n'
    )
    # 2.3.1: the PROJECT stream lists it; 2.3.3: PROJECTwm maps its name.
    project_text = ole.openstream("PROJECT").read().decode("cp1252")
    assert "\r\nModule=Added\r\n" in project_text and "\r\nAdded=0, 0, 0, 0, C" in project_text
    assert b"Added\x00" + "Added".encode("utf-16-le") + b"\x00\x00" in ole.openstream("PROJECTwm").read()
    # 2.3.4.2: the dir stream names it with MODULEOFFSET 0 and a procedural MODULETYPE.
    dir_stream = decompress(ole.openstream("VBA/dir").read())
    name_record = struct.pack("<HI", 0x0019, 5) + b"Added"
    start = dir_stream.index(name_record)
    module = dir_stream[start : dir_stream.index(struct.pack("<HI", 0x002B, 0), start)]
    assert struct.pack("<HII", 0x0031, 4, 0) in module
    assert struct.pack("<HI", 0x0021, 0) in module
    count_at = dir_stream.index(struct.pack("<HI", 0x000F, 2))
    assert struct.unpack_from("<H", dir_stream, count_at + 6)[0] == 7


def test_bad_edits_are_refused_with_a_reason(standalone):
    project = VbaProject(standalone)
    with pytest.raises(ValueError, match="invalid VBA module name"):
        project.set_module("1abc", "")
    with pytest.raises(ValueError, match="cannot be stored in the project code page cp1252"):
        project.set_module("Greek", "' αβγ\n")
    with pytest.raises(ValueError, match="expected 'Other'"):
        project.set_module("Other", 'Attribute VB_Name = "Mine"\nSub A()\nEnd Sub\n')
    with pytest.raises(ValueError, match="document or class module"):
        project.set_module("Sheet1", "Sub A()\nEnd Sub\n")
    with pytest.raises(KeyError, match="no module named"):
        project.remove_module("Missing")
    with pytest.raises(ValueError, match="not a VBA project"):
        VbaProject(write_compound_file({"PROJECT": b"x"}))


@pytest.mark.slow
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice is not installed")
def test_libreoffice_imports_the_written_modules(tmp_path, standalone):
    """LibreOffice loads a workbook's VBA into its Basic library; saving as .ods writes each module's
    source as XML, so what it read is visible."""
    import xlsxwriter

    project = VbaProject(standalone)
    project.remove_module("Module1")
    source = 'Sub Hello()\r\n    MsgBox "Grüße aus gradsheet"\r\nEnd Sub\r\n'
    project.set_module("Greeting", source)
    path = tmp_path / "macro.xlsm"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet().write("A1", 1)
    wb.add_vba_project(io.BytesIO(project.to_bytes()), is_stream=True)
    wb.close()
    ods = libreoffice.convert(path, "ods", tmp_path / "out", recalc=False)
    with zipfile.ZipFile(ods) as archive:
        names = archive.namelist()
        assert "Basic/VBAProject/Greeting.xml" in names
        assert "Basic/VBAProject/xlwings.xml" in names
        text = archive.read("Basic/VBAProject/Greeting.xml").decode("utf-8")
    assert "Sub Hello()" in text and "Grüße aus gradsheet" in text
