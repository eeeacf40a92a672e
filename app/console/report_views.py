"""What the Báo cáo page shows: the compliance report (app.reports.service, as the API's),
its monthly airtime chart drawn here as SVG from the same figures as the PDF's
(app.reports.chart), and the words for each month's result."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from app.console.i18n import N_, _, format_number
from app.reports.chart import AirtimeChart
from app.reports.schemas import ComplianceReport

# The report's month results (app.reports.schemas.MonthResult), in words and symbols.
RESULTS: dict[str, tuple[str, str, str]] = {
    "compliant": (N_("Đạt"), "✓", "good"),
    "not-aired": (N_("Không phát"), "✗", "bad"),
    "interrupted": (N_("Bị ngắt"), "✗", "bad"),
    "too-short": (N_("Thiếu thời lượng"), "↓", "bad"),
    "too-long": (N_("Vượt thời lượng"), "↑", "bad"),
    "aired-too-often": (N_("Phát quá số lần"), "!", "warn"),
    "too-few": (N_("Phát chưa đủ số lần"), "!", "warn"),
    "pending": (N_("Chưa đến hạn"), "○", "neutral"),
    # ip stations: aired at the station, but not heard in every village in service.
    "villages-missing": (N_("Chưa phát đủ các thôn"), "✗", "bad"),
}

# The chart's canvas (SVG user units); it scales to the page's width.
WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 34, 34, 30, 26


def optional_fields(report: ComplianceReport) -> dict[str, Any]:
    """Reach fields a newer report may carry (villages in service, villages aired)."""
    found: dict[str, Any] = {}
    for name in ("villages_in_service", "villages_aired"):
        for owner in (report, report.summary):
            value = getattr(owner, name, None)
            if value is not None:
                found[name] = value
    return found


def chart_svg(figure: AirtimeChart) -> Markup:
    """The chart as inline SVG: bars coloured by result over the window's band, labelled."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x0, y_base = LEFT, TOP + plot_h

    def y(value: float) -> float:
        return round(y_base - plot_h * value / figure.top, 1)

    n = max(len(figure.bars), 1)
    slot = plot_w / n
    bar_w = min(slot * 0.55, plot_w / 24)
    low_txt, high_txt = format_number(figure.low, 0), format_number(figure.high, 0)
    label = _(
        "Biểu đồ thời lượng chuyên mục CCHC đã phát theo tháng (phút), so với khung "
        "%(low)s–%(high)s phút"
    ) % {"low": low_txt, "high": high_txt}
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title"><title id="chart-title">{escape(label)}</title>',
        f'<rect class="c-band" x="{x0}" y="{y(figure.high)}" width="{plot_w}" '
        f'height="{round(y(figure.low) - y(figure.high), 1)}"/>',
    ]
    for tick in figure.ticks:
        parts.append(
            f'<line class="grid" x1="{x0}" x2="{x0 + plot_w}" y1="{y(tick)}" y2="{y(tick)}"/>'
            f'<text x="{x0 - 6}" y="{y(tick) + 4}" text-anchor="end">{tick}</text>'
        )
    for value, text in ((figure.low, low_txt), (figure.high, high_txt)):
        parts.append(
            f'<line class="edge" x1="{x0}" x2="{x0 + plot_w}" y1="{y(value)}" y2="{y(value)}"/>'
            f'<text class="edge-label" x="{x0 + plot_w + 4}" y="{y(value) + 4}">{text}′</text>'
        )
    for i, bar in enumerate(figure.bars):
        cx = x0 + slot * (i + 0.5)
        top = y(bar.minutes)
        if bar.pending:
            word, cls = _("chưa đến hạn"), "bar-pending"
        else:
            word, cls = (_("đạt"), "bar-ok") if bar.compliant else (_("chưa đạt"), "bar-bad")
        parts.append(
            f'<rect class="{cls}" '
            f'x="{round(cx - bar_w / 2, 1)}" y="{top}" width="{round(bar_w, 1)}" '
            f'height="{round(y_base - top, 1)}"><title>{escape(bar.label)}: '
            f"{format_number(bar.minutes, 1)} {escape(_('phút'))}, {escape(word)}</title></rect>"
            f'<text x="{round(cx, 1)}" y="{HEIGHT - 8}" text-anchor="middle">{bar.label}</text>'
        )
        if bar.minutes:  # hidden on a phone, where they would overlap (the table has them)
            parts.append(
                f'<text class="value" x="{round(cx, 1)}" y="{top - 4}" text-anchor="middle">'
                f"{format_number(bar.minutes, 1)}</text>"
            )
    parts.append(f'<text x="2" y="{TOP - 10}">{escape(_("phút"))}</text></svg>')
    return Markup("".join(parts))


def chart_legend(figure: AirtimeChart) -> list[tuple[str, str]]:
    """(CSS class of the swatch, words) for each colour of the chart. In the page, not in
    the SVG: text in the SVG shrinks with it on a phone, the page's text wraps instead."""
    window = {"low": format_number(figure.low, 0), "high": format_number(figure.high, 0)}
    legend = [
        ("c-band", _("khung %(low)s–%(high)s phút") % window),
        ("bar-ok", _("đạt")),
        ("bar-bad", _("chưa đạt")),
    ]
    if any(b.pending for b in figure.bars):
        legend.append(("bar-pending", _("chưa đến hạn")))
    return legend
