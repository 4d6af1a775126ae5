"""The web pixel extension (`extensions/chorus-pixel`): its configuration, and its own Node tests.

The Node tests need `node` (20.6 or later) and the extension's `node_modules` (`npm ci` in the directory).
Without them they are skipped, or fail with `REQUIRE_NODE=1` (CI, `.ci/run`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any, NoReturn

import pytest

from shopify_app.browsing.keys import PIXEL_PATH

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extensions" / "chorus-pixel"
MINIMUM_NODE = (20, 6)  # module.register, for the resolve hook that puts the stub in place


def require_node() -> bool:
    return os.environ.get("REQUIRE_NODE") == "1"


def unavailable(reason: str) -> NoReturn:
    if require_node():
        pytest.fail(f"Node is required (REQUIRE_NODE=1) but {reason}", pytrace=False)
    where = EXTENSION.relative_to(ROOT)
    pytest.skip(f"web pixel tests skipped: {reason} (`npm ci` in {where}; REQUIRE_NODE=1 to fail)")


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        unavailable("no node executable on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    found = re.match(r"v(\d+)\.(\d+)", version.strip())
    if found is None or (int(found[1]), int(found[2])) < MINIMUM_NODE:
        unavailable(f"node {version.strip()} is older than {'.'.join(map(str, MINIMUM_NODE))}")
    if not (EXTENSION / "node_modules" / "@shopify" / "web-pixels-extension").is_dir():
        unavailable("the extension's node_modules are not installed")
    return node


def extension_toml() -> dict[str, Any]:
    with (EXTENSION / "shopify.extension.toml").open("rb") as file:
        return tomllib.load(file)


def test_extension_toml_declares_a_strict_web_pixel() -> None:
    config = extension_toml()
    assert config["type"] == "web_pixel_extension"
    assert config["runtime_context"] == "strict"
    assert config["customer_privacy"] == {
        "analytics": True,
        "marketing": True,
        "preferences": False,
        "sale_of_data": "enabled",
    }


def test_extension_settings_are_the_ones_chorus_sends() -> None:
    """`webPixelCreate` is refused unless its settings match this schema: `pixel_settings` fills exactly these."""
    settings = extension_toml()["settings"]
    assert settings["type"] == "object"
    assert set(settings["fields"]) == {"shopKey", "appUrl"}
    for field in settings["fields"].values():
        assert field["type"] == "single_line_text_field"
        assert field["name"]


def test_pixel_posts_to_the_servers_path() -> None:
    source = (EXTENSION / "src" / "index.js").read_text(encoding="utf-8")
    assert "from '@shopify/web-pixels-extension'" in source
    assert "register(pixel)" in source
    assert f"{PIXEL_PATH}${{encodeURIComponent(shopKey)}}" in source


def test_lock_file_pins_the_dependencies() -> None:
    package = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((EXTENSION / "package-lock.json").read_text(encoding="utf-8"))
    assert package["private"] is True
    assert package["type"] == "module"
    assert package["scripts"]["test"] == "node --test"
    assert lock["lockfileVersion"] == 3
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    installed = lock["packages"]["node_modules/@shopify/web-pixels-extension"]
    assert installed["integrity"].startswith("sha512-")


def test_node_tests_pass() -> None:
    node = node_binary()
    result = subprocess.run(
        [node, "--test"],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), result.stdout
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed is not None, result.stdout
    assert int(passed[1]) > 0, result.stdout
