"""The compliance report as a Vietnamese administrative report (Decree 30/2020/NĐ-CP layout).

National title and motto on the right, the issuing body and the number on the left, place
and date under the motto, the centred title, the body with its tables and chart, then the
recipients (Nơi nhận) on the left and the signature block on the right. Text is set in
DejaVu, embedded: the base-14 PDF fonts have no Vietnamese.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.durations import clock_format
from app.errors import ServiceUnavailable
from app.reports.chart import airtime_chart as chart_figures
from app.reports.formats import missing_vi, reach_vi, report_title
from app.reports.labels import RESULT_LABELS
from app.reports.schemas import ComplianceReport

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/local/share/fonts"),
)
# Serif first: it is closest to the Times New Roman that Decree 30 prescribes.
FAMILIES = (
    (
        "DejaVuSerif",
        (
            "DejaVuSerif.ttf",
            "DejaVuSerif-Bold.ttf",
            "DejaVuSerif-Italic.ttf",
            "DejaVuSerif-BoldItalic.ttf",
        ),
    ),
    (
        "DejaVuSans",
        (
            "DejaVuSans.ttf",
            "DejaVuSans-Bold.ttf",
            "DejaVuSans-Oblique.ttf",
            "DejaVuSans-BoldOblique.ttf",
        ),
    ),
)

LEFT_MARGIN, RIGHT_MARGIN = 30 * mm, 20 * mm
TOP_MARGIN, BOTTOM_MARGIN = 20 * mm, 20 * mm
FRAME_WIDTH = A4[0] - LEFT_MARGIN - RIGHT_MARGIN
HEADER_LEFT = 58 * mm
GRID = colors.Color(0.35, 0.35, 0.35)
HEADER_BG = colors.Color(0.9, 0.92, 0.95)
BAND = colors.Color(0.82, 0.93, 0.82)
OK_BAR = colors.Color(0.18, 0.49, 0.2)
BAD_BAR = colors.Color(0.85, 0.42, 0.13)
PENDING_BAR = colors.Color(0.6, 0.62, 0.66)  # a month not yet due: neither one nor the other


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    italic: str
    bold_italic: str


def locate_fonts(
    dirs: Sequence[Path] = FONT_DIRS,
) -> tuple[str, tuple[Path, Path, Path | None, Path | None]] | None:
    """The first DejaVu family with a regular and a bold face: (family, the four paths).

    Italic faces may be missing (Debian's fonts-dejavu-core has none; fonts-dejavu-extra
    does): None then, and the upright face stands in.
    """
    for family, (regular, bold, italic, bold_italic) in FAMILIES:
        for folder in dirs:
            if (folder / regular).is_file() and (folder / bold).is_file():
                slanted, bold_slanted = folder / italic, folder / bold_italic
                return family, (
                    folder / regular,
                    folder / bold,
                    slanted if slanted.is_file() else None,
                    bold_slanted if bold_slanted.is_file() else None,
                )
    return None


@lru_cache(maxsize=1)
def fonts() -> Fonts:
    """Register the DejaVu family once; 503 when the font files are not installed."""
    found = locate_fonts()
    if found is None:
        raise ServiceUnavailable(
            "the PDF needs the DejaVu fonts (Vietnamese); install fonts-dejavu-core"
        )
    family, (regular, bold, italic, bold_italic) = found

    def register(name: str, path: Path | None, fallback: str) -> str:
        if path is None:
            return fallback
        pdfmetrics.registerFont(TTFont(name, str(path)))
        return name

    names = Fonts(
        regular=register(family, regular, family),
        bold=register(f"{family}-Bold", bold, family),
        italic=register(f"{family}-Italic", italic, family),
        bold_italic=register(f"{family}-BoldItalic", bold_italic, f"{family}-Bold"),
    )
    pdfmetrics.registerFontFamily(
        family,
        normal=names.regular,
        bold=names.bold,
        italic=names.italic,
        boldItalic=names.bold_italic,
    )
    return names


def vn_number(value: float, decimals: int = 0) -> str:
    """A number as Vietnamese writes it: "." between thousands, "," before decimals."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def vn_pct(value: float | None) -> str:
    return "–" if value is None else f"{vn_number(value, 1)}%"


