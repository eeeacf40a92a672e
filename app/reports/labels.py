"""The report's words: topics as the plan names them, and each month's result."""

from __future__ import annotations

from app.segments.models import Topic

# The plan's own words for each topic (sections 2.2 to 2.4).
TOPIC_LABELS: dict[str, str] = {
    Topic.progress: "Tình hình, kết quả thực hiện CCHC",
    Topic.discipline: "Kỷ luật, kỷ cương hành chính",
    Topic.commendation: "Biểu dương điển hình làm tốt",
    Topic.criticism: "Phê bình, rút kinh nghiệm",
    Topic.negative_conduct: "Tiêu cực, nhũng nhiễu, phiền hà",
    Topic.citizen_feedback: "Phản ánh, kiến nghị của người dân",
    Topic.policy: "Chủ trương, chính sách, pháp luật về CCHC",
    Topic.one_stop_desk: "Bộ phận tiếp nhận và trả kết quả",
    Topic.procedures: "Thủ tục hành chính",
    Topic.disclosure: "Nội dung công khai với nhân dân",
    Topic.indices: "Chỉ số PAR INDEX, PAPI, SIPAS, PCI",
    Topic.emergency: "Thiên tai, dịch bệnh (khẩn cấp)",
    Topic.other: "Nội dung khác",
}

RESULT_LABELS: dict[str, str] = {
    "compliant": "Đạt",
    "not-aired": "Không phát",
    "interrupted": "Bị ngắt",
    "too-short": "Thiếu thời lượng",
    "too-long": "Vượt thời lượng",
    "aired-too-often": "Phát quá số lần",
    "too-few": "Phát chưa đủ số lần",
    "pending": "Chưa đến hạn",
    "villages-missing": "Chưa phát đủ các thôn",
}
