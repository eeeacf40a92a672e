"""The words the console shows for codes: statuses, topics, roles.

Each status has a word and a symbol as well as a colour class, so that it is never told by
colour alone. Values are message ids (Vietnamese); templates translate them with `_()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.console.i18n import N_


@dataclass(frozen=True)
class StatusLabel:
    text: str  # message id
    symbol: str  # shown before the word, hidden from screen readers
    tone: str  # CSS class suffix: neutral, info, good, warn, bad


SEGMENT_STATUS = {
    "draft": StatusLabel(N_("Bản nháp"), "✎", "neutral"),
    "submitted": StatusLabel(N_("Chờ duyệt"), "…", "info"),
    "approved": StatusLabel(N_("Đã duyệt"), "✓", "good"),
}

# For the schedule pages (second half of the console).
BROADCAST_STATUS = {
    "planned": StatusLabel(N_("Đã lên lịch"), "○", "neutral"),
    "filled": StatusLabel(N_("Đã có nội dung"), "◐", "info"),
    "assembled": StatusLabel(N_("Đã ghép"), "●", "info"),
    "aired": StatusLabel(N_("Đã phát"), "✓", "good"),
    "missed": StatusLabel(N_("Bị lỡ"), "✗", "bad"),
    "cancelled": StatusLabel(N_("Đã hủy"), "–", "neutral"),
}

TOPICS = {
    "progress": N_("Tình hình, kết quả thực hiện CCHC"),
    "discipline": N_("Kỷ luật, kỷ cương hành chính"),
    "commendation": N_("Biểu dương điển hình"),
    "criticism": N_("Phê bình, rút kinh nghiệm"),
    "negative-conduct": N_("Tiêu cực, nhũng nhiễu, phiền hà"),
    "citizen-feedback": N_("Phản ánh, kiến nghị của người dân"),
    "policy": N_("Chủ trương, chính sách, pháp luật"),
    "one-stop-desk": N_("Bộ phận tiếp nhận và trả kết quả"),
    "procedures": N_("Thủ tục hành chính"),
    "disclosure": N_("Nội dung công khai với nhân dân"),
    "indices": N_("Chỉ số PAR INDEX, PAPI, SIPAS, PCI"),
    "emergency": N_("Thiên tai, dịch bệnh"),
    "other": N_("Khác"),
}

ROLES = {
    "viewer": N_("Lãnh đạo (xem báo cáo)"),
    "editor": N_("Biên tập (Ban văn hóa)"),
    "approver": N_("Duyệt (Văn phòng UBND)"),
    "admin": N_("Quản trị"),
}

AUDIO_ORIGIN = {
    "upload": N_("Tệp tải lên"),
    "tts": N_("Giọng đọc máy"),
}

# Which voice read a text-to-speech draft, in plain words (never an engine's name); the
# offline one is just "Giọng đọc máy".
TTS_VOICES = {
    "gtts": N_("giọng Google"),
}

# Audit actions on a segment, for its history.
SEGMENT_ACTIONS = {
    "segment.create": N_("Tạo tin bài"),
    "segment.update": N_("Sửa"),
    "segment.audio": N_("Gắn tệp âm thanh"),
    "segment.tts": N_("Tạo giọng đọc máy"),
    "segment.submit": N_("Gửi duyệt"),
    "segment.withdraw": N_("Rút lại"),
    "segment.audio-restore": N_("Khôi phục âm thanh cũ"),
    "segment.approve": N_("Duyệt"),
    "segment.reject": N_("Trả lại"),
    "segment.delete": N_("Xóa bản nháp"),
}
