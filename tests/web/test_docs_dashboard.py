"""Every endpoint of the dashboard's API is in docs/dashboard.md, and every image it shows
exists (docs that cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

from eventlens.config import Settings
from eventlens.web.app import create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "dashboard.md"


def test_every_dashboard_endpoint_is_documented(tmp_path: Path) -> None:
    app = create_app(Settings().with_data_dir(tmp_path))
    routes = [
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
        if "dashboards" in op.get("tags", [])
    ]
    text = DOC.read_text()
    missing = [f"{m} {p}" for m, p in routes if f"`{m} {p}`" not in text]
    assert len(routes) >= 12 and not missing, f"missing from docs/dashboard.md: {missing}"


def test_every_image_exists() -> None:
    text = DOC.read_text()
    images = re.findall(r"\]\((images/[^)]+)\)|src=\"(images/[^\"]+)\"", text)
    paths = [a or b for a, b in images]
    assert len(paths) >= 5
    assert [p for p in paths if not (DOC.parent / p).exists()] == []
