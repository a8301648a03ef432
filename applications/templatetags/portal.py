"""Template helpers of the portal: the server-rendered expiry chart."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

CHART_WIDTH = 640
CHART_HEIGHT = 200
_PAD_LEFT, _PAD_BOTTOM, _PAD_TOP = 36, 28, 12


def _bars(buckets: list[dict[str, Any]], peak: int) -> list[tuple[Any, ...]]:
    plot_h = CHART_HEIGHT - _PAD_BOTTOM - _PAD_TOP
    slot = (CHART_WIDTH - _PAD_LEFT) / max(len(buckets), 1)
    rows = []
    for i, bucket in enumerate(buckets):
        height = round(plot_h * bucket["count"] / peak) if peak else 0
        x = round(_PAD_LEFT + i * slot + slot * 0.15, 1)
        y = CHART_HEIGHT - _PAD_BOTTOM - height
        label = f"{bucket['start']:%b %d}"
        title = f"{bucket['count']} expiring {bucket['start']:%Y-%m-%d} to {bucket['end']:%Y-%m-%d}"
        rows.append((x, y, round(slot * 0.7, 1), height, title, x + slot * 0.35,
                     CHART_HEIGHT - 10, label, y - 3, bucket["count"]))  # fmt: skip
    return rows


@register.simple_tag
def expiry_chart(buckets: list[dict[str, Any]], labelled_by: str) -> SafeString:
    """A bar chart (SVG, no JavaScript) of active certificates expiring per bucket."""
    peak = max((b["count"] for b in buckets), default=0)
    total = sum(b["count"] for b in buckets)
    bars = format_html_join(
        "\n",
        '<g><title>{}</title><rect x="{}" y="{}" width="{}" height="{}" class="bar"></rect>'
        '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>'
        '<text x="{}" y="{}" class="value" text-anchor="middle">{}</text></g>',
        (
            (title, x, y, w, h, lx, ly, label, lx, vy, count)
            for x, y, w, h, title, lx, ly, label, vy, count in _bars(buckets, peak)
        ),
    )
    baseline = CHART_HEIGHT - _PAD_BOTTOM
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}" '
        'aria-describedby="chart-desc" xmlns="http://www.w3.org/2000/svg">'
        '<desc id="chart-desc">{} active certificates expire in this period; '
        "the tallest week has {}.</desc>"
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="baseline"></line>{}</svg>',
        CHART_WIDTH, CHART_HEIGHT, labelled_by, total, peak,
        _PAD_LEFT, baseline, CHART_WIDTH, baseline, bars,
    )  # fmt: skip
