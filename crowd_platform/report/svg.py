"""Inline SVG charts for the event report, generated in plain Python (no plotting library, no scripts).

Each function returns one `<svg>` element with a title, axes, ticks, unit labels and a legend. Sizes are
in a fixed coordinate system (viewBox) and the page scales them to the available width. Colours are
the Okabe-Ito palette (series) and ColorBrewer YlGnBu (map classes), both safe for colour-blind readers.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MAP_CLASSES = ["#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494"]
SUPPRESSED_FILL = "#b0b0b0"
NO_DATA_FILL = "#ffffff"
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
WIDTH = 900
DASH = "\u2013"  # en dash, for ranges
MINUS = "\u2212"  # the typographic minus sign, for negative figures
_ids = itertools.count(1)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def fmt_int(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def with_minus(text: str) -> str:
    """A formatted number with its hyphen-minus replaced by the typographic minus."""
    return text.replace("-", MINUS)


def fmt_signed(value: float | None) -> str:
    """A signed whole number (+1,200 or \u22121,200), for uplifts; empty for None."""
    return "" if value is None else with_minus(f"{value:+,.0f}")


def fmt_compact(value: float) -> str:
    """Axis labels: 950, 12k, 1.5M."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.0f}" if magnitude >= 10 or value == int(value) else f"{value:.2g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        if value >= high:
            break
        value += step
    return ticks


@dataclass
class Frame:
    """A plot area inside the SVG and its linear scales."""

    x0: float
    x1: float
    y0: float
    y1: float
    left: float = 78
    right: float = WIDTH - 24
    top: float = 70
    bottom: float = 300

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1
        return self.left + (value - self.x0) / span * (self.right - self.left)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1
        return self.bottom - (value - self.y0) / span * (self.bottom - self.top)


def _open(height: float, title: str, subtitle: str = "") -> tuple[str, list[str]]:
    chart_id = f"chart{next(_ids)}"
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-labelledby="{chart_id}-title" class="chart">',
        f'<title id="{chart_id}-title">{esc(title)}</title>',
        f'<text x="0" y="20" class="chart-title">{esc(title)}</text>',
    ]
    if subtitle:
        parts.append(f'<text x="0" y="40" class="chart-subtitle">{esc(subtitle)}</text>')
    return chart_id, parts


def _close(parts: list[str]) -> str:
    return "\n".join([*parts, "</svg>"])


def _legend_y(subtitle: str) -> int:
    """The legend row under the title, lower when a subtitle takes the line below it."""
    return 58 if subtitle else 44


def _hatch_pattern(chart_id: str) -> str:
    """The diagonal hatching of suppressed cells and bins (one pattern per chart; ids are page-wide)."""
    return (
        f'<defs><pattern id="{chart_id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eeeeee"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{SUPPRESSED_FILL}" stroke-width="3"/></pattern></defs>'
    )


def _hatch_swatch(chart_id: str) -> str:
    return f'<rect x="0" y="-6" width="22" height="12" fill="url(#{chart_id}-hatch)"/>'


def _y_axis(parts: list[str], frame: Frame, ticks: Sequence[float], label: str, fmt=fmt_compact) -> None:
    for tick in ticks:
        y = frame.y(tick)
        parts.append(f'<line x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{frame.left - 8}" y="{y + 4:.1f}" class="tick" text-anchor="end">{esc(fmt(tick))}</text>'
        )
    mid = (frame.top + frame.bottom) / 2
    parts.append(
        f'<text transform="translate(14 {mid:.0f}) rotate(-90)" class="axis-label" text-anchor="middle">'
        f"{esc(label)}</text>"
    )


def _x_axis(parts: list[str], frame: Frame, ticks: Sequence[tuple[float, str]], label: str) -> None:
    parts.append(
        f'<line x1="{frame.left}" x2="{frame.right}" y1="{frame.bottom}" y2="{frame.bottom}" stroke="{MUTED}"/>'
    )
    for value, text in ticks:
        x = frame.x(value)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.bottom}" y2="{frame.bottom + 5}" stroke="{MUTED}"/>')
        parts.append(f'<text x="{x:.1f}" y="{frame.bottom + 19}" class="tick" text-anchor="middle">{esc(text)}</text>')
    centre = (frame.left + frame.right) / 2
    parts.append(
        f'<text x="{centre:.0f}" y="{frame.bottom + 40}" class="axis-label" text-anchor="middle">{esc(label)}</text>'
    )


