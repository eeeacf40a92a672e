"""GET /api/v1/reports/compliance in every format, every figure checked, and who may see it."""

from __future__ import annotations

import io
import re
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from app.accounts.models import Role
from app.reports.formats import read_csv_tables
from app.segments.models import Topic
from tests.helpers import login, make_station, make_user
from tests.reports.conftest import (
    EXPECTED_MONTHS,
    EXPECTED_SUMMARY,
    EXPECTED_TOPICS,
    EXPECTED_VILLAGES,
)

URL = "/api/v1/reports/compliance"
RESULT_VI = {
    "compliant": "Đạt",
    "not-aired": "Không phát",
    "interrupted": "Bị ngắt",
    "too-short": "Thiếu thời lượng",
    "too-long": "Vượt thời lượng",
}
MONTH_HEADERS = [
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
]
VILLAGE_HEADERS = [
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
]
SUMMARY_LABELS = {
    "Số tháng được xét": "months_in_scope",
    "Số tháng đạt yêu cầu": "months_compliant",
    "Tỷ lệ tháng đạt (%)": "compliance_pct",
    "Số buổi kế hoạch": "planned",
    "Số buổi đã phát": "aired",
    "Số buổi bị ngắt": "interrupted",
    "Số buổi bỏ lỡ": "missed",
    "Số buổi chưa đến giờ": "pending",
    "Tổng thời lượng CCHC (ms)": "cchc_airtime_ms",
    "Tổng thời lượng CCHC (phút)": "cchc_airtime_minutes",
    "Loa thôn: số buổi kế hoạch": "village_planned",
    "Loa thôn: số buổi đến hạn": "village_due",
    "Loa thôn: số buổi đã phát": "village_aired",
    "Loa thôn: tỷ lệ đã phát (%)": "village_coverage_pct",
    "Số tin bài đã phát": "segments_aired",
    "Số lượt phát tin bài": "segment_airings",
}


def get(client: TestClient, headers: dict[str, str], **params: Any) -> Any:
    return client.get(URL, params=params, headers=headers)


