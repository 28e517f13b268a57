"""``python -m excel_addin.server class ...``, as a teacher runs it: enrolling from names and CSV files
(codes printed once, only hashes kept, a file only its owner can read), listing, revoking, re-issuing,
and clear refusals (duplicates, reserved or unusable names, unknown ids) that leave the list unchanged."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys

import pytest

from excel_addin.server.auth import roster, tokens
from excel_addin.server.options import CLASS_FILE_ENV
from excel_addin.testing.class_codes import CODE, ROOT, class_command, codes_in, enrol


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "school" / "runs"


def class_file(runs):
    return runs.parent / "class.json"


def test_add_prints_each_code_once_and_keeps_only_its_hash(runs):
    done = class_command(runs, "add", "Alice Smith", "Bob", "Zoë")
    codes = codes_in(done.stdout)
    assert sorted(codes) == ["alice-smith", "bob", "zoe"]
    assert all(CODE.fullmatch(code) for code in codes.values()) and len(set(codes.values())) == 3
    assert "Each class code is shown only now" in done.stdout
    path = class_file(runs)
    assert f"Enrolled 3 in {path}." in done.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for code in codes.values():
        assert code not in text and code.replace("-", "") not in text
        assert hashlib.sha256(code.replace("-", "").encode()).hexdigest() in text
    people = roster.load(path).people
    assert [(p.id, p.name, p.role) for p in people.values()] == [
        ("alice-smith", "Alice Smith", "student"),
        ("bob", "Bob", "student"),
        ("zoe", "Zoë", "student"),
    ]
    listed = class_command(runs, "list").stdout
    assert "alice-smith  Alice Smith  student" in listed and "active" in listed
    assert not CODE.search(listed)  # the codes are nowhere to be listed
    assert [f.name for f in path.parent.iterdir()] == ["class.json"]  # no temporary file left behind


@pytest.mark.slow
def test_teachers_are_enrolled_with_their_role(runs):
    codes = enrol(runs, "Ms Smith", teacher=True)
    assert list(codes) == ["ms-smith"]
    assert roster.load(class_file(runs)).people["ms-smith"].role == "teacher"
    assert "ms-smith  Ms Smith  teacher" in class_command(runs, "list").stdout


def test_a_csv_with_a_header_empty_lines_and_rows_without_a_name(runs, tmp_path):
    csv = tmp_path / "students.csv"
    csv.write_text("Name,Form\nCarol,7b\n\nDan  Brown,7c\n,7c\n李雷 (Li Lei),7c\n")
    done = class_command(runs, "add", "--csv", str(csv))
    assert "Note: skipped empty lines of students.csv: 3." in done.stdout
    assert "Note: skipped lines of students.csv with no name: 5." in done.stdout
    assert sorted(codes_in(done.stdout)) == ["carol", "dan-brown", "li-lei"]
    assert roster.load(class_file(runs)).people["dan-brown"].name == "Dan Brown"


@pytest.mark.slow
def test_csv_files_from_spreadsheets_semicolons_a_bom_and_no_header(runs, tmp_path):
    excel = tmp_path / "excel.csv"
    excel.write_bytes("\ufeffForm;Student\n7b;Émile\n7b;Ann-Marie O'Neil\n".encode())
    assert sorted(enrol_csv(runs, excel)) == ["ann-marie-o-neil", "emile"]
    plain = tmp_path / "plain.csv"
    plain.write_text("Fatima\nGus\n")
    assert sorted(enrol_csv(runs, plain)) == ["fatima", "gus"]


def enrol_csv(runs, path):
    return codes_in(class_command(runs, "add", "--csv", str(path)).stdout)


@pytest.mark.slow
def test_unusable_csv_files_are_named_with_what_to_do(runs, tmp_path):
    two = tmp_path / "two.csv"
    two.write_text("First,Last\nAlice,Smith\n")
    refused = class_command(runs, "add", "--csv", str(two), check=False)
    assert refused.returncode == 1
    assert (
        f"gradsheet class: {two}: which column holds the names? Head it with one of name, student, "
        "full name, display name (the first row is First, Last)"
    ) in refused.stderr
    missing = class_command(runs, "add", "--csv", str(tmp_path / "nope.csv"), check=False)
    assert f"{tmp_path / 'nope.csv'}: no such file" in missing.stderr
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("name\nZoë\n".encode("latin-1"))
    refused = class_command(runs, "add", "--csv", str(latin1), check=False)
    assert "is not UTF-8 text: save it as 'CSV UTF-8'" in refused.stderr
    assert not class_file(runs).exists()


@pytest.mark.slow
def test_duplicates_and_unusable_names_enrol_nobody(runs):
    enrol(runs, "Alice Smith")
    before = class_file(runs).read_bytes()
    refused = class_command(runs, "add", "Bob", "bob", "alice smith", "local", "李雷", "  ", check=False)
    assert refused.returncode == 1
    message = refused.stderr
    assert message.startswith("gradsheet class: nobody was enrolled; fix these and run the command again:")
    assert (
        "argument 2: 'bob' and 'Bob' (argument 1) both make the id 'bob': tell them apart, e.g. 'bob 2'"
        in (message)
    )
    assert (
        "argument 3: 'alice smith': the id 'alice-smith' is already enrolled (Alice Smith, student): "
        "'python -m excel_addin.server class reissue alice-smith' gives them a new code" in message
    )
    assert "argument 4: 'local' would get the id 'local', which the server keeps: add a letter" in message
    assert "argument 5: '李雷' has no Latin letter or digit to name a folder with" in message
    assert "argument 6: an empty name" in message
    assert class_file(runs).read_bytes() == before  # nothing enrolled, not even Bob
    assert "no names given" in class_command(runs, "add", check=False).stderr


@pytest.mark.slow
def test_revoke_and_reissue(runs):
    codes = enrol(runs, "Alice Smith", "Bob")
    done = class_command(runs, "revoke", "Alice Smith")  # a name finds its id
    assert "Revoked alice-smith (Alice Smith): their class code no longer signs in." in done.stdout
    current = roster.load(class_file(runs))
    assert current.person_with_code(codes["alice-smith"]) is None
    assert current.person_with_code(codes["bob"]).id == "bob"
    assert "alice-smith  Alice Smith  student" in class_command(runs, "list").stdout
    assert "1 revoked" in class_command(runs, "list").stdout
    new = codes_in(class_command(runs, "reissue", "alice-smith", "bob").stdout)
    assert sorted(new) == ["alice-smith", "bob"] and set(new.values()).isdisjoint(codes.values())
    current = roster.load(class_file(runs))
    assert current.person_with_code(new["alice-smith"]).id == "alice-smith"  # active again
    assert current.person_with_code(codes["bob"]) is None  # the old code is dead
    before = class_file(runs).read_bytes()
    unknown = class_command(runs, "revoke", "bob", "zed", check=False)
    assert unknown.returncode == 1
    assert "not in" in unknown.stderr and ": zed ('python -m excel_addin.server class list'" in unknown.stderr
    assert class_file(runs).read_bytes() == before


@pytest.mark.slow
def test_where_the_class_list_is(tmp_path):
    runs = tmp_path / "a" / "runs"
    enrol(runs, "Ann")
    assert class_file(runs).is_file()  # beside the runs folder by default
    other = tmp_path / "elsewhere.json"
    assert "ann" in codes_in(class_command(runs, "add", "Ann", "--class-file", str(other)).stdout)
    env = {**os.environ, "PYTHONPATH": str(ROOT), CLASS_FILE_ENV: str(tmp_path / "env.json")}
    command = [sys.executable, "-m", "excel_addin.server", "class", "add", "Ann"]
    subprocess.run(command, env=env, cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "env.json").is_file()


@pytest.mark.slow
def test_help_does_nothing(tmp_path):
    runs = tmp_path / "runs"
    for args in (["--help"], ["add", "--help"], ["revoke", "--help"]):
        done = class_command(runs, *args)
        assert "usage: python -m excel_addin.server class" in done.stdout
    assert "--csv FILE" in class_command(runs, "add", "--help").stdout
    assert not any(tmp_path.iterdir())


def test_codes_have_80_random_bits_and_are_read_leniently():
    assert tokens.RANDOM_BITS >= 80 and len(tokens.ALPHABET) == 32
    codes = {tokens.new_code() for _ in range(200)}
    assert len(codes) == 200 and all(CODE.fullmatch(code) for code in codes)
    assert not set("".join(codes)) & set("ILOU")  # letters misread on a slip are never used
    code = "K7QM-3XW0-9TBA-HR21"
    for typed in ("k7qm3xw09tbahr21", " K7QM 3XWO 9TBA HR2l ", "k7qm-3xwo-9tba-hr2i"):
        assert tokens.digest(typed) == tokens.digest(code)
    assert tokens.canonical("K7QM-3XW0-9TBA") is None and tokens.canonical("K7QM-3XW0-9TBA-HR2U") is None