def _legend(parts: list[str], y: float, entries: Sequence[tuple[str, str]], x: float = 78) -> None:
    """A legend row: entries are (swatch SVG drawn at 0..22 x -6..6, label)."""
    for swatch, label in entries:
        parts.append(
            f'<g transform="translate({x:.0f} {y:.0f})">{swatch}'
            f'<text x="28" y="4" class="legend">{esc(label)}</text></g>'
        )
        x += 46 + 7.4 * len(label)


def line_swatch(colour: str) -> str:
    return f'<line x1="0" x2="22" y1="0" y2="0" stroke="{colour}" stroke-width="2.5"/>'


def box_swatch(colour: str, opacity: float = 1.0, stroke: str = "none") -> str:
    return f'<rect x="0" y="-6" width="22" height="12" fill="{colour}" fill-opacity="{opacity}" stroke="{stroke}"/>'


@dataclass
class Point:
    x: float
    y: float | None  # None: suppressed or missing
    low: float | None = None
    high: float | None = None
    suppressed: bool = False
    label: str = ""  # tooltip text


@dataclass
class Series:
    name: str
    points: list[Point]
    colour: str = ""


@dataclass
class Span:
    """A shaded stretch of the x axis (for example the baseline weeks)."""

    x0: float
    x1: float
    label: str
    fill: str = "#eef1f4"


@dataclass
class LineChart:
    title: str
    series: list[Series]
    x_ticks: list[tuple[float, str]]
    x_label: str
    y_label: str
    subtitle: str = ""
    spans: list[Span] = field(default_factory=list)
    x_range: tuple[float, float] | None = None
    interval_label: str = "95 % interval"


def _runs(points: Sequence[Point], ok: Callable[[Point], bool]) -> list[list[Point]]:
    runs: list[list[Point]] = [[]]
    for point in points:
        if ok(point):
            runs[-1].append(point)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def line_chart(chart: LineChart) -> str:
    height = 360
    _, parts = _open(height, chart.title, chart.subtitle)
    points = [p for s in chart.series for p in s.points]
    xs = [p.x for p in points] or [0.0, 1.0]
    top = max([p.high or 0 for p in points] + [p.y or 0 for p in points] + [1])
    ticks = nice_ticks(0, top)
    x0, x1 = chart.x_range or (min(xs), max(xs))
    frame = Frame(x0, x1, 0, ticks[-1], top=84)
    for span in chart.spans:
        left, right = frame.x(max(span.x0, x0)), frame.x(min(span.x1, x1))
        parts.append(
            f'<rect x="{left:.1f}" y="{frame.top}" width="{right - left:.1f}" '
            f'height="{frame.bottom - frame.top}" fill="{span.fill}"/>'
        )
        parts.append(
            f'<text x="{(left + right) / 2:.1f}" y="{frame.top + 14}" class="span-label" '
            f'text-anchor="middle">{esc(span.label)}</text>'
        )
    _y_axis(parts, frame, ticks, chart.y_label)
    _x_axis(parts, frame, chart.x_ticks, chart.x_label)
    has_band = has_suppressed = False
    for index, series in enumerate(chart.series):
        colour = series.colour or PALETTE[index % len(PALETTE)]
        for run in _runs(series.points, lambda p: p.low is not None and p.high is not None):
            has_band = True
            upper = " ".join(f"{frame.x(p.x):.1f},{frame.y(p.high):.1f}" for p in run)
            lower = " ".join(f"{frame.x(p.x):.1f},{frame.y(p.low):.1f}" for p in reversed(run))
            parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.18" stroke="none"/>')
        for run in _runs(series.points, lambda p: p.y is not None):
            path = " ".join(f"{frame.x(p.x):.1f},{frame.y(p.y):.1f}" for p in run)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.2" stroke-linejoin="round"/>'
            )
        for p in series.points:
            if p.y is not None:
                parts.append(
                    f'<circle cx="{frame.x(p.x):.1f}" cy="{frame.y(p.y):.1f}" r="2.6" fill="{colour}">'
                    f"<title>{esc(p.label)}</title></circle>"
                )
            elif p.suppressed:
                has_suppressed = True
                parts.append(
                    f'<circle cx="{frame.x(p.x):.1f}" cy="{frame.bottom - 4 - 7 * index}" r="3" fill="white" '
                    f'stroke="{colour}" stroke-width="1.4"><title>{esc(p.label)}</title></circle>'
                )
    entries = [(line_swatch(s.colour or PALETTE[i % len(PALETTE)]), s.name) for i, s in enumerate(chart.series)]
    if has_band:
        entries.append((box_swatch(MUTED, 0.25), chart.interval_label))
    if has_suppressed:
        entries.append(
            (
                f'<circle cx="11" cy="0" r="3.5" fill="white" stroke="{MUTED}" stroke-width="1.4"/>',
                "suppressed (under k devices)",
            )
        )
    _legend(parts, _legend_y(chart.subtitle), entries)
    return _close(parts)


