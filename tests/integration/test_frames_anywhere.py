"""Reports read anywhere: a capture says which folders were its interpreter's
(standard library, site-packages, memhound), and ``memhound report``/``diff``
judge "whose frame is this" from that, not from the interpreter that reads it.

A capture from "another interpreter" is made here by moving a real capture's
standard-library frames under a folder this interpreter does not have, and
saying so in the capture's meta, as that interpreter's program side would."""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

from memhound.analysis.frames import FrameRule, here
from memhound.snapshot import Frame
from test_capture import memhound
from test_run_cli import memhound_run

OTHER = "/opt/another-python/lib/python3.9"

PROGRAM = """\
import queue, time
keep = []
t = time.time()
while time.time() - t < 0.6:
    keep.append(queue.Queue())  # LEAK: every request keeps a Queue
    time.sleep(0.0002)
print("queues", len(keep) > 0)
"""


def _stdlib() -> str:
    return os.path.dirname(os.__file__)


def _move_stdlib(capture: Path) -> None:
    """Rewrite the capture as if another interpreter, installed elsewhere, had
    written it: its stdlib frames and its recorded folders move to OTHER."""
    db = sqlite3.connect(str(capture))
    with db:
        stdlib = _stdlib()
        for fid, file in db.execute("SELECT id, file FROM frame").fetchall():
            if file.startswith(stdlib + os.sep):
                db.execute("UPDATE frame SET file = ? WHERE id = ?", (OTHER + file[len(stdlib):], fid))
        for pid, meta in db.execute("SELECT pid, meta FROM process").fetchall():
            doc = json.loads(meta)
            doc["prefixes"]["stdlib"] = [OTHER]
            db.execute("UPDATE process SET meta = ? WHERE pid = ?", (json.dumps(doc), pid))
    db.close()


def test_the_capture_records_its_interpreters_folders(tmp_path):
    prog = tmp_path / "queues.py"
    prog.write_text(PROGRAM)
    proc = memhound_run("-q", "-o", "q.db", str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    db = sqlite3.connect(str(tmp_path / "q.db"))
    meta = json.loads(db.execute("SELECT meta FROM process").fetchone()[0])
    db.close()
    assert os.path.normpath(meta["prefixes"]["stdlib"][0]) == os.path.normpath(_stdlib())
    assert any(os.path.isdir(d) for d in meta["prefixes"]["site"])
    assert meta["executable"] == sys.executable


def test_report_of_another_interpreters_capture_blames_the_programs_line(tmp_path):
    prog = tmp_path / "queues.py"
    prog.write_text(PROGRAM)
    proc = memhound_run("-q", "-o", "q.db", str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    _move_stdlib(tmp_path / "q.db")
    out = tmp_path / "r.json"
    proc = memhound("report", "-q", "--json", str(out), "q.db", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(out.read_text())
    assert report["verdict"]["leaking"] is True
    sites = [(leak["site"]["file"], leak["site"]["line"]) for leak in report["leaks"]]
    # Every leak is blamed on the program's line, none on the moved stdlib
    # (which this interpreter, reading the capture, would take for user code).
    assert sites and all(f == str(prog) and line == 5 for f, line in sites), sites
    assert any(f["file"].startswith(OTHER) for f in report["leaks"][0]["stack"])


def test_the_rule_follows_the_folders_it_is_given():
    rule = FrameRule({"stdlib": [OTHER], "site": ["/srv/env/site-packages"], "memhound": []})
    assert not rule.is_user_file(OTHER + "/threading.py")
    assert not rule.is_user_file("/srv/env/site-packages/pandas/core/frame.py")
    assert rule.is_user_file("/home/me/job.py")
    assert not rule.is_user_file("<frozen importlib._bootstrap>")
    # This interpreter's own rule takes its own stdlib for library code, and
    # the other interpreter's for user code: the reason a capture carries its own.
    assert not here().is_user_file(os.path.join(_stdlib(), "threading.py"))
    assert here().is_user_file(OTHER + "/threading.py")
    stack = [Frame(OTHER + "/threading.py", 297, "Condition.__init__"), Frame("/home/me/job.py", 5, "<module>")]
    assert rule.user_site(stack) == stack[1]


def test_diff_matches_sites_by_line_whatever_the_function_names(tmp_path):
    """3.10 names functions without their class: a diff between captures of
    two interpreters must not show every such site as gone and new."""
    prog = tmp_path / "job.py"
    prog.write_text("kept = []\n"
                    "class Loader:\n"
                    "    def load(self, n):\n"
                    "        for _ in range(n): kept.append(bytearray(3000))  # LOAD\n"
                    "import sys\n"
                    "Loader().load(int(sys.argv[1]))\n")
    for side, n in (("a", "300"), ("b", "1500")):
        proc = memhound_run("-q", "--exact", "-o", f"{side}.db", str(prog), n, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
    db = sqlite3.connect(str(tmp_path / "a.db"))
    with db:
        db.execute("UPDATE frame SET function = 'load' WHERE function = 'Loader.load'")
    db.close()
    out = tmp_path / "diff.json"
    proc = memhound("diff", "--json", str(out), "a.db", "b.db", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(out.read_text())
    rows = [r for r in doc["sites"] if r["site"]["line"] == 4 and r["site"]["file"] == str(prog)]
    assert len(rows) == 1, rows
    assert rows[0]["status"] == "grew"
