"""docs/bridge.md: its 20-line Python client runs as written against a real server."""
from __future__ import annotations

import re
from pathlib import Path

from engine_bridge.testing import running_server

DOC = Path(__file__).resolve().parents[1] / "docs" / "bridge.md"


def test_the_twenty_line_client_runs_against_a_real_server(ort_engine, capsys):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 20
    with running_server(ort_engine) as server:
        exec(compile(code.replace("127.0.0.1:50051", server.target), str(DOC), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 21 + 9  # two shots: 2 chunks and 1 chunk
    assert printed[0] == "shot 1 frame 0 at 0.00 s" and printed[-1] == "shot 2 frame 8 at 1.81 s"