@dataclass
class Bar:
    label: str
    value: float | None  # None: suppressed
    low: float | None = None
    high: float | None = None
    tooltip: str = ""


def bar_chart(title: str, bars: Sequence[Bar], value_label: str, subtitle: str = "", colour: str = PALETTE[0],
              fmt: Callable[[float | None], str] = fmt_int) -> str:  # fmt: skip
    """Horizontal bars, largest first as given, with the value (and interval, if any) at each bar.

    Values below zero (an uplift under the baseline) draw to the left of a zero line.
    """
    row, label_width = 24, min(260, 40 + 7.0 * max([len(b.label) for b in bars] + [4]))
    height = 70 + row * max(len(bars), 1) + 50
    _, parts = _open(height, title, subtitle)
    top = max([b.high or b.value or 0 for b in bars] + [1])
    bottom = min([b.low if b.low is not None else (b.value or 0) for b in bars] + [0])
    ticks = nice_ticks(bottom, top)
    frame = Frame(ticks[0], ticks[-1], 0, 1, left=label_width, right=WIDTH - 90, top=56, bottom=56 + row * len(bars))
    for tick in ticks:
        x = frame.x(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{frame.bottom}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{frame.bottom + 18}" class="tick" text-anchor="middle">'
            f"{esc(fmt_compact(tick))}</text>"
        )
    parts.append(
        f'<text x="{(frame.left + frame.right) / 2:.0f}" y="{frame.bottom + 40}" class="axis-label" '
        f'text-anchor="middle">{esc(value_label)}</text>'
    )
    zero = frame.x(0)
    for index, bar in enumerate(bars):
        y = frame.top + index * row
        parts.append(
            f'<text x="{frame.left - 8}" y="{y + row / 2 + 4:.1f}" class="tick" text-anchor="end">'
            f"{esc(bar.label)}</text>"
        )
        if bar.value is None:
            parts.append(f'<text x="{zero + 6:.1f}" y="{y + row / 2 + 4:.1f}" class="note">suppressed</text>')
            continue
        end = frame.x(bar.value)
        parts.append(
            f'<rect x="{min(zero, end):.1f}" y="{y + 4}" width="{max(abs(end - zero), 1):.1f}" height="{row - 8}" '
            f'fill="{colour}"><title>{esc(bar.tooltip or bar.label)}</title></rect>'
        )
        text_at = max(end, zero)
        if bar.low is not None and bar.high is not None:
            lo, hi, mid = frame.x(bar.low), frame.x(bar.high), y + row / 2
            parts.append(
                f'<path d="M{lo:.1f},{mid - 5:.1f}v10M{lo:.1f},{mid:.1f}H{hi:.1f}M{hi:.1f},{mid - 5:.1f}v10" '
                f'stroke="{INK}" stroke-width="1.3" fill="none"/>'
            )
            text_at = max(hi, zero)
        parts.append(
            f'<text x="{text_at + 6:.1f}" y="{y + row / 2 + 4:.1f}" class="value">{esc(fmt(bar.value))}</text>'
        )
    parts.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{frame.top}" y2="{frame.bottom}" stroke="{MUTED}"/>')
    return _close(parts)