def test_json(client: TestClient, year: dict[str, Any], headers: dict[str, Any]) -> None:
    r = get(client, headers["viewer"], station_id=year["station_id"], year=2024)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert [m["month"] for m in body["months"]] == [f"2024-{m:02d}" for m in range(1, 13)]
    for row in body["months"]:
        expected = EXPECTED_MONTHS[row["month"]]
        assert {k: row[k] for k in expected} == expected, row["month"]
        assert row["programme"] == "cchc"
        assert row["window_ms"] == [600000, 900000]
    villages = {v["village"]: v for v in body["villages"]}
    for name, expected in EXPECTED_VILLAGES.items():
        assert {k: villages[name][k] for k in expected} == expected, name
        assert len(villages[name]["months"]) == 12
    assert list(body["topics"]) == [t.value for t in Topic]
    for code, topic in body["topics"].items():
        assert (topic["segments"], topic["airings"]) == EXPECTED_TOPICS.get(code, (0, 0)), code
    assert {k: body["summary"][k] for k in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    assert body["summary"]["window_ms"] == [600000, 900000]
    assert body["station"] == {"id": year["station_id"], "name": "Xuân Phúc", "timezone":
                               "Asia/Ho_Chi_Minh", "network": "fm"}  # fmt: skip
    # An fm station: the station PC's airing counts, as it always did; no village reach.
    for row in body["months"]:
        assert row["network"] == "fm" and row["reach"] is None
        assert row["villages_in_service"] == row["villages_aired"] == row["villages_missing"] == []
    # Unissued: the number is the pattern's placeholder, never an allocated number.
    assert body["document"]["number"] == "…/BC-UBND" and body["document"]["issued"] is None
    assert body["generated_at"] == "2025-01-10T10:00:00+07:00"
    assert body["months"][0]["broadcasts"][0]["starts_at"] == "2024-01-20T17:00:00+07:00"
    # The month form: month=3 and month=2024-03 give the same single month.
    one = get(client, headers["viewer"], station_id=year["station_id"], year=2024, month=3).json()
    same = get(client, headers["viewer"], station_id=year["station_id"], month="2024-03").json()
    assert one == same
    assert one["month"] == "2024-03" and len(one["months"]) == 1
    assert one["months"][0]["aired_ms"] == 600000 and one["months"][0]["compliant"] is True


def test_csv(client: TestClient, year: dict[str, Any], headers: dict[str, Any]) -> None:
    r = get(client, headers["viewer"], station_id=year["station_id"], year=2024, format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = r.headers["content-disposition"]
    assert disposition == (
        'attachment; filename="Bao-cao-CCHC-Xuan-Phuc-2024.csv"; '
        "filename*=UTF-8''B%C3%A1o%20c%C3%A1o%20CCHC%20Xu%C3%A2n%20Ph%C3%BAc%202024.csv"
    )
    assert disposition.isascii()
    assert r.content.startswith(b"\xef\xbb\xbf")
    months, villages, reach, topics, summary = read_csv_tables(r.content)
    # Vietnamese survives the round trip, in NFC, byte for byte.
    assert months[0] == MONTH_HEADERS
    assert all(unicodedata.is_normalized("NFC", h) for h in months[0])
    assert len(months) == 13
    for row in months[1:]:
        expected = EXPECTED_MONTHS[row[0]]
        assert row[1] == "cchc"
        assert [int(row[2]), int(row[3]), int(row[4])] == [
            expected["planned"], expected["aired"], expected["aired_ms"],
        ]  # fmt: skip
        assert float(row[5]) == expected["aired_ms"] / 60000
        assert [int(row[6]), int(row[7])] == [600000, 900000]
        assert row[8] == ("Có" if expected["compliant"] else "Không")
        assert [int(row[9]), int(row[10]), int(row[11])] == [
            expected["interrupted"], expected["missed"], 0,
        ]  # fmt: skip
        assert row[12] == RESULT_VI[expected["result"]]
        assert bool(row[13]) == bool(expected["aired"])
        assert row[14:] == ["fm", "", "", "", ""]  # fm: no village reach
    assert months[3][13] == "16/03/2024 17:00"
    assert len(reach) == 1 and reach[0][:2] == ["Tháng", "Thôn"]  # fm: the header alone

    assert villages[0] == VILLAGE_HEADERS
    totals = {row[0]: row for row in villages[1:] if row[2] == "Cả kỳ"}
    for name, expected in EXPECTED_VILLAGES.items():
        row = totals[name]
        assert row[1] == "village-weekly"
        assert [int(x) for x in row[3:9]] == [
            expected[k] for k in ("planned", "due", "aired", "interrupted", "missed", "pending")
        ]
        pct = expected["coverage_pct"]
        assert row[9] == ("" if pct is None else str(pct))
    march = next(r for r in villages[1:] if r[0] == "Thôn 1" and r[2] == "2024-03")
    assert march[3:] == ["4", "4", "2", "1", "1", "0", "50.0"]
    assert len(villages) == 1 + 3 * 13

    assert topics[0] == ["Mã chủ đề", "Chủ đề", "Số tin bài đã phát", "Số lượt phát"]
    got_topics = {row[0]: (int(row[2]), int(row[3])) for row in topics[1:]}
    assert got_topics == {t.value: EXPECTED_TOPICS.get(t.value, (0, 0)) for t in Topic}
    assert ["indices", "Chỉ số PAR INDEX, PAPI, SIPAS, PCI", "1", "2"] in topics

    assert summary[0] == ["Chỉ tiêu", "Giá trị"]
    values = dict(summary[1:])
    assert values["Đài truyền thanh xã"] == "Xuân Phúc"
    assert values["Năm"] == "2024"
    for label, key in SUMMARY_LABELS.items():
        assert float(values[label]) == EXPECTED_SUMMARY[key], label

    # One table alone.
    r = get(
        client, headers["viewer"], station_id=year["station_id"], year=2024, format="csv",
        view="summary",
    )  # fmt: skip
    assert read_csv_tables(r.content) == [summary]


def test_xlsx(client: TestClient, year: dict[str, Any], headers: dict[str, Any]) -> None:
    r = get(client, headers["viewer"], station_id=year["station_id"], year=2024, format="xlsx")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="Bao-cao-CCHC-Xuan-Phuc-2024.xlsx"' in r.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["Tháng", "Thôn", "Phạm vi phát", "Chủ đề", "Tổng hợp"]

    months = list(wb["Tháng"].iter_rows(values_only=True))
    assert list(months[0]) == MONTH_HEADERS
    assert len(months) == 13
    for row in months[1:]:
        expected = EXPECTED_MONTHS[row[0]]
        assert row[1:5] == ("cchc", expected["planned"], expected["aired"], expected["aired_ms"])
        assert row[5] == expected["aired_ms"] / 60000
        assert row[6:8] == (600000, 900000)
        assert row[8] == ("Có" if expected["compliant"] else "Không")
        assert row[9:12] == (expected["interrupted"], expected["missed"], 0)
        assert row[12] == RESULT_VI[expected["result"]]
    assert wb["Tháng"]["F2"].number_format == "0.00"

    villages = list(wb["Thôn"].iter_rows(values_only=True))
    assert list(villages[0]) == VILLAGE_HEADERS
    totals = {row[0]: row for row in villages[1:] if row[2] == "Cả kỳ"}
    for name, expected in EXPECTED_VILLAGES.items():
        assert totals[name][3:] == tuple(
            expected[k]
            for k in ("planned", "due", "aired", "interrupted", "missed", "pending", "coverage_pct")
        )

    topics = list(wb["Chủ đề"].iter_rows(values_only=True))
    assert topics[0] == ("Mã chủ đề", "Chủ đề", "Số tin bài đã phát", "Số lượt phát")
    assert {row[0]: (row[2], row[3]) for row in topics[1:]} == {
        t.value: EXPECTED_TOPICS.get(t.value, (0, 0)) for t in Topic
    }

    summary = dict(wb["Tổng hợp"].iter_rows(min_row=2, values_only=True))
    assert summary["Đài truyền thanh xã"] == "Xuân Phúc"
    assert summary["Năm"] == 2024
    for label, key in SUMMARY_LABELS.items():
        assert summary[label] == EXPECTED_SUMMARY[key], label


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True)
    return unicodedata.normalize("NFC", out.stdout.decode("utf-8"))


def test_pdf(
    client: TestClient, year: dict[str, Any], headers: dict[str, Any], tmp_path: Path
) -> None:
    r = get(client, headers["viewer"], station_id=year["station_id"], year=2024, format="pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert 'filename="Bao-cao-CCHC-Xuan-Phuc-2024.pdf"' in r.headers["content-disposition"]
    path = tmp_path / "report.pdf"
    path.write_bytes(r.content)
    text = pdf_text(path)
    flat = " ".join(text.split())
    for heading in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "ỦY BAN NHÂN DÂN",
        "XÃ XUÂN PHÚC",
        "Số: …/BC-UBND",
        "Xuân Phúc, ngày 10 tháng 01 năm 2025",
        "BÁO CÁO",
        "Kết quả tuyên truyền cải cách hành chính năm 2024",
        "Nơi nhận:",
        "TM. ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
    ):
        assert heading in text, heading
    # The title phrase, on one line (the page footer) as well as across the title's two.
    assert "báo cáo kết quả tuyên truyền cải cách hành chính" in text.lower()
    # Key figures: the year, the months, the villages, the topics.
    for figure in (
        "6/12 tháng đạt yêu cầu (50,0%)",
        "đã phát 8/11 buổi",
        "tổng thời lượng 100,0 phút",
        "1 buổi bị ngắt, 2 buổi bỏ lỡ",
        "04/2024 (thiếu thời lượng, 9:00)",
        "05/2024 (vượt thời lượng, 16:00)",
        "4/7 buổi đến hạn đã phát (57,1%)",
        "6/12 tháng đạt",
        "Chỉ số PAR INDEX, PAPI, SIPAS, PCI",
    ):
        assert figure in flat, figure
    for cell in ("12:00", "10:00", "9:00", "16:00", "15:00", "11:00", "14:30", "12:30", "100:00"):
        assert re.search(rf"(^|\s){re.escape(cell)}(\s|$)", text), cell
    for cell in ("50,0%", "66,7%", "57,1%", "Thôn 1", "Thôn 2", "Thôn 3", "Toàn xã"):
        assert cell in text, cell
    for month in range(1, 13):
        assert f"{month:02d}/2024" in text
    # Fonts: DejaVu, embedded; nothing from the base 14 (no Vietnamese there).
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True)
    rows = [line.split() for line in fonts.stdout.splitlines()[2:]]
    assert rows and all("DejaVu" in row[0] for row in rows), fonts.stdout
    assert all(row[-5] == "yes" for row in rows), fonts.stdout  # the "emb" column