def vn_date_line(place: str, when: datetime) -> str:
    """ "Xuân Phúc, ngày 05 tháng 3 năm 2025": a zero before days below 10 and months 1 and 2."""
    day = f"{when.day:02d}"
    month = f"{when.month:02d}" if when.month < 3 else str(when.month)
    return f"{place}, ngày {day} tháng {month} năm {when.year}"


_KINDS = ("xã", "phường", "thị trấn")


def commune(station_name: str) -> tuple[str, str]:
    """(kind of unit, place): "Xuân Phúc" -> ("xã", "Xuân Phúc"), "Phường A" -> ("phường", "A")."""
    name = station_name.strip()
    for kind in _KINDS:
        if name.lower().startswith(kind + " "):
            return kind, name[len(kind) :].strip()
    return "xã", name


def issuing_body(station_name: str) -> str:
    """The issuing body's second line: "XÃ XUÂN PHÚC"."""
    kind, place = commune(station_name)
    return f"{kind} {place}".upper()


def month_label(month: str) -> str:
    """ "2024-03" -> "03/2024"."""
    year, mon = month.split("-")
    return f"{mon}/{year}"


class _Styles:
    def __init__(self, f: Fonts) -> None:
        def style(name: str, **kw: Any) -> ParagraphStyle:
            kw.setdefault("fontName", f.regular)
            kw.setdefault("fontSize", 12)
            kw.setdefault("leading", kw["fontSize"] * 1.3)
            return ParagraphStyle(name, **kw)

        self.fonts = f
        self.head = style("head", fontName=f.bold, fontSize=11.5, alignment=TA_CENTER)
        self.head_regular = style("head-r", fontSize=11.5, alignment=TA_CENTER)
        self.motto = style("motto", fontName=f.bold, fontSize=12.5, alignment=TA_CENTER)
        self.date = style("date", fontName=f.italic, fontSize=12, alignment=TA_CENTER)
        self.title = style("title", fontName=f.bold, fontSize=14, alignment=TA_CENTER)
        self.subtitle = style("subtitle", fontName=f.bold, fontSize=13, alignment=TA_CENTER)
        self.section = style("section", fontName=f.bold, fontSize=12, spaceBefore=8, spaceAfter=4)
        self.body = style(
            "body", fontSize=12, leading=16, alignment=TA_JUSTIFY, firstLineIndent=10 * mm
        )
        self.cell = style("cell", fontSize=9.5, leading=11.5, alignment=TA_CENTER)
        self.cell_left = style("cell-l", fontSize=9.5, leading=11.5, alignment=TA_LEFT)
        self.cell_head = style("cell-h", fontName=f.bold, fontSize=9.5, leading=11.5)
        self.cell_head.alignment = TA_CENTER
        self.caption = style("caption", fontName=f.italic, fontSize=10.5, alignment=TA_CENTER)
        self.recipients_head = style("rh", fontName=f.bold_italic, fontSize=12)
        self.recipients = style("r", fontSize=11, leading=13.5)
        self.signature = style("sig", fontName=f.bold, fontSize=13, alignment=TA_CENTER)


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _plain_table(table: Table, f: Fonts, *commands: tuple[Any, ...]) -> Table:
    """A layout table: no padding at the sides; its default font set (never Helvetica)."""
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), f.regular),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                *commands,
            ]
        )
    )
    return table


def _header(report: ComplianceReport, s: _Styles) -> Table:
    _kind, place = commune(report.station.name)
    national = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    motto = "Độc lập - Tự do - Hạnh phúc"
    motto_width = pdfmetrics.stringWidth(motto, s.fonts.bold, s.motto.fontSize)
    left = [
        _p("ỦY BAN NHÂN DÂN", s.head),
        _p(issuing_body(report.station.name), s.head),
        HRFlowable(width=28 * mm, thickness=0.6, color=colors.black, spaceBefore=2),
    ]
    # The national title stays on one line: the font shrinks to the column if it must.
    room = FRAME_WIDTH - HEADER_LEFT - 2
    size = min(s.head.fontSize, room / pdfmetrics.stringWidth(national, s.fonts.bold, 1))
    national_style = ParagraphStyle("national", parent=s.head, fontSize=size, leading=size * 1.3)
    right = [
        _p(national, national_style),
        _p(motto, s.motto),
        HRFlowable(width=motto_width, thickness=0.6, color=colors.black, spaceBefore=2),
    ]
    table = Table(
        [
            [left, right],
            [
                _p(f"Số: {report.document.number}", s.head_regular),
                _p(vn_date_line(place, report.generated_at), s.date),
            ],
        ],
        colWidths=[HEADER_LEFT, FRAME_WIDTH - HEADER_LEFT],
    )
    return _plain_table(
        table, s.fonts, ("ALIGN", (0, 0), (-1, -1), "CENTER"), ("TOPPADDING", (0, 1), (-1, 1), 6)
    )


