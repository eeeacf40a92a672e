"""The normaliser's tables: abbreviations, document types, issuing bodies, letter names.

Plain data, read by ``normalize.py``; the rules that use them are documented there. Keys are
written as they appear in scripts (case-sensitive). Expansions are lower case, except proper
names: the national bodies of ``ISSUERS`` ("Bộ Nội vụ", "Thủ tướng Chính phủ") are written as
their official names are, while bodies that exist at every level ("ủy ban nhân dân", "ban chỉ
đạo") are lower case, because the code does not say which province, district or commune.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["BUILTIN_ABBREVIATIONS", "DOCUMENT_TYPES", "ISSUERS", "LETTER_NAMES", "NUMBERED_ISSUERS"]

BUILTIN_ABBREVIATIONS: Mapping[str, str] = MappingProxyType(
    {
        # Bodies of the commune, the Party and the Front.
        "UBND": "ủy ban nhân dân",
        "HĐND": "hội đồng nhân dân",
        "UB": "ủy ban",
        "MTTQ": "mặt trận tổ quốc",
        "MTTQVN": "mặt trận tổ quốc Việt Nam",
        "UBMTTQ": "ủy ban mặt trận tổ quốc",
        "UBMTTQVN": "ủy ban mặt trận tổ quốc Việt Nam",
        "BCH": "ban chấp hành",
        "BTV": "ban thường vụ",
        "BCĐ": "ban chỉ đạo",
        "BQL": "ban quản lý",
        "BTC": "ban tổ chức",
        "UBKT": "ủy ban kiểm tra",
        "HĐND-UBND": "hội đồng nhân dân, ủy ban nhân dân",
        "PCT": "phó chủ tịch",
        "ĐBQH": "đại biểu quốc hội",
        "QH": "quốc hội",
        "TW": "trung ương",
        "TAND": "tòa án nhân dân",
        "VKSND": "viện kiểm sát nhân dân",
        "BCHQS": "ban chỉ huy quân sự",
        "HCCB": "hội cựu chiến binh",
        "CCB": "cựu chiến binh",
        "HLHPN": "hội liên hiệp phụ nữ",
        "ĐTN": "đoàn thanh niên",
        "HTX": "hợp tác xã",
        "CLB": "câu lạc bộ",
        "Đ/c": "đồng chí",
        "đ/c": "đồng chí",
        # People in the public service.
        "CBCCVC": "cán bộ, công chức, viên chức",
        "CBCC": "cán bộ, công chức",
        # Reform and its indices.
        "CCHC": "cải cách hành chính",
        "TTHC": "thủ tục hành chính",
        "DVC": "dịch vụ công",
        "DVCTT": "dịch vụ công trực tuyến",
        "PAPI": "chỉ số hiệu quả quản trị và hành chính công cấp tỉnh",
        "SIPAS": "chỉ số hài lòng về sự phục vụ hành chính",
        "PCI": "chỉ số năng lực cạnh tranh cấp tỉnh",
        "PAR INDEX": "chỉ số cải cách hành chính",
        "PARINDEX": "chỉ số cải cách hành chính",
        # Kinds of document (also the first part of a document code such as KH-UBND).
        "KH": "kế hoạch",
        "QĐ": "quyết định",
        "TT": "thông tư",
        "NĐ": "nghị định",
        "CP": "chính phủ",
        "NĐ-CP": "nghị định chính phủ",
        "NQ": "nghị quyết",
        "CT": "chỉ thị",
        "TB": "thông báo",
        "BC": "báo cáo",
        "TTr": "tờ trình",
        "HD": "hướng dẫn",
        "GM": "giấy mời",
        "CV": "công văn",
        "BB": "biên bản",
        "KL": "kết luận",
        "VP": "văn phòng",
        "VT": "văn thư",
        # Ministries, sectors, schools.
        "CNTT": "công nghệ thông tin",
        "TTTT": "thông tin và truyền thông",
        "TT&TT": "thông tin và truyền thông",
        "BTTTT": "bộ thông tin và truyền thông",
        "STTTT": "sở thông tin và truyền thông",
        "GD&ĐT": "giáo dục và đào tạo",
        "TN&MT": "tài nguyên và môi trường",
        "NN&PTNT": "nông nghiệp và phát triển nông thôn",
        "LĐTB&XH": "lao động thương binh và xã hội",
        "TC-KH": "tài chính kế hoạch",
        "VH-XH": "văn hóa xã hội",
        "KT-XH": "kinh tế xã hội",
        "QP-AN": "quốc phòng an ninh",
        "ANTT": "an ninh trật tự",
        "TDTT": "thể dục thể thao",
        "THCS": "trung học cơ sở",
        "THPT": "trung học phổ thông",
        "TTYT": "trung tâm y tế",
        "BHXH": "bảo hiểm xã hội",
        "BHYT": "bảo hiểm y tế",
        "NTM": "nông thôn mới",
        "ATTP": "an toàn thực phẩm",
        "ATGT": "an toàn giao thông",
        "PCCC": "phòng cháy chữa cháy",
        "PCTT": "phòng chống thiên tai",
        "TKCN": "tìm kiếm cứu nạn",
        "CSDL": "cơ sở dữ liệu",
        "CCCD": "căn cước công dân",
        "CMND": "chứng minh nhân dân",
        "QSDĐ": "quyền sử dụng đất",
        "GPMB": "giải phóng mặt bằng",
        # State, places, money, contact.
        "XHCN": "xã hội chủ nghĩa",
        "CHXHCN": "cộng hòa xã hội chủ nghĩa",
        "CHXHCNVN": "cộng hòa xã hội chủ nghĩa Việt Nam",
        "VN": "Việt Nam",
        "HCM": "Hồ Chí Minh",
        "TP.": "thành phố",
        "TP": "thành phố",
        "Tp.": "thành phố",
        "VNĐ": "đồng",
        "VND": "đồng",
        "USD": "đô la Mỹ",
        "SĐT": "số điện thoại",
        "ĐT": "điện thoại",
        "STK": "số tài khoản",
        "v.v.": "vân vân",
    }
)


# The kind of a document: the first part of its code ("KH" in "04/KH-UBND", "NQ" in
# "18-NQ/TW"), as Nghị định 30/2020/NĐ-CP (Phụ lục III) abbreviates them.
DOCUMENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "NQ": "nghị quyết",
        "NQLT": "nghị quyết liên tịch",
        "QĐ": "quyết định",
        "NĐ": "nghị định",
        "CT": "chỉ thị",
        "QC": "quy chế",
        "QyĐ": "quy định",
        "TB": "thông báo",
        "HD": "hướng dẫn",
        "CTr": "chương trình",
        "KH": "kế hoạch",
        "PA": "phương án",
        "ĐA": "đề án",
        "DA": "dự án",
        "BC": "báo cáo",
        "BB": "biên bản",
        "TTr": "tờ trình",
        "HĐ": "hợp đồng",
        "CĐ": "công điện",
        "BGN": "bản ghi nhớ",
        "BTT": "bản thỏa thuận",
        "GUQ": "giấy ủy quyền",
        "GM": "giấy mời",
        "GGT": "giấy giới thiệu",
        "GNP": "giấy nghỉ phép",
        "PG": "phiếu gửi",
        "PC": "phiếu chuyển",
        "TT": "thông tư",
        "TTLT": "thông tư liên tịch",
        "KL": "kết luận",
        "L": "lệnh",
        "VBHN": "văn bản hợp nhất",
        "CV": "công văn",
    }
)

# Who issued a document: the parts of its code after the type ("UBND" in "04/KH-UBND",
# "TTg" in "06/QĐ-TTg"), or the first part of a công văn's code ("UBND" in "56/UBND-VP").
# Read only inside a document number, so "BTC" here is the Ministry of Finance while the
# abbreviation "BTC" in running text stays "ban tổ chức".
ISSUERS: Mapping[str, str] = MappingProxyType(
    {
        # The Party.
        "TW": "Trung ương",
        "BTGTW": "Ban Tuyên giáo Trung ương",
        "BTCTW": "Ban Tổ chức Trung ương",
        "TU": "Tỉnh ủy",
        "HU": "Huyện ủy",
        "ĐU": "Đảng ủy",
        # The State.
        "QH": "Quốc hội",
        "UBTVQH": "Ủy ban Thường vụ Quốc hội",
        "VPQH": "Văn phòng Quốc hội",
        "CTN": "Chủ tịch nước",
        "CP": "Chính phủ",
        "TTg": "Thủ tướng Chính phủ",
        "VPCP": "Văn phòng Chính phủ",
        "TTCP": "Thanh tra Chính phủ",
        "NHNN": "Ngân hàng Nhà nước",
        "UBDT": "Ủy ban Dân tộc",
        # Ministries.
        "BNV": "Bộ Nội vụ",
        "BTTTT": "Bộ Thông tin và Truyền thông",
        "BTC": "Bộ Tài chính",
        "BTP": "Bộ Tư pháp",
        "BCA": "Bộ Công an",
        "BQP": "Bộ Quốc phòng",
        "BYT": "Bộ Y tế",
        "BGDĐT": "Bộ Giáo dục và Đào tạo",
        "BNNPTNT": "Bộ Nông nghiệp và Phát triển nông thôn",
        "BTNMT": "Bộ Tài nguyên và Môi trường",
        "BLĐTBXH": "Bộ Lao động, Thương binh và Xã hội",
        "BKHĐT": "Bộ Kế hoạch và Đầu tư",
        "BXD": "Bộ Xây dựng",
        "BGTVT": "Bộ Giao thông vận tải",
        "BCT": "Bộ Công Thương",
        "BVHTTDL": "Bộ Văn hóa, Thể thao và Du lịch",
        "BKHCN": "Bộ Khoa học và Công nghệ",
        "BHXH": "Bảo hiểm xã hội",
        # Province, district, commune.
        "UBND": "ủy ban nhân dân",
        "HĐND": "hội đồng nhân dân",
        "UBMTTQ": "ủy ban mặt trận tổ quốc",
        "MTTQ": "mặt trận tổ quốc",
        "BCĐ": "ban chỉ đạo",
        "BTV": "ban thường vụ",
        "VPUBND": "văn phòng ủy ban nhân dân",
        "SNV": "Sở Nội vụ",
        "STTTT": "Sở Thông tin và Truyền thông",
        "STC": "Sở Tài chính",
        "STP": "Sở Tư pháp",
        "SYT": "Sở Y tế",
        "SGDĐT": "Sở Giáo dục và Đào tạo",
        "SKHĐT": "Sở Kế hoạch và Đầu tư",
        "SVHTTDL": "Sở Văn hóa, Thể thao và Du lịch",
        "SNNPTNT": "Sở Nông nghiệp và Phát triển nông thôn",
        "STNMT": "Sở Tài nguyên và Môi trường",
        "SLĐTBXH": "Sở Lao động, Thương binh và Xã hội",
    }
)

# Issuers written with a number after them: "QH15" is the 15th National Assembly, read
# "Quốc hội khóa mười lăm"; "BCĐ389" is Ban Chỉ đạo 389, read "ban chỉ đạo ba tám chín".
NUMBERED_ISSUERS: Mapping[str, str] = MappingProxyType({"QH": "khóa", "UBTVQH": "khóa", "BCĐ": ""})

# The names of the letters of "a)", "b)" at the start of a heading, as Vietnamese spell them.
LETTER_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "a": "a",
        "b": "bê",
        "c": "xê",
        "d": "dê",
        "đ": "đê",
        "e": "e",
        "g": "giê",
        "h": "hát",
        "i": "i",
        "k": "ca",
        "l": "e lờ",
        "m": "em mờ",
        "n": "en nờ",
        "o": "o",
        "p": "pê",
        "q": "quy",
        "r": "e rờ",
        "s": "ét xì",
        "t": "tê",
        "u": "u",
        "v": "vê",
        "x": "ích xì",
        "y": "i dài",
    }
)
