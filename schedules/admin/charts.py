"""Server-side SVG charts for the dashboard: no JavaScript, no CDN, works offline.

Every text that reaches the SVG goes through format_html (escaped).
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36  # margins for the axes' labels


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above value, so the axis labels are round."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _frame(*, label: str, y_max: float, unit: str, x_labels: list[str], body: SafeString) -> SafeString:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ticks = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d0d7de"/>'
        '<text x="{}" y="{}" text-anchor="end" font-size="10" fill="#57606a">{}</text>',
        (
            (LEFT, WIDTH - RIGHT, y, y, LEFT - 4, y + 3, f"{y_max * i / 4:g}{unit}")
            for i in range(5)
            for y in [round(TOP + plot_h - plot_h * i / 4, 1)]
        ),
    )
    step = plot_w / max(len(x_labels), 1)
    every = max(1, len(x_labels) // 8)  # at most ~8 labels under the axis
    x_text = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle" font-size="10" fill="#57606a">{}</text>',
        (
            (round(LEFT + step * (i + 0.5), 1), HEIGHT - BOTTOM + 14, text)
            for i, text in enumerate(x_labels)
            if i % every == 0 or i == len(x_labels) - 1
        ),
    )
    return format_html(
        '<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%" '
        'style="max-width:{}px" xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}{}{}</svg>',
        label, WIDTH, HEIGHT, WIDTH, label, ticks, body, x_text,
    )


def stacked_bars(*, label: str, labels: list[str], series: list[tuple[str, str, list[int]]]) -> SafeString:
    """series: [(name, colour, values per label)], stacked bottom-up in that order."""
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    y_max = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    bars = []
    for i, day in enumerate(labels):
        base = 0
        for name, colour, values in series:
            if values[i]:
                height = plot_h * values[i] / y_max
                y = TOP + plot_h - plot_h * base / y_max - height
                bars.append(format_html(
                    '<rect class="bar bar-{}" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}</title></rect>',
                    name, round(LEFT + step * i + step * 0.15, 1), round(y, 1), round(step * 0.7, 1),
                    round(height, 1), colour, day, values[i], name,
                ))
            base += values[i]
    return _frame(label=label, y_max=y_max, unit="", x_labels=labels, body=mark_safe("".join(bars)))


def lines(*, label: str, labels: list[str], series: list[tuple[str, str, list[float | None]]], unit: str = "") -> SafeString:
    """series: [(name, colour, values per label)]; None leaves a gap in the line."""
    values = [v for _, _, vs in series for v in vs if v is not None]
    y_max = _nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    parts = []
    for name, colour, points in series:
        segments, current = [], []
        for i, value in enumerate(points):
            if value is None:
                segments, current = segments + ([current] if current else []), []
                continue
            current.append((round(LEFT + step * (i + 0.5), 1), round(TOP + plot_h - plot_h * value / y_max, 1), i))
        if current:
            segments.append(current)
        for segment in segments:
            parts.append(format_html(
                '<polyline class="line line-{}" fill="none" stroke="{}" stroke-width="2" points="{}"/>',
                name, colour, " ".join(f"{x},{y}" for x, y, _ in segment),
            ))
            parts.extend(
                format_html('<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}: {} {}{}</title></circle>',
                            x, y, colour, labels[i], name, points[i], unit)
                for x, y, i in segment
            )
    return _frame(label=label, y_max=y_max, unit=unit, x_labels=labels, body=mark_safe("".join(parts)))


def legend(items: list[tuple[str, str]]) -> SafeString:
    return format_html_join(
        " ", '<span class="legend"><span style="display:inline-block;width:10px;height:10px;background:{}"></span> {}</span>',
        ((colour, name) for name, colour in items),
    )