def _title(report: ComplianceReport, s: _Styles) -> list[Flowable]:
    if report.month:
        year, month = report.month.split("-")
        period = f"tháng {int(month)} năm {year}"
    else:
        period = f"năm {report.year}"
    return [
        Spacer(1, 9 * mm),
        _p("BÁO CÁO", s.title),
        _p(f"Kết quả tuyên truyền cải cách hành chính {period}", s.subtitle),
        HRFlowable(width=40 * mm, thickness=0.6, color=colors.black, spaceBefore=3, spaceAfter=8),
    ]


def _grid(
    rows: list[list[Any]], widths: list[float], s: _Styles, *, total_row: bool = False
) -> Table:
    cells = [[_p(str(c), s.cell_head) for c in rows[0]]]
    for row in rows[1:]:
        cells.append([_p(str(c), s.cell_left if i == 0 else s.cell) for i, c in enumerate(row)])
    table = Table(cells, colWidths=widths, repeatRows=1, hAlign="CENTER")
    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), s.fonts.regular),
        ("GRID", (0, 0), (-1, -1), 0.5, GRID),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if total_row:
        commands.append(("BACKGROUND", (0, -1), (-1, -1), HEADER_BG))
    table.setStyle(TableStyle(commands))
    return table


def _months_section(report: ComplianceReport, s: _Styles) -> list[Flowable]:
    sm = report.summary
    lo, hi = sm.window_ms
    period = (
        f"tháng {int(report.month[5:])}/{report.year}" if report.month else f"năm {report.year}"
    )
    failing = [
        f"{month_label(m.month)} ({RESULT_LABELS[m.result].lower()}"
        + (f", {clock_format(m.aired_ms)}" if m.aired else "")
        + (f", {reach_vi(m)}" if reach_vi(m) else "")
        + ")"
        for m in report.months
        if m.in_scope and not m.compliant
    ]
    per_month = max((m.expected for m in report.months), default=1)
    text = (
        f"Theo Kế hoạch, {sm.programme_name} trên Đài truyền thanh xã phát mỗi tháng "
        f"{per_month} lần, thời lượng mỗi lần từ {vn_number(lo / 60_000)} đến "
        f"{vn_number(hi / 60_000)} phút. Trong {period}: "
        f"{sm.months_compliant}/{sm.months_in_scope} tháng đạt yêu cầu "
        f"({vn_pct(sm.compliance_pct)}); đã phát {sm.aired}/{sm.planned} buổi theo kế hoạch "
        f"với tổng thời lượng {vn_number(sm.cchc_airtime_ms / 60_000, 1)} phút; "
        f"{sm.interrupted} buổi bị ngắt, {sm.missed} buổi bỏ lỡ."
    )
    out: list[Flowable] = [
        _p("I. CHUYÊN MỤC CCHC TRÊN ĐÀI TRUYỀN THANH XÃ", s.section),
        _p(text, s.body),
    ]
    if failing:
        out.append(_p("Các tháng chưa đạt yêu cầu: " + "; ".join(failing) + ".", s.body))
    rows: list[list[Any]] = [
        [
            "Tháng",
            "Kế hoạch (buổi)",
            "Đã phát (buổi)",
            "Ngày phát",
            "Thời lượng\n(phút:giây)",
            "Bị ngắt",
            "Bỏ lỡ",
            "Kết quả",
        ]
    ]
    for m in report.months:
        aired = [b for b in m.broadcasts if b.state == "aired" and b.aired_at]
        rows.append(
            [
                month_label(m.month),
                m.planned,
                m.aired,
                ", ".join(b.aired_at.strftime("%d/%m") for b in aired if b.aired_at) or "–",
                clock_format(m.aired_ms) if m.aired else "–",
                m.interrupted,
                m.missed,
                RESULT_LABELS[m.result],
            ]
        )
    rows.append(
        [
            "Cộng",
            sm.planned,
            sm.aired,
            "",
            clock_format(sm.cchc_airtime_ms),
            sm.interrupted,
            sm.missed,
            f"{sm.months_compliant}/{sm.months_in_scope} tháng đạt",
        ]
    )
    widths = [19, 17, 17, 17, 27, 14, 14, 35]
    out += [Spacer(1, 3 * mm), _grid(rows, [w * mm for w in widths], s, total_row=True)]
    out += _reach_section(report, s)
    out += [
        Spacer(1, 4 * mm),
        airtime_chart(report, s.fonts),
        _p(
            "Biểu đồ: thời lượng chuyên mục CCHC đã phát theo tháng (phút) so với khung "
            f"{vn_number(lo / 60_000)}–{vn_number(hi / 60_000)} phút của Kế hoạch",
            s.caption,
        ),
    ]
    return out