@dataclass
class MatrixCell:
    value: float | None  # None: suppressed or nobody
    shade: float | None = None  # 0..1, the colour (share of the row's visitors)
    text: str = ""
    tooltip: str = ""
    suppressed: bool = False


def matrix_chart(title: str, labels: Sequence[str], cells: dict[tuple[int, int], MatrixCell], subtitle: str = "",
                 shade_label: str = "", diagonal_label: str = "") -> str:  # fmt: skip
    """A square matrix of zones: cell (row, column) coloured by its shade, its text inside; the diagonal in
    grey (it holds the row's own total); hatched cells are suppressed, empty ones had nobody."""
    n = max(len(labels), 1)
    label_width = min(230, 30 + 7.0 * max([len(label) for label in labels] + [4]))
    size = min(78.0, (WIDTH - label_width - 20) / n)
    top = 150.0
    height = top + size * n + 90
    chart_id, parts = _open(height, title, subtitle)
    parts.append(_hatch_pattern(chart_id))
    for j, label in enumerate(labels):  # column labels, slanted
        x = label_width + (j + 0.5) * size
        parts.append(f'<text transform="translate({x:.1f} {top - 8:.0f}) rotate(-35)" class="tick">{esc(label)}</text>')
    for i, label in enumerate(labels):
        y = top + i * size
        parts.append(
            f'<text x="{label_width - 8:.0f}" y="{y + size / 2 + 4:.1f}" class="tick" text-anchor="end">'
            f"{esc(label)}</text>"
        )
        for j in range(len(labels)):
            x = label_width + j * size
            cell = cells.get((i, j))
            box = f'x="{x + 1:.1f}" y="{y + 1:.1f}" width="{size - 2:.1f}" height="{size - 2:.1f}"'
            if cell is None:
                parts.append(f'<rect {box} fill="{NO_DATA_FILL}" stroke="{GRID}"/>')
                continue
            if cell.suppressed:
                fill, ink = f"url(#{chart_id}-hatch)", INK
            elif i == j:
                fill, ink = MUTED, "#ffffff"
            else:
                shade = min(max(cell.shade or 0.0, 0.0), 1.0)
                index = min(int(shade * len(MAP_CLASSES)), len(MAP_CLASSES) - 1)
                fill, ink = MAP_CLASSES[index], ("#ffffff" if index >= 3 else INK)
            parts.append(f'<rect {box} fill="{fill}" stroke="{GRID}"><title>{esc(cell.tooltip)}</title></rect>')
            if cell.text:
                parts.append(
                    f'<text x="{x + size / 2:.1f}" y="{y + size / 2 + 4:.1f}" class="value" text-anchor="middle" '
                    f'style="fill:{ink}">{esc(cell.text)}</text>'
                )
    legend_y = top + size * n + 34
    entries = [
        (box_swatch(colour), f"{i * 100 // len(MAP_CLASSES)}{DASH}{(i + 1) * 100 // len(MAP_CLASSES)} %")
        for i, colour in enumerate(MAP_CLASSES)
    ]
    parts.append(f'<text x="0" y="{legend_y - 16:.0f}" class="legend-title">{esc(shade_label)}</text>')
    _legend(parts, legend_y, entries, x=0)
    extra = [(box_swatch(MUTED), diagonal_label)] if diagonal_label else []
    extra.append((_hatch_swatch(chart_id), "suppressed"))
    _legend(parts, legend_y + 24, extra, x=0)
    return _close(parts)


