"""The report as it gets signed: station settings, issuing numbered copies, the PDF."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.accounts.models import Role
from app.db import unit_of_work
from app.reports import issue, pdf
from app.reports.models import IssuedReport
from app.reports.service import Period
from app.stations import document
from tests.helpers import login, make_user, user
from tests.reports.conftest import NOW
from tests.reports.test_compliance_api import pdf_text

URL = "/api/v1/reports/compliance"
ISSUE = "/api/v1/reports/compliance/issue"
RECIPIENTS = ["Như trên;", "UBND huyện Như Thanh;", "Đảng ủy xã;", "Lưu: VT, VP."]
SIGNING = {
    "report_number_pattern": "{n}/BC-UBND",
    "report_signer_name": "Lê Văn Hùng",
    "report_signer_title": "Phó Chủ tịch",
    "report_recipients": RECIPIENTS,
}


@pytest.fixture
def approver(client: TestClient, year: dict[str, Any], headers: dict[str, Any]) -> dict[str, str]:
    make_user("approver1", Role.approver, year["station_id"])
    return login(client, "approver1")


def _pdf(client: TestClient, h: dict[str, str], tmp_path: Path, **params: Any) -> str:
    r = client.get(URL, params={**params, "format": "pdf"}, headers=h)
    assert r.status_code == 200, r.text
    path = tmp_path / "r.pdf"
    path.write_bytes(r.content)
    return pdf_text(path)


def test_station_signing_settings(
    client: TestClient, year: dict[str, Any], headers: dict[str, Any], approver: dict[str, str]
) -> None:
    sid = year["station_id"]
    url = f"/api/v1/stations/{sid}"
    r = client.patch(url, json=SIGNING, headers=headers["admin"])
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in SIGNING} == SIGNING
    assert client.get(url, headers=headers["viewer"]).json()["report_signer_name"] == "Lê Văn Hùng"
    # Only the fields sent change; null restores the default.
    r = client.patch(url, json={"report_signer_name": None}, headers=headers["admin"])
    assert r.json()["report_signer_name"] is None
    assert r.json()["report_signer_title"] == "Phó Chủ tịch"
    assert client.patch(url, json=SIGNING, headers=approver).status_code == 403

    bad = [
        ({"report_signer_title": "Phó Chủ tịch Ủy ban nhân dân xã"}, "report_signer_title"),
        ({"report_number_pattern": "BC-UBND"}, "report_number_pattern"),
        ({"report_number_pattern": "{n}/{n}-BC"}, "report_number_pattern"),
        ({"report_number_pattern": "{so}/BC-UBND"}, "report_number_pattern"),
        ({"report_recipients": []}, "report_recipients"),
        ({"report_recipients": ["Như trên;\nLưu: VT"]}, "report_recipients.0"),
        ({"report_signer_name": " "}, "report_signer_name"),
        ({"network_kind": "ip"}, "network_kind"),
    ]
    for body, field in bad:
        r = client.patch(url, json=body, headers=headers["admin"])
        assert r.status_code == 422, body
        assert r.json()["detail"].startswith(f"{field}: "), r.json()["detail"]
    r = client.patch(url, json=bad[0][0], headers=headers["admin"])
    assert "at most 24 characters" in r.json()["detail"]
    missing = client.patch("/api/v1/stations/999999", json={}, headers=headers["admin"])
    assert missing.status_code == 404


def test_issue_numbers_copies_and_get_never_allocates(
    client: TestClient, year: dict[str, Any], headers: dict[str, Any], approver: dict[str, str]
) -> None:
    sid = year["station_id"]
    client.patch(f"/api/v1/stations/{sid}", json=SIGNING, headers=headers["admin"])
    # Reading, in every format, numbers nothing.
    for fmt in ("json", "csv", "xlsx", "pdf"):
        r = client.get(URL, params={"station_id": sid, "year": 2024, "format": fmt},
                       headers=headers["viewer"])  # fmt: skip
        assert r.status_code == 200
    draft = client.get(URL, params={"station_id": sid, "year": 2024}, headers=headers["viewer"])
    assert draft.json()["document"]["number"] == "…/BC-UBND"
    assert client.get("/api/v1/reports/compliance/issued", params={"station_id": sid},
                      headers=headers["viewer"]).json() == []  # fmt: skip

    def post(**body: Any) -> Any:
        return client.post(ISSUE, json={"station_id": sid, "year": 2024, **body}, headers=approver)

    first = post()
    assert first.status_code == 201, first.text
    one = first.json()
    # Issued in January 2025: the 2025 register; below 10 with a leading zero (Decree 30).
    assert (one["number"], one["document_number"], one["register_year"]) == (1, "01/BC-UBND", 2025)
    assert (one["year"], one["month"], one["issued_by"]) == (2024, None, "approver1")
    assert one["issued_at"] == NOW.isoformat().replace("+00:00", "Z")
    second = post(month=3).json()
    assert (second["number"], second["month"]) == (2, "2024-03")
    given = post(number=17)
    assert given.status_code == 201 and given.json()["document_number"] == "17/BC-UBND"
    assert post().json()["number"] == 18  # the next after the highest
    dup = post(number=2)
    assert dup.status_code == 409
    assert dup.json()["detail"].startswith("number: 2 is already in")
    assert post(number=0).status_code == 422
    assert post(month=13).status_code == 422
    assert client.post(ISSUE, json={"station_id": sid, "year": 2024},
                       headers=headers["viewer"]).status_code == 403  # fmt: skip
    make_user("approver-other", Role.approver, year["other_station_id"])
    other = client.post(ISSUE, json={"station_id": sid, "year": 2024},
                        headers=login(client, "approver-other"))  # fmt: skip
    assert other.status_code == 404

    register = client.get("/api/v1/reports/compliance/issued", params={"station_id": sid},
                          headers=headers["viewer"]).json()  # fmt: skip
    assert [r["number"] for r in register] == [18, 17, 2, 1]

    # The issued copy as issued: its number, the signer of the day, the same figures.
    copy = client.get(URL, params={"station_id": sid, "issued_id": one["id"]},
                      headers=headers["viewer"]).json()  # fmt: skip
    assert copy["document"]["number"] == "01/BC-UBND"
    assert copy["document"]["issued"]["id"] == one["id"]
    assert copy["months"] == draft.json()["months"]
    assert issue.snapshot_sha256(copy) == one["sha256"]
    # GET still does not allocate: the draft is unnumbered, and the next issue is 19.
    again = client.get(URL, params={"station_id": sid, "year": 2024}, headers=headers["viewer"])
    assert again.json()["document"]["number"] == "…/BC-UBND"
    assert post().json()["number"] == 19
    # The copy's period, if given, must be its own; a copy of another station is not found.
    r = client.get(URL, params={"station_id": sid, "issued_id": one["id"], "year": 2023},
                   headers=headers["viewer"])  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"].startswith("year:")
    r = client.get(URL, params={"station_id": year["other_station_id"], "issued_id": one["id"]},
                   headers=headers["admin"])  # fmt: skip
    assert r.status_code == 404


def test_pdf_signer_block_number_and_recipients(
    client: TestClient,
    year: dict[str, Any],
    headers: dict[str, Any],
    approver: dict[str, str],
    tmp_path: Path,
) -> None:
    sid = year["station_id"]
    client.patch(f"/api/v1/stations/{sid}", json=SIGNING, headers=headers["admin"])
    draft = _pdf(client, headers["viewer"], tmp_path, station_id=sid, year=2024)
    assert "Số: …/BC-UBND" in draft
    lines = [line.strip() for line in draft.splitlines()]
    # Decree 30: a deputy signs for the head, under the committee.
    i = lines.index("TM. ỦY BAN NHÂN DÂN")
    assert [x for x in lines[i + 1 :] if x][:3] == ["KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Lê Văn Hùng"]
    for recipient in RECIPIENTS:
        assert f"- {recipient}" in draft, recipient
    assert "UBND huyện (Phòng Nội vụ)" not in draft  # the defaults gave way

    issued = client.post(ISSUE, json={"station_id": sid, "year": 2024, "number": 5},
                         headers=approver).json()  # fmt: skip
    # The signer changes afterwards: the issued copy keeps the one it was issued with.
    client.patch(
        f"/api/v1/stations/{sid}",
        json={"report_signer_title": "Chủ tịch", "report_signer_name": "Nguyễn Thị Lan"},
        headers=headers["admin"],
    )
    copy = _pdf(client, headers["viewer"], tmp_path, station_id=sid, issued_id=issued["id"])
    assert "Số: 05/BC-UBND" in copy and "…/BC-UBND" not in copy
    assert "KT. CHỦ TỊCH" in copy and "Lê Văn Hùng" in copy
    now = _pdf(client, headers["viewer"], tmp_path, station_id=sid, year=2024)
    lines = [line.strip() for line in now.splitlines()]
    i = lines.index("TM. ỦY BAN NHÂN DÂN")
    assert [x for x in lines[i + 1 :] if x][:2] == ["CHỦ TỊCH", "Nguyễn Thị Lan"]
    assert "KT. CHỦ TỊCH" not in now


def test_the_longest_title_fits_the_signature_column() -> None:
    from reportlab.pdfbase import pdfmetrics

    f = pdf.fonts()
    column = pdf.FRAME_WIDTH * 0.52
    # The longest title the API takes stays on one line, at 12 pt or more (13 pt as a rule;
    # the PDF shrinks a line only as much as it must).
    for title in ("Phó Trưởng ban thường trực", "Phó Chủ tịch Ủy ban nhân", "Q. Chủ tịch UBND xã"):
        title = title[: document.MAX_TITLE]
        for line in pdf.signature_lines(title, document.signs_for(title)):
            size = pdf._one_line(line, pdf._Styles(f).signature, column).style.fontSize
            assert 12 <= size <= 13, line
            assert pdfmetrics.stringWidth(line, f.bold, size) <= column, line
    assert pdfmetrics.stringWidth("KT. CHỦ TỊCH", f.bold, 13) <= column
    assert document.signs_for("Phó Chủ tịch") == "Chủ tịch"
    assert document.signs_for("Chủ tịch") is None
    assert document.document_number("{n}/BC-UBND", number=5, year=2025) == "05/BC-UBND"
    assert document.document_number("{n}/{year}/BC", number=123, year=2025) == "123/2025/BC"
    assert document.unnumbered("{n}/BC-UBND", year=2025) == "…/BC-UBND"


def test_concurrent_issues_never_share_a_number(
    year: dict[str, Any], headers: dict[str, Any], approver: dict[str, str]
) -> None:
    sid = year["station_id"]
    approver_id = make_user("approver2", Role.approver, sid)
    workers = 4
    barrier = threading.Barrier(workers)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            with unit_of_work() as s:
                row = issue.issue_report(
                    s, station_id=sid, period=Period(2024), user=user(s, approver_id)
                )
                number = row.number
            numbers.append(number)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == [1, 2, 3, 4]
    with unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(IssuedReport)) == workers