def _reach_section(report: ComplianceReport, s: _Styles) -> list[Flowable]:
    """ip months: on how many village clusters the column aired, and which missed it."""
    ip = [m for m in report.months if m.network == "ip"]
    if not ip:
        return []
    rows: list[list[Any]] = [
        ["Tháng", "Số thôn có cụm loa", "Số thôn đã phát", "Phạm vi phát", "Thôn chưa phát"]
    ]
    for m in ip:
        rows.append(
            [
                month_label(m.month),
                len(m.villages_in_service),
                len(m.villages_aired),
                reach_vi(m) or "",
                missing_vi(m) or "–",
            ]
        )
    text = (
        "Trên hệ thống truyền thanh ứng dụng công nghệ thông tin - viễn thông, mỗi cụm loa "
        "thôn tự phát chuyên mục; tháng đạt yêu cầu khi chuyên mục được phát đủ thời lượng "
        "trên mọi thôn có cụm loa đang hoạt động."
    )
    widths = [19, 27, 24, 38, 52]
    return [
        Spacer(1, 4 * mm),
        _p(text, s.body),
        Spacer(1, 3 * mm),
        _grid(rows, [w * mm for w in widths], s),
    ]


def airtime_chart(report: ComplianceReport, f: Fonts) -> Drawing:
    """Bars of monthly airtime in minutes over the shaded band of the programme's window."""
    figure = chart_figures(report)
    lo, hi = figure.low, figure.high
    values = [b.minutes for b in figure.bars]
    step = figure.step
    vmax = figure.top
    width, height = FRAME_WIDTH, 72 * mm
    drawing = Drawing(width, height, initialFontName=f.regular)
    chart = VerticalBarChart()
    chart.x, chart.y = 14 * mm, 10 * mm
    chart.width, chart.height = width - 20 * mm, height - 22 * mm
    chart.data = [values]
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = vmax
    chart.valueAxis.valueStep = step
    chart.valueAxis.labels.fontName = f.regular
    chart.valueAxis.labels.fontSize = 8
    chart.categoryAxis.categoryNames = [b.label for b in figure.bars]
    chart.categoryAxis.labels.fontName = f.regular
    chart.categoryAxis.labels.fontSize = 8
    chart.bars.strokeColor = None
    # Each bar half as wide as a month's slot in a year chart, however few months are shown.
    chart.barWidth = 6
    chart.groupSpacing = 6 * (24 / len(values) - 1)
    for i, b in enumerate(figure.bars):
        chart.bars[(0, i)].fillColor = (
            PENDING_BAR if b.pending else OK_BAR if b.compliant else BAD_BAR
        )
    chart.barLabelFormat = lambda v: vn_number(v, 1) if v else ""
    chart.barLabels.fontName = f.regular
    chart.barLabels.fontSize = 7
    chart.barLabels.nudge = 6

    def y_of(value: float) -> float:
        return float(chart.y + chart.height * value / vmax)

    x0, x1 = chart.x, chart.x + chart.width
    drawing.add(
        Rect(x0, y_of(lo), chart.width, y_of(hi) - y_of(lo), fillColor=BAND, strokeColor=None)
    )
    drawing.add(chart)
    for value in (lo, hi):
        drawing.add(
            Line(
                x0,
                y_of(value),
                x1,
                y_of(value),
                strokeColor=OK_BAR,
                strokeWidth=0.8,
                strokeDashArray=[3, 2],
            )
        )
        drawing.add(
            String(
                x1 + 1.5 * mm,
                y_of(value) - 3,
                f"{vn_number(value)}′",
                fontName=f.regular,
                fontSize=8,
                fillColor=OK_BAR,
            )
        )
    drawing.add(String(chart.x - 10 * mm, height - 6 * mm, "phút", fontName=f.italic, fontSize=8))
    legend_y = height - 6 * mm
    drawing.add(Rect(x0 + 8 * mm, legend_y - 1, 8 * mm, 3 * mm, fillColor=BAND, strokeColor=None))
    drawing.add(
        String(
            x0 + 18 * mm,
            legend_y,
            f"khung {vn_number(lo)}–{vn_number(hi)} phút",
            fontName=f.regular,
            fontSize=8,
        )
    )
    drawing.add(
        Rect(x0 + 58 * mm, legend_y - 1, 4 * mm, 3 * mm, fillColor=OK_BAR, strokeColor=None)
    )
    drawing.add(String(x0 + 64 * mm, legend_y, "đạt", fontName=f.regular, fontSize=8))
    drawing.add(
        Rect(x0 + 74 * mm, legend_y - 1, 4 * mm, 3 * mm, fillColor=BAD_BAR, strokeColor=None)
    )
    drawing.add(String(x0 + 80 * mm, legend_y, "chưa đạt", fontName=f.regular, fontSize=8))
    return drawing