def histogram(
    title: str,
    bins: Sequence[Bar],
    x_label: str,
    y_label: str,
    subtitle: str = "",
    x_ticks: Sequence[tuple[float, str]] | None = None,
) -> str:
    """Vertical bars for consecutive bins; a suppressed bin shows a hatched marker instead of a bar.

    `x_ticks` are (position in bins, label), for example at bin edges; by default each bin's centre.
    """
    chart_id, parts = _open(350, title, subtitle)
    ticks = nice_ticks(0, max([b.value or 0 for b in bins] + [1]))
    frame = Frame(0, max(len(bins), 1), 0, ticks[-1], top=80, bottom=280)
    parts.append(_hatch_pattern(chart_id))
    _y_axis(parts, frame, ticks, y_label)
    _x_axis(parts, frame, x_ticks or [(i + 0.5, b.label) for i, b in enumerate(bins)], x_label)
    any_suppressed = False
    for index, bin_ in enumerate(bins):
        left, right = frame.x(index) + 2, frame.x(index + 1) - 2
        if bin_.value is None:
            any_suppressed = True
            parts.append(
                f'<rect x="{left:.1f}" y="{frame.bottom - 24}" width="{right - left:.1f}" height="24" '
                f'fill="url(#{chart_id}-hatch)"><title>{esc(bin_.label)}: suppressed</title></rect>'
            )
            continue
        top = frame.y(bin_.value)
        parts.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{frame.bottom - top:.1f}" '
            f'fill="{PALETTE[0]}"><title>{esc(bin_.tooltip or bin_.label)}</title></rect>'
        )
    entries = [(box_swatch(PALETTE[0]), "visits in the bin")]
    if any_suppressed:
        entries.append(
            (
                _hatch_swatch(chart_id),
                "suppressed (under k devices, or protecting another suppressed bin)",
            )
        )
    _legend(parts, _legend_y(subtitle), entries)
    return _close(parts)


# --- the choropleth map ------------------------------------------------------------------------

Ring = list[tuple[float, float]]  # (lon, lat)


@dataclass
class Region:
    code: str
    name: str
    polygons: list[list[Ring]]  # polygons, each an outer ring and its holes
    value: float | None
    status: str  # published | suppressed | none
    highlight: bool = False


def geojson_polygons(geometry: dict) -> list[list[Ring]]:
    if geometry["type"] == "Polygon":
        return [[[(x, y) for x, y, *_ in ring] for ring in geometry["coordinates"]]]
    if geometry["type"] == "MultiPolygon":
        return [[[(x, y) for x, y, *_ in ring] for ring in polygon] for polygon in geometry["coordinates"]]
    return []


def class_breaks(values: Sequence[float], classes: int = len(MAP_CLASSES)) -> list[float]:
    """Class bounds on a log scale: powers of ten (or 1-2-5 steps over a narrow range), at most `classes`.

    Returns the bounds from the lowest class's floor to the highest class's ceiling.
    """
    positive = sorted(v for v in values if v is not None and v > 0)
    if not positive:
        return []
    low, high = math.floor(math.log10(positive[0])), math.ceil(math.log10(positive[-1]))
    high = max(high, low + 1)
    steps = (1, 2, 5) if high - low <= 2 else (1,)
    bounds = [m * 10.0**e for e in range(low, high) for m in steps] + [10.0**high]
    bounds = [b for i, b in enumerate(bounds) if i + 1 == len(bounds) or bounds[i + 1] > positive[0]]
    bounds = [b for i, b in enumerate(bounds) if i == 0 or bounds[i - 1] <= positive[-1]]
    while len(bounds) - 1 > classes:  # merge every other class
        bounds = bounds[::2] if bounds[-1] in bounds[::2] else [*bounds[::2], bounds[-1]]
    return bounds


def _class_of(value: float, bounds: Sequence[float]) -> int:
    return max(0, min(len(bounds) - 2, next((i - 1 for i, b in enumerate(bounds) if value < b), len(bounds) - 2)))


def _colour_for(region: Region, breaks: Sequence[float]) -> str:
    if region.status == "suppressed":
        return SUPPRESSED_FILL
    if region.status != "published" or region.value is None:
        return NO_DATA_FILL
    colours = _spread(max(len(breaks) - 1, 1))
    return colours[_class_of(region.value, breaks)]


def _spread(n: int) -> list[str]:
    """n colours from the sequential scale, spread from light to dark."""
    if n >= len(MAP_CLASSES):
        return MAP_CLASSES
    if n == 1:
        return [MAP_CLASSES[-2]]
    return [MAP_CLASSES[round(i * (len(MAP_CLASSES) - 1) / (n - 1))] for i in range(n)]


