"""The compliance report as tables: CSV that Excel opens with Vietnamese intact, and XLSX.

Both render the same five tables (months, villages, reach, topics, summary) with Vietnamese
headers; reach is the CCHC column on each village cluster of an ``ip`` station, month by
month (empty for an ``fm`` station). The CSV is UTF-8 with a BOM (what makes Excel read it
as UTF-8), comma-separated with "." decimals; the whole report is the tables one after
another, each starting with its header row and separated by an empty row; ``view=`` gives
one table alone.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from app.errors import Invalid
from app.reports.labels import RESULT_LABELS
from app.reports.schemas import ComplianceReport, MonthRow

VIEWS = ("months", "villages", "reach", "topics", "summary", "relays")
YES, NO = "Có", "Không"
WHOLE_PERIOD = "Cả kỳ"


@dataclass
class Table:
    """One view of the report: a sheet of the workbook, a block of the CSV."""

    key: str
    title: str  # the sheet name
    headers: list[str]
    rows: list[list[Any]]
    # Excel number formats by column index (decimals shown the same in every locale).
    number_formats: dict[int, str] = field(default_factory=dict)


def minutes(ms: int) -> float:
    """Milliseconds as minutes, two decimals."""
    return round(ms / 60_000, 2)


def local_stamp(value: datetime | None) -> str:
    """A local datetime as "16/03/2024 17:00", as Vietnamese documents write it."""
    return value.strftime("%d/%m/%Y %H:%M") if value else ""


def reach_vi(month: MonthRow) -> str | None:
    """ "phát tại 7/8 thôn" for an ip month; None for fm (the transmitter reaches them)."""
    if month.network != "ip":
        return None
    return f"phát tại {len(month.villages_aired)}/{len(month.villages_in_service)} thôn"


def missing_vi(month: MonthRow) -> str:
    """The villages in service that did not air the column, by name."""
    return ", ".join(v.name for v in month.villages_missing)


def months_table(report: ComplianceReport) -> Table:
    """The CCHC column month by month."""
    rows = []
    for m in report.months:
        aired_at = [b.aired_at for b in m.broadcasts if b.state == "aired"]
        rows.append(
            [
                m.month,
                m.programme,
                m.planned,
                m.aired,
                m.aired_ms,
                minutes(m.aired_ms),
                m.window_ms[0],
                m.window_ms[1],
                YES if m.compliant else NO,
                m.interrupted,
                m.missed,
                m.pending,
                RESULT_LABELS[m.result],
                "; ".join(local_stamp(a) for a in aired_at),
                m.network,
                len(m.villages_in_service) if m.network == "ip" else None,
                len(m.villages_aired) if m.network == "ip" else None,
                reach_vi(m),
                missing_vi(m),
            ]
        )
    return Table(
        key="months",
        title="Tháng",
        headers=[
            "Tháng",
            "Chuyên mục",
            "Số buổi kế hoạch",
            "Số buổi đã phát",
            "Thời lượng đã phát (ms)",
            "Thời lượng đã phát (phút)",
            "Thời lượng tối thiểu (ms)",
            "Thời lượng tối đa (ms)",
            "Đạt yêu cầu",
            "Bị ngắt",
            "Bỏ lỡ",
            "Chưa đến giờ",
            "Kết quả",
            "Thời điểm phát",
            "Mạng truyền thanh",
            "Số thôn có cụm loa hoạt động",
            "Số thôn đã phát",
            "Phạm vi phát",
            "Thôn chưa phát",
        ],
        rows=rows,
        number_formats={5: "0.00"},
    )


def reach_table(report: ComplianceReport) -> Table:
    """ip stations: each village in service, month by month, and the column on its cluster."""
    rows = [
        [
            m.month,
            v.name,
            v.id,
            v.aired,
            v.aired_ms,
            minutes(v.aired_ms),
            RESULT_LABELS[v.result],
        ]
        for m in report.months
        for v in m.villages_in_service
    ]
    return Table(
        key="reach",
        title="Phạm vi phát",
        headers=[
            "Tháng",
            "Thôn",
            "Mã thôn",
            "Số buổi đã phát",
            "Thời lượng đã phát (ms)",
            "Thời lượng đã phát (phút)",
            "Kết quả",
        ],
        rows=rows,
        number_formats={5: "0.00"},
    )


def villages_table(report: ComplianceReport) -> Table:
    """Each village's slots month by month, then its total for the period."""
    rows = []
    for v in report.villages:
        for m in v.months:
            due = m.planned - m.pending
            rows.append(
                [
                    v.village,
                    v.programme,
                    m.month,
                    m.planned,
                    due,
                    m.aired,
                    m.interrupted,
                    m.missed,
                    m.pending,
                    round(m.aired * 100 / due, 1) if due else None,
                ]
            )
        rows.append(
            [
                v.village,
                v.programme,
                WHOLE_PERIOD,
                v.planned,
                v.due,
                v.aired,
                v.interrupted,
                v.missed,
                v.pending,
                v.coverage_pct,
            ]
        )
    return Table(
        key="villages",
        title="Thôn",
        headers=[
            "Thôn",
            "Chuyên mục",
            "Tháng",
            "Số buổi kế hoạch",
            "Số buổi đến hạn",
            "Số buổi đã phát",
            "Bị ngắt",
            "Bỏ lỡ",
            "Chưa đến giờ",
            "Tỷ lệ đã phát (%)",
        ],
        rows=rows,
        number_formats={9: "0.0"},
    )