def _villages_section(report: ComplianceReport, s: _Styles) -> list[Flowable]:
    sm = report.summary
    text = (
        "Tuyên truyền CCHC trên loa phát thanh các thôn: "
        f"{sm.village_aired}/{sm.village_due} buổi đến hạn đã phát "
        f"({vn_pct(sm.village_coverage_pct)}), trên tổng số {sm.village_planned} buổi "
        "theo lịch."
    )
    rows: list[list[Any]] = [
        ["Thôn", "Kế hoạch (buổi)", "Đến hạn", "Đã phát", "Bị ngắt", "Bỏ lỡ", "Tỷ lệ đã phát"]
    ]
    for v in report.villages:
        rows.append(
            [v.village, v.planned, v.due, v.aired, v.interrupted, v.missed, vn_pct(v.coverage_pct)]
        )
    rows.append(
        [
            "Toàn xã",
            sm.village_planned,
            sm.village_due,
            sm.village_aired,
            sum(v.interrupted for v in report.villages),
            sum(v.missed for v in report.villages),
            vn_pct(sm.village_coverage_pct),
        ]
    )
    widths = [40, 22, 20, 20, 18, 18, 22]
    return [
        _p("II. TUYÊN TRUYỀN TRÊN LOA PHÁT THANH CÁC THÔN", s.section),
        _p(text, s.body),
        Spacer(1, 3 * mm),
        _grid(rows, [w * mm for w in widths], s, total_row=True),
    ]


def _topics_section(report: ComplianceReport, s: _Styles) -> list[Flowable]:
    rows: list[list[Any]] = [["Chủ đề", "Số tin bài đã phát", "Số lượt phát"]]
    for t in report.topics.values():
        rows.append([t.label, t.segments, t.airings])
    rows.append(["Cộng", report.summary.segments_aired, report.summary.segment_airings])
    return [
        _p("III. NỘI DUNG TUYÊN TRUYỀN THEO CHỦ ĐỀ", s.section),
        _p(
            "Số tin bài trong các buổi đã phát, theo các nội dung của Kế hoạch (mục 2.2 đến 2.4):",
            s.body,
        ),
        Spacer(1, 3 * mm),
        _grid(rows, [90 * mm, 35 * mm, 35 * mm], s, total_row=True),
    ]


