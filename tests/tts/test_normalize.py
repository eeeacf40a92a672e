"""Tests of the script normaliser and splitter: exact readings, validation, chunking.

Most sentences come from the customer's plan (tests/tts/data/, copied from shared/docs/);
the rest are typical commune announcements: meeting times, money, hotlines, dates, documents.
No database, no network.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from app.tts.normalize import (
    BUILTIN_ABBREVIATIONS,
    ScriptProblem,
    _is_syllable,
    normalize,
    read_day,
    read_decimal,
    read_digits,
    read_month,
    read_number,
    read_phone,
    unknown_abbreviations,
    validate_script,
)
from app.tts.splitting import chunk, paragraphs, split_sentences
from app.tts.tables import DOCUMENT_TYPES, ISSUERS

# A copy of shared/docs/ke-hoach-tuyen-truyen-cchc-2024.txt, kept in the repository so that
# a clone anywhere (CI's included) runs these tests instead of skipping them.
PLAN = Path(__file__).resolve().parent / "data" / "ke-hoach-tuyen-truyen-cchc-2024.txt"


@pytest.fixture(scope="module")
def plan_text() -> str:
    return PLAN.read_text(encoding="utf-8")


SENTENCES: list[tuple[str, str]] = [
    (
        "Kế hoạch số 78/KH-UBND ngày 30/12/2023 của UBND huyện về thực hiện cải cách hành chính"
        " huyện Như Thanh năm 2024;",
        "Kế hoạch số bảy mươi tám ngày ba mươi tháng mười hai năm hai"
        " nghìn không trăm hai mươi ba của ủy ban nhân dân huyện về thực hiện cải cách hành chính"
        " huyện Như Thanh năm hai nghìn không trăm hai mươi tư;",
    ),
    (
        "Kế hoạch số 04/KH-UBND ngày 04/01/2024 của UBND xã về thực hiện Cải cách hành chính xã"
        " Xuân Phúc năm 2024.",
        "Kế hoạch số bốn ngày mồng bốn tháng một năm hai nghìn không"
        " trăm hai mươi tư của ủy ban nhân dân xã về thực hiện Cải cách hành chính xã Xuân Phúc"
        " năm hai nghìn không trăm hai mươi tư.",
    ),
    (
        "Xuân Phúc, ngày tháng 01 năm 2024",
        "Xuân Phúc, ngày tháng một năm hai nghìn không trăm hai mươi tư.",
    ),
    (
        "I. MỤC ĐÍCH, YÊU CẦU",
        "Phần một. Mục đích, yêu cầu.",
    ),
    (
        "II. NỘI DUNG TUYÊN TRUYỀN",
        "Phần hai. Nội dung tuyên truyền.",
    ),
    (
        "IV. TỔ CHỨC THỰC HIỆN",
        "Phần bốn. Tổ chức thực hiện.",
    ),
    (
        "1. Mục đích",
        "Mục một. Mục đích.",
    ),
    (
        "2.1. Tuyên truyền các nội dung CCHC bằng nhiều hình thức phù hợp",
        "Mục hai chấm một. Tuyên truyền các nội dung cải cách hành chính bằng nhiều hình thức"
        " phù hợp.",
    ),
    (
        "2.2. Duy trì nâng cao chất lượng chuyên trang, chuyên mục CCHC trên Đài truyền thanh,"
        " Trang thông tin điện tử của xã.",
        "Mục hai chấm hai. Duy trì nâng cao chất lượng chuyên trang, chuyên mục cải cách hành"
        " chính trên Đài truyền thanh, Trang thông tin điện tử của xã.",
    ),
    (
        "- Thời gian thực hiện: Mỗi tháng 1 lần, thời lượng phát sóng mỗi lần từ 10 đến 15 phút"
        " trên Đài truyền thanh",
        "Thời gian thực hiện: Mỗi tháng một lần, thời lượng phát sóng mỗi lần từ mười đến mười lăm"
        " phút trên Đài truyền thanh.",
    ),
    (
        "- Thực hiện: Văn phòng UBND xã, Ban văn hóa xã.",
        "Thực hiện: Văn phòng ủy ban nhân dân xã, Ban văn hóa xã.",
    ),
    (
        "- + Lồng ghép, đưa các nội dung, thông tin về CCHC trong các buổi họp giao ban, họp định"
        " kỳ;",
        "Lồng ghép, đưa các nội dung, thông tin về cải cách hành chính trong các buổi họp giao"
        " ban, họp định kỳ;",
    ),
    (
        "+ Cung cấp các địa chỉ, số điện thoại đường dây nóng của cơ quan, đơn vị",
        "Cung cấp các địa chỉ, số điện thoại đường dây nóng của cơ quan, đơn vị.",
    ),
    (
        "- Tăng cường các hoạt động tuyên truyền về CCHC, trọng tâm là cải cách thủ tục hành chính"
        " bằng nhiều hình thức, thiết thực, hiệu quả;",
        "Tăng cường các hoạt động tuyên truyền về cải cách hành chính, trọng tâm là cải cách thủ"
        " tục hành chính bằng nhiều hình thức, thiết thực, hiệu quả;",
    ),
    (
        "cách thức thực hiện thủ tục hành chính trực tuyến ở mức độ 3, 4 và qua dịch vụ bưu chính"
        " công ích.",
        "Cách thức thực hiện thủ tục hành chính trực tuyến ở mức độ ba, bốn và qua dịch vụ bưu"
        " chính công ích.",
    ),
    (
        "2.4. Tuyên truyền, phổ biến kết quả các chỉ số CCHC (PARINDEX), Chỉ số Hiệu quả Quản trị"
        " và Hành chính công (PAPI); Chỉ số HÀi lòng của người dân đối với sự phục vụ của cơ quan"
        " hành chính nhà nước (SIPAS); Chỉ số năng lực cạnh tranh cấp tỉnh (PCI) thông qua các tài"
        " liệu.",
        "Mục hai chấm bốn. Tuyên truyền, phổ biến kết quả các chỉ số cải cách hành chính, Chỉ số"
        " Hiệu quả Quản trị và Hành chính công; Chỉ số hài lòng của người dân đối với sự phục vụ"
        " của cơ quan hành chính nhà nước; Chỉ số năng lực cạnh tranh cấp tỉnh thông qua các tài"
        " liệu.",
    ),
    (
        "- Thời gian thực hiện: Trong năm 2024",
        "Thời gian thực hiện: Trong năm hai nghìn không trăm hai mươi tư.",
    ),
    (
        "- Thực hiện: Văn phòng UBND, Tài chính - Kế hoạch. Ban Văn hóa xã.",
        "Thực hiện: Văn phòng ủy ban nhân dân, Tài chính Kế hoạch. Ban Văn hóa xã.",
    ),
    (
        "- Phối hợp: Các Đoàn thể chính trị - xã hội của xã.",
        "Phối hợp: Các Đoàn thể chính trị xã hội của xã.",
    ),
    (
        "- Chủ trì: Ban văn hóa. Văn phòng UBND.",
        "Chủ trì: Ban văn hóa. Văn phòng ủy ban nhân dân.",
    ),
    (
        "Đề nghị phản ánh về Văn phòng UBND xã để xem xét, giải quyết./.",
        "Đề nghị phản ánh về Văn phòng ủy ban nhân dân xã để xem xét, giải quyết.",
    ),
    (
        "- TT Đảng ủy, HĐND xã;",
        "Thường trực Đảng ủy, hội đồng nhân dân xã;",
    ),
    (
        "- Chủ tịch, phó Chủ tịch xã ;",
        "Chủ tịch, phó Chủ tịch xã;",
    ),
    (
        "- MTTQ, các đoàn thể xã ;",
        "Mặt trận tổ quốc, các đoàn thể xã;",
    ),
    (
        "- Lưu: VT,VP.",
        "Lưu: văn thư, văn phòng.",
    ),
    (
        "CHỦ TỊCH",
        "Chủ tịch.",
    ),
    (
        "5. Kinh phí thực hiện",
        "Mục năm. Kinh phí thực hiện.",
    ),
    (
        "Cán bộ, công chức, viên chức làm việc trong cơ quan hành chính nhà nước, các tổ chức"
        " chính trị - xã hội.",
        "Cán bộ, công chức, viên chức làm việc trong cơ quan hành chính nhà nước, các tổ chức"
        " chính trị xã hội.",
    ),
    (
        "Nghị định 30/2020/NĐ-CP về công tác văn thư.",
        "Nghị định số ba mươi năm hai nghìn không trăm hai mươi của Chính phủ về công tác văn thư.",
    ),
    (
        "Thông tư số 39/2020/TT-BTTTT quy định về quản lý đài truyền thanh cấp xã.",
        "Thông tư số ba mươi chín năm hai nghìn không trăm hai mươi của Bộ Thông tin và Truyền"
        " thông quy định về quản lý đài truyền thanh cấp xã.",
    ),
    (
        "Quyết định số 1234/QĐ-UBND ngày 15/3/2024 của Chủ tịch UBND tỉnh.",
        "Quyết định số một nghìn hai trăm ba mươi tư ngày mười lăm tháng ba năm hai nghìn không"
        " trăm hai mươi tư của Chủ tịch ủy ban nhân dân tỉnh.",
    ),
    (
        "Thông báo số 12/TB-UBND ngày 05/02/2024.",
        "Thông báo số mười hai của ủy ban nhân dân ngày mồng năm tháng hai năm hai nghìn không"
        " trăm hai mươi tư.",
    ),
    (
        "Số: 56/UBND-VP",
        "Số năm mươi sáu của ủy ban nhân dân.",
    ),
    (
        "Đề nghị CBCCVC thực hiện nghiêm kỷ luật, kỷ cương hành chính.",
        "Đề nghị cán bộ, công chức, viên chức thực hiện nghiêm kỷ luật, kỷ cương hành chính.",
    ),
    (
        "UBMTTQ xã phối hợp với HĐND, UBND tổ chức hội nghị.",
        "Ủy ban mặt trận tổ quốc xã phối hợp với hội đồng nhân dân, ủy ban nhân dân tổ chức hội"
        " nghị.",
    ),
    (
        "Kết quả chỉ số PAR INDEX năm 2023 của tỉnh tăng 5 bậc.",
        "Kết quả chỉ số cải cách hành chính năm hai nghìn không trăm hai mươi ba của tỉnh tăng năm"
        " bậc.",
    ),
    (
        "Chỉ số PAPI và chỉ số SIPAS năm 2023.",
        "Chỉ số hiệu quả quản trị và hành chính công cấp tỉnh và chỉ số hài lòng về sự phục vụ"
        " hành chính năm hai nghìn không trăm hai mươi ba.",
    ),
    (
        "Học sinh các trường THCS, THPT trên địa bàn.",
        "Học sinh các trường trung học cơ sở, trung học phổ thông trên địa bàn.",
    ),
    (
        "Ứng dụng CNTT trong giải quyết TTHC.",
        "Ứng dụng công nghệ thông tin trong giải quyết thủ tục hành chính.",
    ),
    (
        "Sở TTTT và Bộ TTTT hướng dẫn thực hiện.",
        "Sở thông tin và truyền thông và Bộ thông tin và truyền thông hướng dẫn thực hiện.",
    ),
    (
        "Nước CHXHCN Việt Nam.",
        "Nước cộng hòa xã hội chủ nghĩa Việt Nam.",
    ),
    (
        "Hội nghị sơ kết 6 tháng đầu năm sẽ họp vào lúc 7h30 sáng thứ 2, ngày 15/7/2024.",
        "Hội nghị sơ kết sáu tháng đầu năm sẽ họp vào lúc bảy giờ ba mươi phút sáng thứ hai, ngày"
        " mười lăm tháng bảy năm hai nghìn không trăm hai mươi tư.",
    ),
    (
        "Cuộc họp bắt đầu lúc 14h, kết thúc lúc 17h30.",
        "Cuộc họp bắt đầu lúc mười bốn giờ, kết thúc lúc mười bảy giờ ba mươi phút.",
    ),
    (
        "Thời gian: từ 7 giờ 15 đến 11 giờ.",
        "Thời gian: từ bảy giờ mười lăm đến mười một giờ.",
    ),
    (
        "Buổi tiếp công dân từ 7h30-11h00 thứ 5 hằng tuần.",
        "Buổi tiếp công dân từ bảy giờ ba mươi phút đến mười một giờ thứ năm hằng tuần.",
    ),
    (
        "Thời lượng mỗi buổi phát từ 10-15 phút.",
        "Thời lượng mỗi buổi phát từ mười đến mười lăm phút.",
    ),
    (
        "Lệ phí cấp bản sao là 1.250.000 đồng.",
        "Lệ phí cấp bản sao là một triệu hai trăm năm mươi nghìn đồng.",
    ),
    (
        "Mức hỗ trợ 500.000đ/người/tháng.",
        "Mức hỗ trợ năm trăm nghìn đồng một người một tháng.",
    ),
    (
        "Tổng kinh phí 2.350.000.000 đồng.",
        "Tổng kinh phí hai tỷ ba trăm năm mươi triệu đồng.",
    ),
    (
        "Mức đóng BHYT hộ gia đình là 1.105.650 đồng/năm.",
        "Mức đóng bảo hiểm y tế hộ gia đình là một triệu một trăm linh năm nghìn sáu trăm năm mươi"
        " đồng một năm.",
    ),
    (
        "Tỷ lệ hồ sơ trực tuyến đạt 2,5%.",
        "Tỷ lệ hồ sơ trực tuyến đạt hai phẩy năm phần trăm.",
    ),
    (
        "Tỷ lệ giải quyết đúng hạn đạt 100%.",
        "Tỷ lệ giải quyết đúng hạn đạt một trăm phần trăm.",
    ),
    (
        "Tỷ lệ hài lòng tăng từ 85% lên 92,75%.",
        "Tỷ lệ hài lòng tăng từ tám mươi lăm phần trăm lên chín mươi hai phẩy bảy mươi lăm phần"
        " trăm.",
    ),
    (
        "Mọi ý kiến phản ánh xin gọi đường dây nóng: 0237.3123.456.",
        "Mọi ý kiến phản ánh xin gọi đường dây nóng: không hai ba bảy, ba một hai ba, bốn năm sáu.",
    ),
    (
        "Liên hệ đồng chí Văn phòng, số điện thoại 0912 345 678.",
        "Liên hệ đồng chí Văn phòng, số điện thoại không chín một hai, ba bốn năm, sáu bảy tám.",
    ),
    (
        "Hotline hỗ trợ dịch vụ công: 0912345678.",
        "Hotline hỗ trợ dịch vụ công: không chín một hai, ba bốn năm, sáu bảy tám.",
    ),
    (
        "Khi có cháy, gọi ngay 114.",
        "Khi có cháy, gọi ngay một một bốn.",
    ),
    (
        "Ngày 04 tháng 01 năm 2024, UBND xã ban hành kế hoạch.",
        "Ngày mồng bốn tháng một năm hai nghìn không trăm hai mươi tư, ủy ban nhân dân xã ban hành"
        " kế hoạch.",
    ),
    (
        "Từ ngày 01/4 đến ngày 30/4/2024, tổ chức tiêm phòng cho đàn gia súc.",
        "Từ ngày mồng một tháng tư đến ngày ba mươi tháng tư năm hai nghìn không trăm hai mươi tư,"
        " tổ chức tiêm phòng cho đàn gia súc.",
    ),
    (
        "Hạn nộp hồ sơ trước ngày 10/5/2024.",
        "Hạn nộp hồ sơ trước ngày mồng mười tháng năm năm hai nghìn không trăm hai mươi tư.",
    ),
    (
        "Tháng 4 năm 2024, xã tổ chức ra quân vệ sinh môi trường.",
        "Tháng tư năm hai nghìn không trăm hai mươi tư, xã tổ chức ra quân vệ sinh môi trường.",
    ),
    (
        "Báo cáo kết quả Quý IV/2024 trước ngày 20/12.",
        "Báo cáo kết quả Quý bốn năm hai nghìn không trăm hai mươi tư trước ngày hai mươi tháng"
        " mười hai.",
    ),
    (
        "Chào mừng Đại hội XIII của Đảng.",
        "Chào mừng Đại hội mười ba của Đảng.",
    ),
    (
        "Thôn 3 có 105 hộ, thôn 5 có 1.005 nhân khẩu.",
        "Thôn ba có một trăm linh năm hộ, thôn năm có một nghìn không trăm linh năm nhân khẩu.",
    ),
    (
        "Năm 2021 đạt 21 tiêu chí, năm 2024 đạt 24 tiêu chí.",
        "Năm hai nghìn không trăm hai mươi mốt đạt hai mươi mốt tiêu chí, năm hai nghìn không trăm"
        " hai mươi tư đạt hai mươi tư tiêu chí.",
    ),
    (
        "Đ/c Mã Văn Hùng, CT UBND xã chủ trì hội nghị.",
        "Đồng chí Mã Văn Hùng, chủ tịch ủy ban nhân dân xã chủ trì hội nghị.",
    ),
    (
        "KẾ HOẠCH",
        "Kế hoạch.",
    ),
    (
        "THÔNG BÁO KHẨN: Bão số 3 đổ bộ vào đêm nay.",
        "Thông báo khẩn: Bão số ba đổ bộ vào đêm nay.",
    ),
    (
        "Bà con mang theo CCCD hoặc CMND, sổ hộ khẩu, v.v. Đến đúng giờ.",
        "Bà con mang theo căn cước công dân hoặc chứng minh nhân dân, sổ hộ khẩu, vân vân. Đến"
        " đúng giờ.",
    ),
    (
        "Phấn đấu 100% hộ dân tham gia BHYT, BHXH tự nguyện.",
        "Phấn đấu một trăm phần trăm hộ dân tham gia bảo hiểm y tế, bảo hiểm xã hội tự nguyện.",
    ),
    (
        "Đóng góp quỹ phòng chống thiên tai (PCTT) 20.000 đồng/lao động.",
        "Đóng góp quỹ phòng chống thiên tai hai mươi nghìn đồng một lao động.",
    ),
    (
        "Truy cập Cổng dịch vụ công quốc gia tại dichvucong.gov.vn để nộp hồ sơ.",
        "Truy cập Cổng dịch vụ công quốc gia tại dichvucong chấm gov chấm vn để nộp hồ sơ.",
    ),
    (
        "Diện tích lúa 250,5 ha, năng suất 62 tạ/ha.",
        "Diện tích lúa hai trăm năm mươi phẩy năm héc ta, năng suất sáu mươi hai tạ một héc ta.",
    ),
    (
        "Giai đoạn 2021 - 2025, phấn đấu đạt chuẩn NTM nâng cao.",
        "Giai đoạn hai nghìn không trăm hai mươi mốt đến hai nghìn không trăm hai mươi lăm, phấn"
        " đấu đạt chuẩn nông thôn mới nâng cao.",
    ),
    (
        "* Lưu ý: ** mang theo giấy tờ tùy thân ** #quan_trọng",
        "Lưu ý: mang theo giấy tờ tùy thân quan trọng.",
    ),
    (
        "Ông Nguyễn Văn A (trưởng thôn Xuân Thành) phát biểu.",
        "Ông Nguyễn Văn A, trưởng thôn Xuân Thành, phát biểu.",
    ),
    (
        "Liên hệ số 0912-345-678 để được hỗ trợ.",
        "Liên hệ số không chín một hai, ba bốn năm, sáu bảy tám để được hỗ trợ.",
    ),
    (
        "Số điện thoại +84 912 345 678.",
        "Số điện thoại cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám.",
    ),
    (
        "Điện thoại: 3.123.456.",
        "Điện thoại: ba, một hai ba, bốn năm sáu.",
    ),
    (
        "Tổng đài 1022 hoặc 113.",
        "Tổng đài một không hai hai hoặc một một ba.",
    ),
    (
        "Lần thứ 1, thứ 4 và thứ 14.",
        "Lần thứ nhất, thứ tư và thứ mười bốn.",
    ),
    (
        "Mỗi tháng 4 lần, mỗi lần 2 buổi.",
        "Mỗi tháng bốn lần, mỗi lần hai buổi.",
    ),
    (
        "Hoàn thành 3/4 kế hoạch, trực 24/7.",
        "Hoàn thành ba phần bốn kế hoạch, trực hai mươi tư trên bảy.",
    ),
    (
        "Phòng chống dịch Covid-19 trong kỷ nguyên 4.0.",
        "Phòng chống dịch Covid mười chín trong kỷ nguyên bốn chấm không.",
    ),
    (
        "Số tài khoản 0123456789012 tại ngân hàng.",
        "Số tài khoản không một hai, ba bốn năm, sáu bảy tám, chín không một, hai tại ngân hàng.",
    ),
    (
        "Họp lúc 7h, giải lao lúc 9h00, kết thúc lúc 11h05.",
        "Họp lúc bảy giờ, giải lao lúc chín giờ, kết thúc lúc mười một giờ năm phút.",
    ),
    (
        "Tỷ lệ hộ nghèo giảm còn 0,05%.",
        "Tỷ lệ hộ nghèo giảm còn không phẩy không năm phần trăm.",
    ),
    (
        "a) Tuyên truyền trên loa phát thanh các thôn",
        "Điểm a. Tuyên truyền trên loa phát thanh các thôn.",
    ),
    (
        "Năm học 2023-2024 có 1.000.000 lượt truy cập.",
        "Năm học hai nghìn không trăm hai mươi ba đến hai nghìn không trăm hai mươi tư có một"
        " triệu lượt truy cập.",
    ),
    (
        "Sở GD&ĐT và Sở TN&MT phối hợp thực hiện.",
        "Sở giáo dục và đào tạo và Sở tài nguyên và môi trường phối hợp thực hiện.",
    ),
    (
        "Phát triển KT-XH gắn với bảo đảm QP-AN.",
        "Phát triển kinh tế xã hội gắn với bảo đảm quốc phòng an ninh.",
    ),
    (
        "Giá 15.000 đồng/kg, 300 m2/hộ, 5 tấn/ha.",
        "Giá mười lăm nghìn đồng một ki lô gam, ba trăm mét vuông một hộ, năm tấn một héc ta.",
    ),
]


@pytest.mark.parametrize(("script", "spoken"), SENTENCES)
def test_sentence_reads_as_expected(script: str, spoken: str) -> None:
    assert normalize(script) == spoken


def test_there_are_at_least_sixty_sentences() -> None:
    assert len(SENTENCES) >= 60


# --- headings and document numbers ------------------------------------------------------------

# Headings of each kind, as the plan writes them, and as an announcer reads them.
HEADINGS: list[tuple[str, str]] = [
    ("I. MỤC ĐÍCH, YÊU CẦU", "Phần một. Mục đích, yêu cầu."),
    ("II. NỘI DUNG TUYÊN TRUYỀN", "Phần hai. Nội dung tuyên truyền."),
    ("IV. TỔ CHỨC THỰC HIỆN", "Phần bốn. Tổ chức thực hiện."),
    ("II) Nội dung", "Phần hai. Nội dung."),
    ("2. Yêu cầu", "Mục hai. Yêu cầu."),
    ("1. Văn phòng UBND xã.", "Mục một. Văn phòng ủy ban nhân dân xã."),
    (
        "2.3. Tuyên truyền trên loa phát thanh, Nhà văn hóa tại các thôn",
        "Mục hai chấm ba. Tuyên truyền trên loa phát thanh, Nhà văn hóa tại các thôn.",
    ),
    ("2.1.3. Tuyên truyền trên loa", "Mục hai chấm một chấm ba. Tuyên truyền trên loa."),
    ("2.1 Tuyên truyền trên loa", "Mục hai chấm một. Tuyên truyền trên loa."),
    ("12. Kinh phí", "Mục mười hai. Kinh phí."),
    (
        "b) Tuyên truyền trên Trang thông tin điện tử",
        "Điểm bê. Tuyên truyền trên Trang thông tin điện tử.",
    ),
    ("c) Chủ trì: Ban văn hóa.", "Điểm xê. Chủ trì: Ban văn hóa."),
    ("đ) Phối hợp", "Điểm đê. Phối hợp."),
    ("a. Thời gian thực hiện", "Điểm a. Thời gian thực hiện."),
    # List marks are still dropped, and so are letters taken for roman numerals.
    ("1) Tờ khai theo mẫu", "Tờ khai theo mẫu."),
    ("(2) Bản sao căn cước công dân", "Bản sao căn cước công dân."),
    ("- + Lồng ghép", "Lồng ghép."),
    ("C. Kinh phí", "Kinh phí."),
]


@pytest.mark.parametrize(("script", "spoken"), HEADINGS)
def test_heading_numbers_are_read(script: str, spoken: str) -> None:
    assert normalize(script) == spoken


def test_a_numbered_heading_is_a_paragraph_of_its_own(plan_text: str) -> None:
    start = plan_text.index("I. MỤC ĐÍCH")
    end = plan_text.index("người đứng đầu", start) + len("người đứng đầu")
    excerpt = plan_text[start:end]
    # A short pause after the number (a sentence), a long one after the heading (a paragraph).
    assert paragraphs(normalize(excerpt))[:3] == [
        ["Phần một.", "Mục đích, yêu cầu."],
        ["Mục một.", "Mục đích."],
        ["Nâng cao nhận thức, ý thức, trách nhiệm của tập thể lãnh đạo, người đứng đầu."],
    ]
    # Also when the writer left no blank line around the heading.
    assert normalize("Thông báo:\n2. Yêu cầu\nĐến đúng giờ.") == (
        "Thông báo:\n\nMục hai. Yêu cầu.\n\nĐến đúng giờ."
    )


def test_the_plan_reads_every_heading_number(plan_text: str) -> None:
    spoken = normalize(plan_text)
    headings = [p for p in spoken.split("\n\n") if p.startswith(("Phần ", "Mục ", "Điểm "))]
    assert [h.split(".")[0] for h in headings] == [
        "Phần một", "Mục một", "Mục hai",
        "Phần hai", "Mục một", "Mục hai", "Mục hai chấm một", "Mục hai chấm hai",
        "Mục hai chấm ba", "Mục hai chấm bốn",
        "Phần bốn", "Mục một", "Mục hai", "Mục năm",
    ]  # fmt: skip


# Document numbers: the plan's own, the national documents on administrative reform and
# commune radio behind it, and the Party's. Kind and issuer are said, never spelt.
DOCUMENT_NUMBERS: list[tuple[str, str]] = [
    ("Số: 78/KH-UBND", "Kế hoạch số bảy mươi tám của ủy ban nhân dân."),
    ("Số: /KH-UBND", "Kế hoạch của ủy ban nhân dân."),
    (
        "Căn cứ Nghị quyết số 76/NQ-CP về cải cách hành chính.",
        "Căn cứ Nghị quyết số bảy mươi sáu của Chính phủ về cải cách hành chính.",
    ),
    (
        "Quyết định số 06/QĐ-TTg phê duyệt Đề án 06.",
        "Quyết định số sáu của Thủ tướng Chính phủ phê duyệt Đề án sáu.",
    ),
    (
        "QUYẾT ĐỊNH SỐ 1847/QĐ-TTG",
        "Quyết định số một nghìn tám trăm bốn mươi bảy của Thủ tướng Chính phủ.",
    ),
    (
        "Chỉ thị số 26/CT-TTg về kỷ luật, kỷ cương.",
        "Chỉ thị số hai mươi sáu của Thủ tướng Chính phủ về kỷ luật, kỷ cương.",
    ),
    ("Công điện số 01/CĐ-TTg.", "Công điện số một của Thủ tướng Chính phủ."),
    (
        "Thông tư số 01/2018/TT-VPCP hướng dẫn thi hành.",
        "Thông tư số một năm hai nghìn không trăm mười tám của Văn phòng Chính phủ hướng dẫn"
        " thi hành.",
    ),
    ("Báo cáo số 215/BC-VPCP.", "Báo cáo số hai trăm mười lăm của Văn phòng Chính phủ."),
    (
        "Nghị định số 61/2018/NĐ-CP về cơ chế một cửa.",
        "Nghị định số sáu mươi mốt năm hai nghìn không trăm mười tám của Chính phủ về cơ chế"
        " một cửa.",
    ),
    (
        "Quyết định 468/QĐ-TTg về đổi mới cơ chế một cửa.",
        "Quyết định số bốn trăm sáu mươi tám của Thủ tướng Chính phủ về đổi mới cơ chế một cửa.",
    ),
    (
        "Thực hiện theo 39/2020/TT-BTTTT.",
        "Thực hiện theo thông tư số ba mươi chín năm hai nghìn không trăm hai mươi của Bộ Thông"
        " tin và Truyền thông.",
    ),
    ("Quyết định số 1150/QĐ-BNV.", "Quyết định số một nghìn một trăm năm mươi của Bộ Nội vụ."),
    ("Văn bản hợp nhất số 05/VBHN-BNV.", "Văn bản hợp nhất số năm của Bộ Nội vụ."),
    (
        "Thông tư liên tịch số 01/2015/TTLT-BTC-BNV.",
        "Thông tư liên tịch số một năm hai nghìn không trăm mười lăm của Bộ Tài chính và Bộ Nội"
        " vụ.",
    ),
    (
        # In a document number BTC is the ministry; in running text it stays "ban tổ chức".
        "Thông tư số 02/2023/TT-BTC; BTC hội thi.",
        "Thông tư số hai năm hai nghìn không trăm hai mươi ba của Bộ Tài chính; ban tổ chức hội"
        " thi.",
    ),
    (
        "Nghị quyết số 12/2023/NQ-HĐND.",
        "Nghị quyết số mười hai năm hai nghìn không trăm hai mươi ba của hội đồng nhân dân.",
    ),
    ("Tờ trình số 45/TTr-UBND.", "Tờ trình số bốn mươi lăm của ủy ban nhân dân."),
    ("Kế hoạch số 15/KH-BCĐ.", "Kế hoạch số mười lăm của ban chỉ đạo."),
    ("Kế hoạch 12/KH-BCĐ389.", "Kế hoạch số mười hai của ban chỉ đạo ba tám chín."),
    (
        "Luật số 20/2023/QH15.",
        "Luật số hai mươi năm hai nghìn không trăm hai mươi ba của Quốc hội khóa mười lăm.",
    ),
    (
        "Nghị quyết số 35/NQ-UBTVQH15.",
        "Nghị quyết số ba mươi lăm của Ủy ban Thường vụ Quốc hội khóa mười lăm.",
    ),
    (
        "Nghị quyết số 18-NQ/TW ngày 25/10/2017.",
        "Nghị quyết số mười tám của Trung ương ngày hai mươi lăm tháng mười năm hai nghìn không"
        " trăm mười bảy.",
    ),
    ("Chỉ thị số 05-CT/TU.", "Chỉ thị số năm của Tỉnh ủy."),
    ("Kế hoạch số 10-KH/HU.", "Kế hoạch số mười của Huyện ủy."),
    (
        "Hướng dẫn số 123/HD-BTGTW.",
        "Hướng dẫn số một trăm hai mươi ba của Ban Tuyên giáo Trung ương.",
    ),
    ("Công văn số 125/SNV-CCHC.", "Công văn số một trăm hai mươi lăm của Sở Nội vụ."),
    ("Văn bản số 78/KH-UBND.", "Văn bản số bảy mươi tám của ủy ban nhân dân."),
    (
        "Thông báo kết luận số 12/TB-VPCP, ngày 5/1/2024 của Văn phòng Chính phủ.",
        "Thông báo kết luận số mười hai, ngày mồng năm tháng một năm hai nghìn không trăm hai"
        " mươi tư của Văn phòng Chính phủ.",
    ),
    (
        "Kế hoạch số 78/KH-UBND, ngày 30 tháng 12 năm 2023 do UBND huyện ban hành.",
        "Kế hoạch số bảy mươi tám, ngày ba mươi tháng mười hai năm hai nghìn không trăm hai"
        " mươi ba do ủy ban nhân dân huyện ban hành.",
    ),
    (
        "Theo Nghị quyết 76/NQ-CP và 06/QĐ-TTg.",
        "Theo Nghị quyết số bảy mươi sáu của Chính phủ và quyết định số sáu của Thủ tướng Chính"
        " phủ.",
    ),
]


@pytest.mark.parametrize(("script", "spoken"), DOCUMENT_NUMBERS)
def test_document_numbers_name_kind_and_issuer(script: str, spoken: str) -> None:
    assert normalize(script) == spoken


def test_there_are_at_least_twenty_document_numbers() -> None:
    codes = {re.search(r"[\d/-]([A-ZĐ][\w/-]*)", script).group(1) for script, _ in DOCUMENT_NUMBERS}
    assert len(codes) >= 20


def test_document_codes_come_from_the_tables() -> None:
    assert len(DOCUMENT_TYPES) + len(ISSUERS) >= 60
    for code in ("TTg", "CP", "VPCP", "BTTTT", "BNV", "UBND", "HĐND", "BCĐ", "TW", "TU"):
        assert code in ISSUERS
    for code in ("QĐ", "TT", "KH", "NĐ", "CT", "NQ", "BC", "TB", "TTr", "HD", "CĐ", "TTLT"):
        assert code in DOCUMENT_TYPES
    # Readings are words, never the letters of the code.
    for reading in (*DOCUMENT_TYPES.values(), *ISSUERS.values()):
        assert not re.search(r"[A-ZĐ]{2}", reading), reading


def test_station_dictionary_overrides_an_issuer_and_unknown_codes_are_listed() -> None:
    extra = {"UBND": "ủy ban nhân dân xã Xuân Phúc"}
    assert normalize("Kế hoạch số 04/KH-UBND.", extra) == (
        "Kế hoạch số bốn của ủy ban nhân dân xã Xuân Phúc."
    )
    assert normalize("Số 12/XYZ-ABC.") == "Số mười hai, XYZ ABC."
    assert unknown_abbreviations("Số 12/XYZ-ABC.") == ["XYZ", "ABC"]


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "spoken"),
    [
        (0, "không"),
        (1, "một"),
        (4, "bốn"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),
        (14, "mười bốn"),
        (15, "mười lăm"),
        (20, "hai mươi"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (25, "hai mươi lăm"),
        (55, "năm mươi lăm"),
        (100, "một trăm"),
        (101, "một trăm linh một"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (115, "một trăm mười lăm"),
        (121, "một trăm hai mươi mốt"),
        (1000, "một nghìn"),
        (1005, "một nghìn không trăm linh năm"),
        (1010, "một nghìn không trăm mười"),
        (2020, "hai nghìn không trăm hai mươi"),
        (2024, "hai nghìn không trăm hai mươi tư"),
        (15000, "mười lăm nghìn"),
        (105000, "một trăm linh năm nghìn"),
        (1_000_000, "một triệu"),
        (1_250_000, "một triệu hai trăm năm mươi nghìn"),
        (1_000_005, "một triệu không trăm linh năm"),
        (2_350_000_000, "hai tỷ ba trăm năm mươi triệu"),
        (1_000_000_005, "một tỷ không trăm linh năm"),
        (-3, "âm ba"),
    ],
)
def test_read_number(n: int, spoken: str) -> None:
    assert read_number(n) == spoken


def test_small_readers() -> None:
    assert read_digits("0912") == "không chín một hai"
    assert read_phone(["0237", "3123", "456"]) == "không hai ba bảy, ba một hai ba, bốn năm sáu"
    assert read_phone(["+84", "912"]) == "cộng tám bốn, chín một hai"
    assert read_decimal("2", "5") == "hai phẩy năm"
    assert read_decimal("0", "05") == "không phẩy không năm"
    assert [read_day(d) for d in (1, 4, 10, 11, 24)] == [
        "mồng một",
        "mồng bốn",
        "mồng mười",
        "mười một",
        "hai mươi tư",
    ]
    assert [read_month(m) for m in (1, 4, 12)] == ["một", "tư", "mười hai"]


# --- structure, casing, abbreviations --------------------------------------------------------


def test_paragraphs_and_lines_are_kept() -> None:
    script = (
        "THÔNG BÁO\n"
        "Về việc họp dân\n\n\n"
        "UBND xã thông báo:\n"
        "- Thời gian: 7h30 ngày 15/3/2024\n"
        "- Địa điểm: Nhà văn hóa thôn 2\n\n"
        "Đề nghị bà con đến đúng giờ"
    )
    assert normalize(script) == (
        "Thông báo.\n"
        "Về việc họp dân.\n\n"
        "Ủy ban nhân dân xã thông báo:\n"
        "Thời gian: bảy giờ ba mươi phút ngày mười lăm tháng ba năm hai nghìn không trăm hai"
        " mươi tư.\n"
        "Địa điểm: Nhà văn hóa thôn hai.\n\n"
        "Đề nghị bà con đến đúng giờ."
    )


def test_a_sentence_cut_by_a_stray_blank_line_is_joined() -> None:
    script = "kết hợp các phương tiện truyền thông với\n\nứng dụng công nghệ thông tin."
    assert normalize(script) == (
        "Kết hợp các phương tiện truyền thông với ứng dụng công nghệ thông tin."
    )


def test_output_is_nfc_even_from_decomposed_input() -> None:
    decomposed = unicodedata.normalize("NFD", "Ủy ban nhân dân xã thông báo lịch họp.")
    out = normalize(decomposed)
    assert out == "Ủy ban nhân dân xã thông báo lịch họp."
    assert unicodedata.is_normalized("NFC", out)


def test_station_dictionary_overrides_and_extends() -> None:
    extra = {"TT": "trung tâm", "BHTN": "bảo hiểm thất nghiệp", "HTX": "hợp tác xã nông nghiệp"}
    out = normalize("TT Đảng ủy, TT y tế, HTX và BHTN.", extra)
    assert out == (
        "Trung tâm Đảng ủy, trung tâm y tế, hợp tác xã nông nghiệp và bảo hiểm thất nghiệp."
    )
    assert normalize("Đóng BHTN.") == "Đóng BHTN."


def test_abbreviations_match_whole_tokens_and_case() -> None:
    assert normalize("Ubnd xã, UBNDX và ubnd.") == "Ubnd xã, UBNDX và ubnd."
    assert normalize("Lịch của UBND.") == "Lịch của ủy ban nhân dân."
    assert normalize("Liên hệ tp. Thanh Hóa", {"tp.": "thành phố"}) == (
        "Liên hệ thành phố Thanh Hóa."
    )
    assert normalize("Tp. Thanh Hóa", {"tp.": "thành phố"}) == "Thành phố Thanh Hóa."


def test_builtin_dictionary() -> None:
    assert len(BUILTIN_ABBREVIATIONS) >= 40
    for key in ("UBND", "HĐND", "CCHC", "TTHC", "MTTQ", "CBCCVC", "PAPI", "SIPAS", "PCI"):
        assert key in BUILTIN_ABBREVIATIONS
    assert BUILTIN_ABBREVIATIONS["CBCCVC"] == "cán bộ, công chức, viên chức"
    assert BUILTIN_ABBREVIATIONS["NĐ-CP"] == "nghị định chính phủ"
    assert BUILTIN_ABBREVIATIONS["PAR INDEX"] == BUILTIN_ABBREVIATIONS["PARINDEX"]
    # A key that is also an ordinary syllable would be misread in a heading in capitals
    # ("TU BỔ ĐÊ" is not "tỉnh ủy bổ đê"): keep such keys out of the built-in dictionary.
    letters_only = [k for k in BUILTIN_ABBREVIATIONS if re.fullmatch(r"[^\W\d_]+", k)]
    assert [k for k in letters_only if _is_syllable(k)] == []


def test_headings_in_capitals_are_lowered_but_acronyms_kept() -> None:
    assert normalize("CHÚ Ý: TU BỔ ĐÊ ĐIỀU") == "Chú ý: tu bổ đê điều."
    assert normalize("Hội viên BHTN tham gia.") == "Hội viên BHTN tham gia."
    assert unknown_abbreviations("Hội viên BHTN và HTX, ông A.") == ["BHTN"]


def test_whole_plan_reads_cleanly(plan_text: str) -> None:
    spoken = normalize(plan_text)
    assert not re.search(r"\d", spoken)
    assert not re.search(r"[/*#_•~|()\[\]{}<>%&+-]", spoken)
    assert "ngày ngày" not in spoken
    assert "  " not in spoken
    assert "\n\n\n" not in spoken
    for line in spoken.split("\n"):
        assert line == "" or line[-1] in ".!?;:", line
    assert unknown_abbreviations(plan_text) == []


def test_emoji_and_control_characters_vanish_from_speech() -> None:
    assert normalize("Xin chào 😀 bà con\x07!") == "Xin chào bà con!"


# --- validate_script -------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["", "   ", "\n\t \n"])
def test_empty_script_is_refused(script: str) -> None:
    with pytest.raises(ScriptProblem, match="script is empty") as info:
        validate_script(script)
    assert info.value.code == "empty"


def test_too_long_script_names_length_and_limit() -> None:
    with pytest.raises(ScriptProblem, match="too long") as info:
        validate_script("a" * 101, max_chars=100)
    assert "101" in str(info.value) and "100" in str(info.value)
    assert info.value.code == "too_long"
    assert validate_script("a" * 100, max_chars=100) == ("a" * 100, [])


def test_length_is_counted_after_nfc() -> None:
    text = unicodedata.normalize("NFD", "Nghị định") * 10
    cleaned, _ = validate_script(text, max_chars=len("Nghị định") * 10)
    assert cleaned == "Nghị định" * 10


def test_control_characters_and_emoji_are_stripped_with_warnings() -> None:
    cleaned, warnings = validate_script("👍🏻 Họp lúc 7h\x00\x07 nhé 🇻🇳 👨‍👩‍👧\u200b\r\nbà con\t!")
    assert cleaned == "Họp lúc 7h nhé\nbà con\t!"
    assert warnings == [
        "removed 3 control character(s) (đã bỏ 3 ký tự điều khiển)",
        "removed 3 emoji (đã bỏ 3 biểu tượng cảm xúc)",
    ]


def test_clean_script_has_no_warnings() -> None:
    assert validate_script("Kế hoạch số 78/KH-UBND.") == ("Kế hoạch số 78/KH-UBND.", [])


@pytest.mark.parametrize("script", ["😀😀", "** -- !!", "\x00\x01 🎉"])
def test_script_without_letters_or_digits_is_refused(script: str) -> None:
    with pytest.raises(ScriptProblem, match="nothing to read aloud") as info:
        validate_script(script)
    assert info.value.code == "unpronounceable"
    assert isinstance(info.value, ValueError)


# --- splitting -------------------------------------------------------------------------------


def test_split_sentences_respects_numbers_and_titles() -> None:
    text = (
        "Mức 1.250.000 đồng. Ủy ban TP. Thanh Hóa họp lúc 17:30; xong! Giấy tờ, v.v. Người dân"
        "\nmang theo v.v. và khác"
    )
    assert split_sentences(text) == [
        "Mức 1.250.000 đồng.",
        "Ủy ban TP. Thanh Hóa họp lúc 17:30;",
        "xong!",
        "Giấy tờ, v.v.",
        "Người dân",
        "mang theo v.v. và khác",
    ]


def test_split_sentences_on_colon_semicolon_and_newline() -> None:
    assert split_sentences("Nơi nhận:\nPhòng nội vụ;\nLưu: văn thư.") == [
        "Nơi nhận:",
        "Phòng nội vụ;",
        "Lưu:",
        "văn thư.",
    ]


def test_paragraphs_of_sentences() -> None:
    text = "Thông báo.\nHọp dân. Lúc bảy giờ.\n\n \n\nĐề nghị đến đúng giờ."
    assert paragraphs(text) == [
        ["Thông báo.", "Họp dân.", "Lúc bảy giờ."],
        ["Đề nghị đến đúng giờ."],
    ]
    assert paragraphs("") == []


@pytest.fixture(scope="module")
def spoken_plan(plan_text: str) -> str:
    return normalize(plan_text)


@pytest.mark.parametrize("max_chars", [30, 60, 100, 200])
def test_chunks_fit_and_keep_every_word(spoken_plan: str, max_chars: int) -> None:
    chunks = chunk(spoken_plan, max_chars)
    for piece in chunks:
        assert len(piece) <= max_chars or " " not in piece, piece
        assert piece == piece.strip() and piece
    assert " ".join(chunks).split() == spoken_plan.split()


def test_chunk_never_joins_sentences() -> None:
    assert chunk("Họp dân. Lúc bảy giờ.", 100) == ["Họp dân.", "Lúc bảy giờ."]


def test_a_word_longer_than_the_limit_is_its_own_chunk() -> None:
    assert chunk("ab abcdefghijklmnop cd", 5) == ["ab", "abcdefghijklmnop", "cd"]


def test_chunk_prefers_commas_and_linking_words() -> None:
    sentence = (
        "Ủy ban nhân dân xã đề nghị các thôn tổ chức tuyên truyền, vận động nhân dân tham gia"
        " dịch vụ công trực tuyến trong năm nay."
    )
    assert chunk(sentence, 60) == [
        "Ủy ban nhân dân xã đề nghị các thôn tổ chức tuyên truyền,",
        "vận động nhân dân tham gia dịch vụ công trực tuyến",
        "trong năm nay.",
    ]


def _pieces_with_offsets(sentence: str, pieces: list[str]) -> list[tuple[int, int]]:
    spans, start = [], 0
    for piece in pieces:
        start = sentence.index(piece, start)
        spans.append((start, start + len(piece)))
        start += len(piece)
    return spans


@pytest.mark.parametrize("max_chars", [40, 60, 100])
def test_no_number_or_expansion_is_cut(spoken_plan: str, max_chars: int) -> None:
    phrases = {v for v in BUILTIN_ABBREVIATIONS.values() if " " in v}
    phrases |= {read_number(n) for n in (78, 2023, 2024, 30, 12, 15, 1_250_000)}
    checked = 0
    for sentence in split_sentences(spoken_plan):
        spans = _pieces_with_offsets(sentence, chunk(sentence, max_chars))
        for phrase in phrases:
            if len(phrase) > max_chars:
                continue
            for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", sentence, re.IGNORECASE):
                checked += 1
                assert any(a <= m.start() and m.end() <= b for a, b in spans), (phrase, sentence)
    assert checked > 50


def test_long_money_and_date_stay_whole() -> None:
    sentence = normalize(
        "Ngày 24/11/2024, UBND xã hỗ trợ 1.250.000 đồng cho mỗi hộ gia đình thuộc diện chính"
        " sách trên địa bàn xã Xuân Phúc."
    )
    pieces = chunk(sentence, 45)
    assert all(len(p) <= 45 for p in pieces)
    joined_pieces = "|".join(pieces)
    assert "một triệu hai trăm năm mươi nghìn" in joined_pieces
    assert "năm hai nghìn không trăm hai mươi tư" in joined_pieces
    assert "ủy ban nhân dân" in joined_pieces


def test_keep_together_protects_station_phrases() -> None:
    sentence = "Hội nghị của hợp tác xã nông nghiệp dịch vụ tổng hợp Xuân Phúc năm nay."
    phrase = "hợp tác xã nông nghiệp dịch vụ tổng hợp"
    default = chunk(sentence, 40)
    kept = chunk(sentence, 40, keep_together=[phrase])
    assert " ".join(kept) == " ".join(default) == sentence
    assert not any(phrase in p for p in default)
    assert phrase in kept


def test_chunk_rejects_a_silly_limit() -> None:
    with pytest.raises(ValueError):
        chunk("Họp dân.", 0)
