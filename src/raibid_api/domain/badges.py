"""Status badges: which outcome a branch shows, and the SVG that shows it (pure).

The SVG is a hand-written template in the flat style of shields.io: a grey label, a coloured
message, both escaped. Text widths are estimated from per-character advances of Verdana 11px (the
font the template names), which keeps the badge snug without a font library.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from raibid_api.domain.jobs import JobStatus


@dataclass(frozen=True, slots=True)
class Badge:
    """What a branch's badge shows.

    Attributes:
        branch: the branch it is about (asked for, or the repository's default branch).
        status: the outcome of the newest finished job of the branch (by creation time), or
            ``None`` when no job of it finished (yet, or within the records kept).
        job_id: that job.
    """

    branch: str
    status: JobStatus | None
    job_id: str | None


LABEL = "build"
# message and colour per outcome; no finished job: "unknown"
_LOOKS: dict[JobStatus | None, tuple[str, str]] = {
    JobStatus.SUCCESS: ("passing", "#2e7d32"),
    JobStatus.FAILED: ("failing", "#c62828"),
    None: ("unknown", "#6e6e6e"),
}
_NARROW = frozenset("fijlrt!|.,:;'()[] ")
_WIDE = frozenset("mwMW@%")


def _text_width(text: str) -> int:
    """The width of ``text`` in Verdana 11px, estimated (px)."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.9
        elif char in _WIDE:
            width += 10.5
        elif char.isupper() or char.isdigit():
            width += 7.6
        else:
            width += 6.9
    return round(width)


def render_svg(badge: Badge) -> str:
    """The badge as an SVG document (every text escaped)."""
    message, colour = _LOOKS.get(badge.status, _LOOKS[None])
    left = _text_width(LABEL) + 12
    right = _text_width(message) + 12
    total = left + right
    label_text = escape(LABEL)
    message_text = escape(message)
    title = escape(f"{LABEL}: {message} ({badge.branch})", {'"': "&quot;"})
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        '<g clip-path="url(#r)">'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14">{label_text}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{message_text}</text>'
        "</g></svg>"
    )