@dataclass
class Projection:
    """Equirectangular with x scaled by cos(mid latitude), fitted into a box."""

    lon0: float
    lat1: float  # the top edge
    scale: float
    kx: float
    dx: float = 0
    dy: float = 0

    @classmethod
    def fit(cls, bbox: tuple[float, float, float, float], box: tuple[float, float, float, float]) -> Projection:
        lon_min, lat_min, lon_max, lat_max = bbox
        left, top, width, height = box
        kx = math.cos(math.radians((lat_min + lat_max) / 2))
        scale = min(width / max((lon_max - lon_min) * kx, 1e-9), height / max(lat_max - lat_min, 1e-9))
        dx = left + (width - (lon_max - lon_min) * kx * scale) / 2
        dy = top + (height - (lat_max - lat_min) * scale) / 2
        return cls(lon_min, lat_max, scale, kx, dx, dy)

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return self.dx + (lon - self.lon0) * self.kx * self.scale, self.dy + (self.lat1 - lat) * self.scale


def _path(polygons: list[list[Ring]], project: Projection) -> str:
    out = []
    for polygon in polygons:
        for ring in polygon:
            coords, last = [], None
            for lon, lat in ring:
                x, y = project(lon, lat)
                point = (round(x, 1), round(y, 1))
                if point != last:
                    coords.append(f"{point[0]:g},{point[1]:g}")
                    last = point
            if len(coords) >= 3:
                out.append("M" + "L".join(coords) + "Z")
    return "".join(out)


def _bbox(regions: Sequence[Region]) -> tuple[float, float, float, float]:
    lons = [lon for r in regions for poly in r.polygons for ring in poly for lon, _ in ring]
    lats = [lat for r in regions for poly in r.polygons for ring in poly for _, lat in ring]
    return (min(lons), min(lats), max(lons), max(lats)) if lons else (11.0, 55.0, 24.0, 69.0)


def _intersects(region: Region, bbox: tuple[float, float, float, float]) -> bool:
    lo_x, lo_y, hi_x, hi_y = _bbox([region])
    return lo_x <= bbox[2] and hi_x >= bbox[0] and lo_y <= bbox[3] and hi_y >= bbox[1]


def _fit_aspect(bbox: tuple[float, float, float, float], width: float, height: float) -> tuple[float, ...]:
    """Widen the shorter side of a lon/lat box so that it fills a width x height box (after cos scaling)."""
    lo_x, lo_y, hi_x, hi_y = bbox
    kx = math.cos(math.radians((lo_y + hi_y) / 2))
    span_x, span_y = (hi_x - lo_x) * kx, hi_y - lo_y
    if span_x / span_y < width / height:
        grow = (span_y * width / height - span_x) / kx / 2
        return lo_x - grow, lo_y, hi_x + grow, hi_y
    grow = (span_x * height / width - span_y) / 2
    return lo_x, lo_y - grow, hi_x, hi_y + grow