def test_one_month_pdf(
    client: TestClient, year: dict[str, Any], headers: dict[str, Any], tmp_path: Path
) -> None:
    r = get(
        client, headers["viewer"], station_id=year["station_id"], year=2024, month=3,
        format="pdf",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert "Bao-cao-CCHC-Xuan-Phuc-2024-03.pdf" in r.headers["content-disposition"]
    path = tmp_path / "march.pdf"
    path.write_bytes(r.content)
    flat = " ".join(pdf_text(path).split())
    assert "Kết quả tuyên truyền cải cách hành chính tháng 3 năm 2024" in flat
    assert "1/1 tháng đạt yêu cầu (100,0%)" in flat
    assert "2/4 buổi đến hạn đã phát (50,0%)" in flat


def test_who_may_see_it(client: TestClient, year: dict[str, Any], headers: dict[str, Any]) -> None:
    sid = year["station_id"]
    assert get(client, {}, station_id=sid, year=2024).status_code == 401
    assert get(client, headers["admin"], station_id=sid, year=2024).status_code == 200
    r = get(client, headers["stranger"], station_id=sid, year=2024)
    assert r.status_code == 404 and "station" in r.json()["detail"]
    r = get(client, headers["stranger"], station_id=sid, year=2024, format="pdf")
    assert r.status_code == 404
    assert get(client, headers["viewer"], station_id=999_999, year=2024).status_code == 404
    # Their own station's report is theirs to read.
    r = get(client, headers["stranger"], station_id=year["other_station_id"], year=2024)
    assert r.status_code == 200
    march = r.json()["months"][2]
    assert (march["aired"], march["aired_ms"], march["compliant"]) == (1, 720000, True)


BAD_PARAMETERS = [
    ({"year": "abc"}, "year"),
    ({"year": "1999"}, "year"),
    ({}, "year"),
    ({"year": "2024", "month": "13"}, "month"),
    ({"year": "2024", "month": "2023-03"}, "month"),
    ({"year": "2024", "format": "docx"}, "format"),
    ({"year": "2024", "format": "csv", "view": "everything"}, "view"),
    ({"station_id": "x", "year": "2024"}, "station_id"),
]


def test_bad_parameters_are_named(client: TestClient, database_url: str) -> None:
    ids = make_station()
    make_user("viewer1", Role.viewer, ids["station_id"])
    viewer = login(client, "viewer1")
    for params, named in BAD_PARAMETERS:
        r = get(client, viewer, **{"station_id": ids["station_id"], **params})
        assert r.status_code == 422, (params, r.text)
        assert r.json()["detail"].startswith(f"{named}:"), (params, r.json())