def topics_table(report: ComplianceReport) -> Table:
    """Aired segments by topic of the plan."""
    return Table(
        key="topics",
        title="Chủ đề",
        headers=["Mã chủ đề", "Chủ đề", "Số tin bài đã phát", "Số lượt phát"],
        rows=[[code, t.label, t.segments, t.airings] for code, t in report.topics.items()],
    )


def summary_table(report: ComplianceReport) -> Table:
    """The year (or month) in figures."""
    s = report.summary
    rows: list[list[Any]] = [
        ["Đài truyền thanh xã", report.station.name],
        ["Năm", report.year],
        ["Tháng", report.month or WHOLE_PERIOD],
        ["Chuyên mục", f"{s.programme_name} ({s.programme})"],
        ["Thời lượng tối thiểu (phút)", minutes(s.window_ms[0])],
        ["Thời lượng tối đa (phút)", minutes(s.window_ms[1])],
        ["Số tháng được xét", s.months_in_scope],
        ["Số tháng đạt yêu cầu", s.months_compliant],
        ["Tỷ lệ tháng đạt (%)", s.compliance_pct],
        ["Số buổi kế hoạch", s.planned],
        ["Số buổi đã phát", s.aired],
        ["Số buổi bị ngắt", s.interrupted],
        ["Số buổi bỏ lỡ", s.missed],
        ["Số buổi chưa đến giờ", s.pending],
        ["Tổng thời lượng CCHC (ms)", s.cchc_airtime_ms],
        ["Tổng thời lượng CCHC (phút)", s.cchc_airtime_minutes],
        ["Loa thôn: số buổi kế hoạch", s.village_planned],
        ["Loa thôn: số buổi đến hạn", s.village_due],
        ["Loa thôn: số buổi đã phát", s.village_aired],
        ["Loa thôn: tỷ lệ đã phát (%)", s.village_coverage_pct],
        ["Số tin bài đã phát", s.segments_aired],
        ["Số lượt phát tin bài", s.segment_airings],
        ["Thời điểm lập báo cáo", local_stamp(report.generated_at)],
        ["Mạng truyền thanh", report.station.network],
        ["Số văn bản", report.document.number],
    ]
    return Table(key="summary", title="Tổng hợp", headers=["Chỉ tiêu", "Giá trị"], rows=rows)


def relays_table(report: ComplianceReport) -> Table:
    """Relay programmes month by month; a village's row per cluster in an ip station."""
    rows: list[list[Any]] = []
    for r in report.relays:
        rows.append(
            [
                r.month, r.programme, r.programme_name, WHOLE_PERIOD, r.planned, r.due,
                r.relayed, minutes(r.planned_ms), minutes(r.relayed_ms), r.dropouts,
                minutes(r.dropout_ms), "; ".join(r.not_relayed),
            ]
        )  # fmt: skip
        for v in r.villages:
            rows.append(
                [r.month, r.programme, r.programme_name, v.name, r.planned, r.due, v.relayed,
                 minutes(r.planned_ms), minutes(v.relayed_ms), v.dropouts, "", ""]
            )  # fmt: skip
    return Table(
        key="relays",
        title="Tiếp sóng",
        headers=[
            "Tháng", "Mã chương trình", "Chương trình", "Nơi", "Số buổi kế hoạch",
            "Số buổi đến hạn", "Số buổi đã tiếp sóng", "Số phút kế hoạch",
            "Số phút đã tiếp sóng", "Số lần mất tín hiệu", "Số phút mất tín hiệu",
            "Lý do không tiếp sóng",
        ],
        rows=rows,
        number_formats={7: "0.00", 8: "0.00", 10: "0.00"},
    )


