"""Ray is an optional extra: the runtime and the single-process bridge never import it."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["runtime", "engine_bridge"])
def test_the_runtime_and_the_bridge_never_import_ray(module):
    code = (f"import sys, {module}, engine_bridge.server, engine_bridge.serve_cli, engine_bridge.client, "
            "runtime.engine, runtime.story; assert 'ray' not in sys.modules, 'ray was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
