"""Pure helpers of the rendered formats: fonts, Vietnamese dates and numbers, file names."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from app.durations import clock_format
from app.reports import formats, pdf

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def test_fonts_with_only_the_core_package(tmp_path: Path) -> None:
    # Debian's fonts-dejavu-core has the upright faces only: the PDF must still render.
    for name in ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"):
        (tmp_path / name).symlink_to(DEJAVU / name)
    found = pdf.locate_fonts([tmp_path])
    assert found is not None
    family, (regular, bold, italic, bold_italic) = found
    assert family == "DejaVuSerif"
    assert (regular.name, bold.name, italic, bold_italic) == (
        "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", None, None,
    )  # fmt: skip
    assert pdf.locate_fonts([tmp_path / "empty"]) is None


def test_vietnamese_dates_and_numbers() -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    # Decree 30: a zero before days below 10 and before months 1 and 2 only.
    assert pdf.vn_date_line("Xuân Phúc", datetime(2025, 1, 5, tzinfo=tz)) == (
        "Xuân Phúc, ngày 05 tháng 01 năm 2025"
    )
    assert pdf.vn_date_line("Xuân Phúc", datetime(2025, 3, 15, tzinfo=tz)) == (
        "Xuân Phúc, ngày 15 tháng 3 năm 2025"
    )
    assert pdf.vn_number(1234.5, 1) == "1.234,5"
    assert pdf.vn_pct(57.14) == "57,1%"
    assert pdf.vn_pct(None) == "–"
    assert clock_format(545_400) == "9:05"
    assert pdf.commune("Xuân Phúc") == ("xã", "Xuân Phúc")
    assert pdf.issuing_body("Thị trấn Bến Sung") == "THỊ TRẤN BẾN SUNG"


def test_content_disposition() -> None:
    assert formats.ascii_fold("Đài truyền thanh xã Xuân Phúc") == "Dai truyen thanh xa Xuan Phuc"
    header = formats.content_disposition('Báo cáo "CCHC" Đông Hà.csv')
    assert header == (
        'attachment; filename="Bao-cao-CCHC-Dong-Ha.csv"; '
        "filename*=UTF-8''B%C3%A1o%20c%C3%A1o%20%22CCHC%22%20%C4%90%C3%B4ng%20H%C3%A0.csv"
    )
    assert header.isascii()
