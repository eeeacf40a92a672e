"""Domain errors in words a commune official reads: Vietnamese (or English), never a trace.

Services raise `LoaxaError`s with English, technical messages for API clients. The console
says what happened and what to do in the person's language, and keeps the technical text
as a detail in brackets for whoever they call for help.
"""

from __future__ import annotations

from app.config import get_settings
from app.console.i18n import _, format_duration
from app.errors import (
    Conflict,
    Forbidden,
    Invalid,
    LoaxaError,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    ServiceUnavailable,
)


def stale_message() -> str:
    return _(
        "Đã có người khác sửa mục này sau khi bạn mở trang, nên thay đổi của bạn chưa được "
        "lưu. Nội dung bạn nhập vẫn còn bên dưới; hãy xem bản mới rồi lưu lại."
    )


def audio_rejected_message(code: str) -> str:
    """Why the audio pipeline refused an upload, by its refusal code."""
    settings = get_settings()
    messages = {
        "not_audio": _(
            "Tệp này không phải tệp âm thanh. Hãy chọn tệp MP3, WAV, OGG, M4A hoặc FLAC."
        ),
        "corrupt": _("Tệp âm thanh bị hỏng hoặc chưa tải lên hết. Hãy thử lại với tệp khác."),
        "empty": _("Tệp âm thanh trống."),
        "silent": _("Tệp âm thanh im lặng từ đầu đến cuối. Hãy kiểm tra micrô rồi ghi lại."),
        "too_short": _("Bản ghi quá ngắn: tối thiểu %(min)s.")
        % {"min": format_duration(settings.min_audio_ms)},
        "too_long": _("Bản ghi quá dài: tối đa %(max)s.")
        % {"max": format_duration(settings.max_audio_ms)},
    }
    return messages.get(code, _("Tệp âm thanh không dùng được."))


def describe_error(exc: LoaxaError) -> str:
    """A sentence for the person, with the technical message in brackets where it helps."""
    detail = exc.message
    cause = exc.__cause__
    code = getattr(cause, "code", None)
    if isinstance(exc, Invalid) and isinstance(code, str):
        return audio_rejected_message(code)
    if isinstance(exc, PreconditionFailed | PreconditionRequired):
        return stale_message()
    if isinstance(exc, Conflict) and "changed by someone else" in detail:
        return stale_message()
    if isinstance(exc, NotFound):
        return _("Không tìm thấy mục này; có thể nó đã bị xóa.")
    if isinstance(exc, Forbidden):
        return _("Bạn không có quyền làm việc này.")
    if isinstance(exc, PayloadTooLarge):
        limit = get_settings().max_upload_bytes // (1024 * 1024)
        return _("Tệp quá lớn: tối đa %(mb)s MB.") % {"mb": limit}
    if isinstance(exc, ServiceUnavailable):
        return _("Dịch vụ tạm thời không dùng được; hãy thử lại sau.") + f" ({detail})"
    if isinstance(exc, Conflict):
        return _("Không làm được việc này ở trạng thái hiện tại.") + f" ({detail})"
    return _("Chưa làm được:") + f" {detail}"