def tables(report: ComplianceReport) -> list[Table]:
    """The views, in the order of the CSV and the workbook: five, and the relays' when the
    station relays national or provincial radio."""
    out = [
        months_table(report),
        villages_table(report),
        reach_table(report),
        topics_table(report),
        summary_table(report),
    ]
    if report.relays:
        out.append(relays_table(report))
    return out


def parse_view(value: str | None) -> str | None:
    """The CSV view asked for (None: all of them); 422 naming the ones there are."""
    if value is None or value.strip() == "":
        return None
    view = value.strip().lower()
    if view not in VIEWS:
        raise Invalid(f"view: must be one of {', '.join(VIEWS)}, not {value!r}")
    return view


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        # A name starting like a formula would run as one in Excel (CSV injection).
        return "'" + value
    return value


def to_csv(report: ComplianceReport, *, view: str | None = None) -> bytes:
    """UTF-8 with BOM; the five tables (or the one asked for), separated by an empty row.

    Every cell is quoted: a spreadsheet that splits on ";" (the Vietnamese locale's list
    separator) rather than "," still sees each cell whole, so a name holding ";=..." cannot
    put a formula in a cell of its own (the "'" before a leading =, +, - or @ stays)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    chosen = [t for t in tables(report) if view is None or t.key == view]
    for i, table in enumerate(chosen):
        if i:
            writer.writerow([])
        writer.writerow(table.headers)
        writer.writerows([_csv_cell(c) for c in row] for row in table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")


def to_xlsx(report: ComplianceReport) -> bytes:
    """A workbook with one sheet per view: Tháng, Thôn, Phạm vi phát, Chủ đề, Tổng hợp."""
    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.title = report_title(report)
    wb.properties.creator = "loaxa"
    for table in tables(report):
        ws = wb.create_sheet(table.title)
        ws.append(table.headers)
        for cell in ws[1]:
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        for row in table.rows:
            ws.append([_xlsx_cell(c) for c in row])
        for col, fmt in table.number_formats.items():
            for (cell,) in ws.iter_rows(
                min_row=2, min_col=col + 1, max_col=col + 1, max_row=ws.max_row
            ):
                cell.number_format = fmt
        ws.freeze_panes = "A2"
        if table.rows:
            ws.auto_filter.ref = ws.dimensions
        _fit_columns(ws, table)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("="):
        return "'" + value
    return value


def _fit_columns(ws: Any, table: Table) -> None:
    for i, header in enumerate(table.headers):
        longest = max(
            [min(len(header), 24)] + [len(str(row[i])) for row in table.rows if row[i] is not None]
        )
        ws.column_dimensions[get_column_letter(i + 1)].width = min(max(longest + 2, 8), 60)


def report_title(report: ComplianceReport) -> str:
    """The report's title line, as in the PDF."""
    if report.month:
        year, month = report.month.split("-")
        return f"Báo cáo kết quả tuyên truyền cải cách hành chính tháng {int(month)} năm {year}"
    return f"Báo cáo kết quả tuyên truyền cải cách hành chính năm {report.year}"


def ascii_fold(text: str) -> str:
    """Vietnamese without diacritics ("Xuân Phúc" -> "Xuan Phuc"), for ASCII-only places."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    return (
        "".join(c for c in decomposed if not unicodedata.combining(c))
        .encode("ascii", "ignore")
        .decode("ascii")
    )


def report_filename(report: ComplianceReport, ext: str) -> str:
    """ "Báo cáo CCHC Xuân Phúc 2024.csv" (Unicode; see content_disposition for ASCII)."""
    period = report.month or str(report.year)
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", report.station.name).strip()
    return f"Báo cáo CCHC {name} {period}.{ext}"


def content_disposition(filename: str, *, disposition: str = "attachment") -> str:
    """An RFC 6266 header: an ASCII filename for old clients, RFC 5987 filename* for the rest."""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_fold(filename)).strip("-") or "download"
    encoded = quote(unicodedata.normalize("NFC", filename), safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def read_csv_tables(data: bytes) -> list[list[list[str]]]:
    """Split a report CSV back into its tables (rows of cells); the inverse used by tests."""
    text = data.decode("utf-8-sig")
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if not row:
            blocks.append([])
        else:
            blocks[-1].append(row)
    return [b for b in blocks if b]