def choropleth(title: str, regions: Sequence[Region], value_label: str, subtitle: str = "") -> str:
    """The whole country on the left, a zoom on the municipalities with most visitors, the legend on the right."""
    height = 700
    chart_id, parts = _open(height, title, subtitle)
    published = [r for r in regions if r.status == "published" and r.value is not None]
    bounds = class_breaks([r.value for r in published])

    def draw(project: Projection, subset: Sequence[Region], stroke_width: float) -> None:
        for region in sorted(subset, key=lambda r: r.highlight):  # the host's outline on top
            colour = _colour_for(region, bounds)
            value = {"published": fmt_int(region.value), "suppressed": "suppressed"}.get(region.status, "no visitors")
            stroke = INK if region.highlight else "#8a8f98"
            width = stroke_width * (3 if region.highlight else 1)
            parts.append(
                f'<path d="{_path(region.polygons, project)}" fill="{colour}" stroke="{stroke}" '
                f'stroke-width="{width}" fill-rule="evenodd"><title>{esc(region.name)}: {esc(value)}</title></path>'
            )

    overview_box = (0.0, 60.0, 290.0, height - 70.0)
    overview = Projection.fit(_bbox(regions), overview_box)
    draw(overview, regions, 0.35)
    parts.append('<text x="0" y="76" class="legend-title">Sweden</text>')
    # Zoom: the municipalities holding most of the published visitors, and the host municipality.
    ranked = sorted(published, key=lambda r: -(r.value or 0))
    core, running, total = [], 0.0, sum(r.value or 0 for r in ranked)
    for region in ranked:
        core.append(region)
        running += region.value or 0
        if running >= 0.9 * total and len(core) >= 5:
            break
    core += [r for r in regions if r.highlight and r not in core]
    if core:
        zoom_box = (320.0, 60.0, 360.0, height - 90.0)
        lo_x, lo_y, hi_x, hi_y = _bbox(core)
        pad_x, pad_y = max(0.25, (hi_x - lo_x) * 0.1), max(0.15, (hi_y - lo_y) * 0.1)
        zoom_bbox = _fit_aspect((lo_x - pad_x, lo_y - pad_y, hi_x + pad_x, hi_y + pad_y), *zoom_box[2:])
        project = Projection.fit(zoom_bbox, zoom_box)
        x_left, y_top = project(zoom_bbox[0], zoom_bbox[3])
        x_right, y_bottom = project(zoom_bbox[2], zoom_bbox[1])
        rect = f'x="{x_left:.1f}" y="{y_top:.1f}" width="{x_right - x_left:.1f}" height="{y_bottom - y_top:.1f}"'
        parts.append(f'<clipPath id="{chart_id}-zoom"><rect {rect}/></clipPath>')
        parts.append(f'<rect {rect} fill="#eef4f8"/><g clip-path="url(#{chart_id}-zoom)">')
        draw(project, [r for r in regions if _intersects(r, zoom_bbox)], 0.8)
        parts.append(f'</g><rect {rect} fill="none" stroke="{MUTED}"/>')
        parts.append(
            f'<text x="{x_left:.1f}" y="{y_bottom + 18:.1f}" class="note">Zoom: the municipalities with most visitors '
            "(dashed box on the left)</text>"
        )
        ox0, oy0 = overview(zoom_bbox[0], zoom_bbox[3])
        ox1, oy1 = overview(zoom_bbox[2], zoom_bbox[1])
        parts.append(
            f'<rect x="{ox0:.1f}" y="{oy0:.1f}" width="{ox1 - ox0:.1f}" height="{oy1 - oy0:.1f}" '
            f'fill="none" stroke="{INK}" stroke-dasharray="3 2"/>'
        )
    # Legend
    x, y = 696.0, 80.0
    parts.append(f'<text x="{x:.0f}" y="{y:.0f}" class="legend-title">{esc(value_label)}</text>')
    colours = _spread(max(len(bounds) - 1, 1))
    entries = (
        [(colour, f"{fmt_int(bounds[i])} {DASH} {fmt_int(bounds[i + 1])}") for i, colour in enumerate(colours)]
        if len(bounds) >= 2
        else []
    )
    entries += [(SUPPRESSED_FILL, "suppressed (< k devices)"), (NO_DATA_FILL, "no visitors observed")]
    for index, (colour, text) in enumerate(entries):
        row_y = y + 14 + index * 24
        parts.append(f'<rect x="{x:.0f}" y="{row_y:.0f}" width="24" height="16" fill="{colour}" stroke="#8a8f98"/>')
        parts.append(f'<text x="{x + 32:.0f}" y="{row_y + 12:.0f}" class="legend">{esc(text)}</text>')
    if any(r.highlight for r in regions):
        row_y = y + 14 + len(entries) * 24
        parts.append(
            f'<rect x="{x:.0f}" y="{row_y:.0f}" width="24" height="16" fill="none" stroke="{INK}" stroke-width="2.5"/>'
        )
        parts.append(f'<text x="{x + 32:.0f}" y="{row_y + 12:.0f}" class="legend">host municipality</text>')
    return _close(parts)
