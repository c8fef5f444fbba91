"""The documentation: the site builds in strict mode with every page in its navigation and every
link and anchor resolving, and the README stays the front door, short, its links landing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import REPO

MKDOCS = REPO / ".tools" / "docs" / "bin" / "mkdocs"
README_LIMIT = 250
# Relative Markdown links: [text](path#anchor), http(s) and mailto left out.
LINK = re.compile(r"\]\((?!https?:|mailto:)([^)#\s]+)?(?:#([^)\s]+))?\)")


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    assert MKDOCS.exists(), f"{MKDOCS} is missing: run `make setup`"
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("site")
    result = build(REPO / "mkdocs.yml", built)
    assert result.returncode == 0, result.stderr
    return built


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def page_of(site: Path, doc: str) -> Path:
    stem = Path(doc).with_suffix("")
    return site / ("index.html" if stem.name == "index" else f"{stem}/index.html")


def test_every_page_is_built(site: Path) -> None:
    pages = sorted(path.name for path in (REPO / "docs").glob("*.md"))

    assert len(pages) >= 10
    for page in pages:
        assert page_of(site, page).exists(), page


def test_a_broken_anchor_fails_the_build(docs_copy: Path) -> None:
    page = docs_copy / "docs" / "remediation.md"
    page.write_text(page.read_text() + "\nSee [the policy](policy.md#no-such-section).\n")

    result = build(docs_copy / "mkdocs.yml", docs_copy / "site")

    assert result.returncode != 0
    assert "no-such-section" in result.stderr


def test_a_page_left_out_of_the_navigation_fails_the_build(docs_copy: Path) -> None:
    (docs_copy / "docs" / "orphan.md").write_text("# Orphan\n\nReachable from nowhere.\n")

    result = build(docs_copy / "mkdocs.yml", docs_copy / "site")

    assert result.returncode != 0
    assert "orphan.md" in result.stderr


def test_the_readme_is_short_and_its_links_into_the_docs_land(site: Path) -> None:
    readme = (REPO / "README.md").read_text()
    links = LINK.findall(readme)

    assert len(readme.splitlines()) < README_LIMIT
    into_docs = [(path, anchor) for path, anchor in links if path.startswith("docs/")]
    assert len(into_docs) >= 10
    for path, anchor in links:
        if not path:
            continue
        assert (REPO / path).exists(), path
        if path.startswith("docs/") and anchor:
            ids = _Ids()
            ids.feed(page_of(site, path.removeprefix("docs/")).read_text())
            assert anchor in ids.ids, f"{path}#{anchor}"
