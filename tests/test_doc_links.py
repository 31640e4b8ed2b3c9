"""Every relative link and image in the repository's Markdown documents resolves: the file
exists and, for a link into a Markdown file, so does the #anchor (GitHub's heading slugs)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.working_tree import tracked_files

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", flags=re.S)


def documents() -> list[Path]:
    """The Markdown files git tracks: a user's own notes (or a run's pages) are not the project's."""
    return tracked_files("*.md", ROOT)


def heading_slugs(md: Path) -> set[str]:
    """GitHub's anchors: lower case, punctuation dropped, spaces as '-', repeats numbered."""
    slugs, seen = set(), {}
    for line in FENCE.sub("", md.read_text(encoding="utf-8")).splitlines():
        if not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def broken_links(md: Path) -> list[str]:
    broken = []
    for target in LINK.findall(FENCE.sub("", md.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = md.parent / path if path else md
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in heading_slugs(dest):
            broken.append(f"{target} (no such heading)")
    return broken


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "b.md").write_text("# Present heading\n")
    doc = tmp_path / "a.md"
    doc.write_text("[ok](b.md#present-heading) [gone](c.md) [nohead](b.md#absent) [web](https://x.org/y)\n"
                   "```\n[in code](nowhere.md)\n```\n")
    assert broken_links(doc) == ["c.md (no such file)", "b.md#absent (no such heading)"]


@pytest.mark.parametrize("md", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(md):
    assert broken_links(md) == []
