"""The badge SVG: its words, its colours, escaped text, a width that fits."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from raibid_api.domain.badges import Badge, render_svg
from raibid_api.domain.jobs import JobStatus


class Parsed(HTMLParser):
    """The tags, attributes and texts of an SVG, entities decoded."""

    def __init__(self, svg: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self._in_text = False
        self.feed(svg)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_text = tag == "text"

    def handle_endtag(self, tag: str) -> None:
        self._in_text = False

    def handle_data(self, data: str) -> None:
        if self._in_text:
            self.texts.append(data)

    def svg(self) -> dict[str, str | None]:
        assert self.tags[0][0] == "svg"
        return self.tags[0][1]


@pytest.mark.parametrize(
    ("status", "word", "colour"),
    [(JobStatus.SUCCESS, "passing", "#2e7d32"), (JobStatus.FAILED, "failing", "#c62828"),
     (None, "unknown", "#6e6e6e")],
)  # fmt: skip
def test_each_outcome_has_its_word_and_colour(
    status: JobStatus | None, word: str, colour: str
) -> None:
    parsed = Parsed(render_svg(Badge("main", status, "j" if status else None)))
    assert parsed.texts == ["build", word]
    assert colour in [attrs.get("fill") for tag, attrs in parsed.tags if tag == "rect"]
    assert parsed.svg()["aria-label"] == f"build: {word} (main)"


def test_a_branch_name_cannot_break_out_of_the_markup() -> None:
    parsed = Parsed(render_svg(Badge('x"/><script>alert(1)</script>&', JobStatus.SUCCESS, "j")))
    assert "script" not in [tag for tag, _ in parsed.tags]
    assert parsed.svg()["aria-label"] == 'build: passing (x"/><script>alert(1)</script>&)'


def test_the_width_grows_with_the_message() -> None:
    widths = [
        int(Parsed(render_svg(Badge("main", status, None))).svg()["width"] or 0)
        for status in (JobStatus.FAILED, None)
    ]
    assert all(70 < width < 120 for width in widths)
    failing, unknown = widths
    assert unknown > failing  # "unknown" is the wider word