def _relays_section(report: ComplianceReport, s: _Styles) -> list[Flowable]:
    """Relays of national and provincial radio: slots and minutes, month by month."""
    if not report.relays:
        return []
    rows: list[list[Any]] = [
        ["Tháng", "Chương trình", "Buổi KH", "Buổi tiếp sóng", "Phút KH", "Phút đã tiếp sóng",
         "Mất tín hiệu"],
    ]  # fmt: skip
    for r in report.relays:
        rows.append(
            [
                month_label(r.month),
                r.programme_name,
                r.planned,
                r.relayed,
                vn_number(r.planned_ms / 60_000, 1),
                vn_number(r.relayed_ms / 60_000, 1),
                f"{r.dropouts} lần, {vn_number(r.dropout_ms / 60_000, 1)} phút",
            ]
        )
    out: list[Flowable] = [
        _p("IV. TIẾP SÓNG ĐÀI CẤP TRÊN", s.section),
        _p(
            "Buổi tiếp sóng được tính là đã tiếp sóng khi loa phát ít nhất 90% thời lượng "
            "của khung giờ:",
            s.body,
        ),
        Spacer(1, 3 * mm),
        _grid(rows, [18 * mm, 44 * mm, 16 * mm, 20 * mm, 18 * mm, 22 * mm, 26 * mm], s),
    ]
    missing = [f"{r.programme_name}, {line}" for r in report.relays for line in r.not_relayed]
    if missing:
        out.append(_p("Không tiếp sóng được: " + "; ".join(missing[:10]) + ".", s.body))
    return out


def _closing(report: ComplianceReport, s: _Styles) -> list[Flowable]:
    kind, place = commune(report.station.name)
    what = report_title(report).replace("Báo cáo", "báo cáo", 1)
    closing = _p(f"Trên đây là {what} của Ủy ban nhân dân {kind} {place}./.", s.body)
    recipients = [_p("Nơi nhận:", s.recipients_head)] + [
        _p(f"- {r}", s.recipients) for r in report.document.recipients
    ]
    signature = [
        _one_line(line, s.signature, FRAME_WIDTH * 0.52)
        for line in signature_lines(report.document.signer_title, report.document.signs_for)
    ]
    signature.append(Spacer(1, 24 * mm))
    if report.document.signer_name:
        signature.append(_p(report.document.signer_name, s.signature))
    block = _plain_table(
        Table([[recipients, signature]], colWidths=[FRAME_WIDTH * 0.48, FRAME_WIDTH * 0.52]),
        s.fonts,
    )
    return [Spacer(1, 4 * mm), KeepTogether([closing, Spacer(1, 6 * mm), block])]


def signature_lines(title: str, signs_for: str | None) -> list[str]:
    """Decree 30's signature block of a People's Committee: collective ("TM."), and "KT."
    when a deputy signs for the head."""
    lines = ["TM. ỦY BAN NHÂN DÂN"]
    if signs_for:
        lines.append(f"KT. {signs_for.upper()}")
    lines.append(title.upper())
    return lines


def _one_line(text: str, style: ParagraphStyle, width: float) -> Paragraph:
    """A line that must not wrap: the font shrinks to the column if it must."""
    size = min(style.fontSize, (width - 2) / pdfmetrics.stringWidth(text, style.fontName, 1))
    return _p(
        text, ParagraphStyle(f"{style.name}-fit", parent=style, fontSize=size, leading=size * 1.3)
    )


def _page_decorations(report: ComplianceReport, f: Fonts) -> Any:
    kind, place = commune(report.station.name)
    footer = f"{report_title(report)} – UBND {kind} {place}"

    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        if doc.page > 1:
            # Decree 30: page numbers from the second page on, centred in the top margin.
            canvas.setFont(f.regular, 11)
            canvas.drawCentredString(LEFT_MARGIN + FRAME_WIDTH / 2, A4[1] - 12 * mm, str(doc.page))
        canvas.setFont(f.italic, 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(LEFT_MARGIN, 10 * mm, footer)
        canvas.restoreState()

    return draw


def to_pdf(report: ComplianceReport) -> bytes:
    """Render the report as an A4 PDF with the DejaVu fonts embedded."""
    f = fonts()
    s = _Styles(f)
    kind, place = commune(report.station.name)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=LEFT_MARGIN,
        rightMargin=RIGHT_MARGIN,
        topMargin=TOP_MARGIN,
        bottomMargin=BOTTOM_MARGIN,
        title=report_title(report),
        author=f"Ủy ban nhân dân {kind} {place}",
        subject="Báo cáo kết quả tuyên truyền cải cách hành chính",
        creator="loaxa",
        initialFontName=f.regular,
    )
    story: list[Flowable] = [_header(report, s), *_title(report, s)]
    story += _months_section(report, s)
    story += _villages_section(report, s)
    story += _topics_section(report, s)
    story += _relays_section(report, s)
    story += _closing(report, s)
    decorate = _page_decorations(report, f)
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()
