"""The keyword rules (services/data/complaint_rules.json) classify English summaries like Chinese ones."""

from __future__ import annotations

import json
import re

import pytest

from services import complaint_rules as rules
from tests.complaints.helpers import file, new_customer

RULES = json.loads(rules.RULES_FILE.read_text(encoding="utf-8"))
CHINESE = re.compile(r"[\u4e00-\u9fff]")

# (Chinese summary, English summary, category, reason): the same complaint in both languages.
PAIRS = [
    ("手机app转账失败", "Mobile app transfer failed", "PAYMENT_SETTLEMENT", "SYSTEM_FAILURE"),
    ("手机app崩溃", "The mobile app crashes", "E_BANKING", "SYSTEM_FAILURE"),
    ("手机银行闪退无法登录", "Mobile banking crashed, cannot log in", "E_BANKING", "SYSTEM_FAILURE"),
    ("网银系统报错", "Online banking system error", "E_BANKING", "SYSTEM_FAILURE"),
    ("信用卡分期手续费", "Credit card installment fee", "CREDIT_CARD", "FEES_AND_PRICING"),
    ("银行卡被盗刷", "Unauthorized use of my bank card", "BANK_CARD", "FUNDS_SECURITY"),
    ("ATM吞卡", "ATM swallowed my card", "BANK_CARD", "SERVICE_FACILITIES"),
    ("汇款迟迟未到账", "Remittance not credited", "PAYMENT_SETTLEMENT", "OTHER"),
    (
        "理财净值下跌未告知",
        "Wealth management net asset value fell, not disclosed",
        "WEALTH_MANAGEMENT",
        "INFORMATION_DISCLOSURE",
    ),
    ("代销保险误导", "Misleading insurance agency sale", "AGENCY_SALES", "MARKETING_PRACTICE"),
    ("柜台收到假币", "Counterfeit note at the counter", "RMB_CASH", "SERVICE_FACILITIES"),
    ("隐私被泄露", "Privacy leaked", "PERSONAL_INFORMATION", "INFORMATION_SECURITY"),
    ("贷款暴力催收", "Abusive collection of my loan", "LOAN", "DEBT_COLLECTION"),
    ("存单办理排队太久", "Certificate of deposit: the queue took hours", "DEPOSIT", "RULES_AND_PROCESS"),
    ("房贷合同条款", "Mortgage contract clause", "LOAN", "CONTRACT_TERMS"),
    ("强制捆绑", "Forced and bundled", "OTHER", "FREE_CHOICE"),
    ("柜员态度不耐烦", "Impatient staff, poor service", "OTHER", "SERVICE_ATTITUDE"),
]


def test_every_rule_has_chinese_and_english_keywords():
    for dimension in ("category", "reason"):
        for rule in RULES[dimension]:
            chinese = [k for k in rule["keywords"] if CHINESE.search(k)]
            english = [k for k in rule["keywords"] if k.isascii()]
            assert chinese and english, (dimension, rule["value"])


@pytest.mark.parametrize(("chinese", "english", "category", "reason"), PAIRS, ids=[p[1][:30] for p in PAIRS])
def test_both_languages_classify_alike(chinese, english, category, reason):
    assert [v.value for v in rules.classify(chinese, "")] == [category, reason]
    assert [v.value for v in rules.classify(english, "")] == [category, reason]


@pytest.mark.parametrize(
    ("summary", "category", "reason"),
    [
        ("mobile app transfer failed", "PAYMENT_SETTLEMENT", "SYSTEM_FAILURE"),
        ("The banking app keeps crashing", "E_BANKING", "SYSTEM_FAILURE"),
        ("Internet banking outage all morning", "E_BANKING", "SYSTEM_FAILURE"),
        ("Scam call, then money taken from my debit card", "BANK_CARD", "FUNDS_SECURITY"),
    ],
)
async def test_english_summaries_through_the_api(gql, admin, summary, category, reason):
    _, token = admin
    customer = await new_customer(gql, token)
    filed = await file(gql, token, customer["id"], summary=summary, description="Please look into it.")
    assert (filed["suggestedCategory"], filed["suggestedReason"]) == (category, reason)
    assert (filed["category"], filed["reason"]) == (category, reason)
