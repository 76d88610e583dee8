"""Realistic demo customers for a Chinese retail/corporate bank.

Deterministic for a given ``random.Random``; standard library only, no I/O.
Every generated identifier passes the validators in ``services.identity``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from services.identity import (
    EARLIEST_BIRTH_DATE,
    USCC_ALPHABET,
    Gender,
    resident_id_check_char,
    unified_social_credit_check_char,
)

__all__ = ["BRANCHES", "Branch", "DemoCompany", "DemoPerson", "fake_company", "fake_person"]


@dataclass(frozen=True, slots=True)
class Branch:
    name: str  # e.g. 北京朝阳支行
    region_code: str  # real 6-digit administrative division code of the district
    province: str  # empty for the municipalities
    city: str  # e.g. 北京市
    district: str  # e.g. 朝阳区
    streets: tuple[str, ...]  # real streets in that district


@dataclass(frozen=True, slots=True)
class DemoPerson:
    name: str
    gender: Gender
    birth_date: date
    resident_id: str
    mobile: str
    email: str | None
    address: str
    occupation: str
    branch: str


@dataclass(frozen=True, slots=True)
class DemoCompany:
    name: str
    unified_social_credit_code: str
    branch: str


BRANCHES: tuple[Branch, ...] = (
    Branch("北京朝阳支行", "110105", "", "北京市", "朝阳区", ("建国路", "朝阳北路", "东三环中路", "望京街")),
    Branch("上海浦东支行", "310115", "", "上海市", "浦东新区", ("世纪大道", "张杨路", "浦东南路", "陆家嘴环路")),
    Branch("天津和平支行", "120101", "", "天津市", "和平区", ("南京路", "滨江道", "营口道", "成都道")),
    Branch("重庆渝中支行", "500103", "", "重庆市", "渝中区", ("民族路", "中山三路", "解放西路", "邹容路")),
    Branch("深圳南山支行", "440305", "广东省", "深圳市", "南山区", ("深南大道", "南海大道", "后海大道", "科技南路")),
    Branch("广州天河支行", "440106", "广东省", "广州市", "天河区", ("天河路", "体育西路", "花城大道", "黄埔大道")),
    Branch("杭州西湖支行", "330106", "浙江省", "杭州市", "西湖区", ("文三路", "天目山路", "曙光路", "教工路")),
    Branch("成都武侯支行", "510107", "四川省", "成都市", "武侯区", ("人民南路", "科华北路", "武侯祠大街", "玉林北路")),
    Branch("武汉武昌支行", "420106", "湖北省", "武汉市", "武昌区", ("中北路", "武珞路", "徐东大街", "中南路")),
    Branch("南京玄武支行", "320102", "江苏省", "南京市", "玄武区", ("中山路", "北京东路", "珠江路", "龙蟠路")),
    Branch("西安雁塔支行", "610113", "陕西省", "西安市", "雁塔区", ("小寨东路", "长安南路", "雁塔路", "高新路")),
    Branch("长沙岳麓支行", "430104", "湖南省", "长沙市", "岳麓区", ("麓山南路", "桐梓坡路", "枫林三路", "岳麓大道")),
)

# Approximate share (per mille) of the population, most common surnames first.
_SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 71),
    ("李", 70),
    ("张", 68),
    ("刘", 54),
    ("陈", 45),
    ("杨", 31),
    ("黄", 23),
    ("赵", 23),
    ("吴", 20),
    ("周", 19),
    ("徐", 15),
    ("孙", 15),
    ("马", 13),
    ("朱", 13),
    ("胡", 12),
    ("郭", 12),
    ("何", 12),
    ("林", 12),
    ("高", 11),
    ("罗", 11),
    ("郑", 10),
    ("梁", 10),
    ("谢", 8),
    ("宋", 8),
    ("唐", 8),
    ("许", 7),
    ("韩", 7),
    ("冯", 7),
    ("邓", 7),
    ("曹", 7),
    ("彭", 6),
    ("曾", 6),
    ("肖", 6),
    ("田", 6),
    ("董", 5),
    ("袁", 5),
    ("潘", 5),
    ("于", 5),
    ("蒋", 5),
    ("蔡", 5),
    ("余", 5),
    ("杜", 5),
    ("叶", 5),
    ("程", 5),
    ("苏", 4),
    ("魏", 4),
    ("吕", 4),
    ("丁", 4),
    ("任", 4),
    ("沈", 4),
    ("姚", 4),
    ("卢", 4),
    ("姜", 4),
    ("崔", 4),
    ("钟", 4),
    ("谭", 3),
    ("陆", 3),
    ("汪", 3),
    ("范", 3),
    ("金", 3),
    ("石", 3),
    ("廖", 3),
    ("贾", 3),
    ("夏", 3),
    ("韦", 3),
    ("方", 3),
    ("白", 3),
    ("邹", 3),
    ("孟", 3),
    ("熊", 3),
    ("秦", 3),
    ("邱", 3),
    ("江", 3),
    ("尹", 3),
    ("薛", 3),
    ("段", 2),
    ("雷", 2),
    ("侯", 2),
    ("龙", 2),
    ("史", 2),
    ("陶", 2),
    ("黎", 2),
    ("贺", 2),
    ("顾", 2),
    ("毛", 2),
    ("郝", 2),
    ("龚", 2),
    ("邵", 2),
    ("万", 2),
    ("钱", 2),
    ("严", 2),
    ("欧阳", 0.5),
    ("司马", 0.1),
    ("诸葛", 0.1),
)
_SURNAME_CHOICES = tuple(s for s, _ in _SURNAMES)
_SURNAME_WEIGHTS = tuple(w for _, w in _SURNAMES)

_GENDERS: tuple[Gender, ...] = ("MALE", "FEMALE")
_NEUTRAL_CHARS = "文明子佳宇晨一雨嘉安心欣思天乐"
_GIVEN_NAME_CHARS: dict[Gender, str] = {
    "MALE": "伟强磊军勇杰涛斌超刚平辉鹏华飞鑫波浩凯健俊帆旭宁龙林博轩睿阳峰建国志海东豪宏毅振鸿" + _NEUTRAL_CHARS,
    "FEMALE": "芳娜敏静丽艳娟霞秀燕玲丹萍红婷雪琳倩颖洁慧怡梅莉月婧璐雯琪蕾薇瑶晶妍悦诗梦涵彤" + _NEUTRAL_CHARS,
}

_OCCUPATIONS = (
    "教师",
    "工程师",
    "个体经营者",
    "公务员",
    "医生",
    "护士",
    "会计",
    "销售经理",
    "程序员",
    "律师",
    "企业职员",
    "企业管理人员",
    "自由职业者",
    "设计师",
    "司机",
    "厨师",
    "农民",
    "金融从业人员",
    "科研人员",
    "快递员",
)

# China Mobile, China Unicom and China Telecom mobile prefixes.
_MOBILE_PREFIXES = (
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "147",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "178",
    "182",
    "183",
    "187",
    "188",
    "198",
    "130",
    "131",
    "132",
    "155",
    "156",
    "166",
    "175",
    "176",
    "185",
    "186",
    "133",
    "153",
    "173",
    "177",
    "180",
    "181",
    "189",
    "199",
)
# NB: real mail providers.  Do not let a dev environment send mail to seeded customers.
# Reserved example domains only: seeded data must never reach a real mailbox.
_EMAIL_DOMAINS = ("example.com", "example.cn", "example.net", "example.org")

_COMPANY_BRANDS = (
    "智能",
    "华信",
    "恒通",
    "鼎盛",
    "瑞丰",
    "中联",
    "天成",
    "博远",
    "嘉禾",
    "新创",
    "金桥",
    "鸿达",
    "远航",
    "云帆",
    "锦程",
    "安泰",
    "宏图",
    "汇通",
    "隆昌",
    "正和",
)
_COMPANY_TRADES = (
    "科技",
    "信息技术",
    "贸易",
    "建筑工程",
    "餐饮管理",
    "物流",
    "生物医药",
    "电子",
    "文化传媒",
    "企业管理咨询",
    "新能源",
    "食品",
    "服饰",
    "机械设备",
    "环保科技",
    "供应链管理",
)
_COMPANY_FORMS = ("有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司")


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year - years, day=28)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _city_prefix(branch: Branch) -> str:
    return branch.city.removesuffix("市")  # 北京市 -> 北京


def _address(rng: random.Random, branch: Branch) -> str:
    street = f"{branch.province}{branch.city}{branch.district}{rng.choice(branch.streets)}"
    number = f"{rng.randint(1, 399)}号"
    if rng.random() < 0.2:  # office tower / shop front
        return street + number
    floor = rng.randint(1, 33)
    return f"{street}{number}{rng.randint(1, 20)}栋{rng.randint(1, 4)}单元{floor}{rng.randint(1, 6):02d}室"


def _occupation(rng: random.Random, age: int) -> str:
    if age >= 60 and rng.random() < 0.8:
        return "退休"
    if age <= 22 and rng.random() < 0.7:
        return "学生"
    return rng.choice(_OCCUPATIONS)


def _email(rng: random.Random) -> str:
    return f"user{rng.randint(1000, 99999999)}@{rng.choice(_EMAIL_DOMAINS)}"


def fake_person(rng: random.Random, today: date) -> DemoPerson:
    """A retail customer aged 18-85 on ``today`` with a consistent resident ID."""
    branch = rng.choice(BRANCHES)
    gender = rng.choice(_GENDERS)
    surname = rng.choices(_SURNAME_CHOICES, weights=_SURNAME_WEIGHTS)[0]
    given = "".join(rng.choice(_GIVEN_NAME_CHARS[gender]) for _ in range(rng.choice((1, 2, 2))))

    latest = _years_before(today, 18)  # turned 18 today at the latest
    earliest = max(_years_before(today, 86) + timedelta(days=1), EARLIEST_BIRTH_DATE)
    birth_date = earliest + timedelta(days=rng.randint(0, (latest - earliest).days))
    had_birthday = (today.month, today.day) >= (birth_date.month, birth_date.day)
    age = today.year - birth_date.year - (0 if had_birthday else 1)

    parity_digit = rng.choice("13579" if gender == "MALE" else "02468")
    first17 = f"{branch.region_code}{birth_date:%Y%m%d}{_digits(rng, 2)}{parity_digit}"

    return DemoPerson(
        name=surname + given,
        gender=gender,
        birth_date=birth_date,
        resident_id=first17 + resident_id_check_char(first17),
        mobile=rng.choice(_MOBILE_PREFIXES) + _digits(rng, 8),
        email=_email(rng) if rng.random() < 0.6 else None,
        address=_address(rng, branch),
        occupation=_occupation(rng, age),
        branch=branch.name,
    )


def _organization_code(rng: random.Random) -> str:
    """A GB 11714 organisation code (8 characters + check), as embedded in a USCC."""
    # Codes issued since 2015 start with "MA".
    body = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6)) if rng.random() < 0.5 else _digits(rng, 8)
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def fake_company(rng: random.Random) -> DemoCompany:
    """A corporate customer registered in its branch's district."""
    branch = rng.choice(BRANCHES)
    district = branch.district.removesuffix("新区").removesuffix("区")
    place = _city_prefix(branch) + (district if rng.random() < 0.6 else "")
    name = place + rng.choice(_COMPANY_BRANDS) + rng.choice(_COMPANY_TRADES) + rng.choice(_COMPANY_FORMS)
    # 9 = registered with market regulation, 1 = enterprise; then the region code.
    first17 = "91" + branch.region_code + _organization_code(rng)
    return DemoCompany(
        name=name,
        unified_social_credit_code=first17 + unified_social_credit_check_char(first17),
        branch=branch.name,
    )
