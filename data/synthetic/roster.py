"""The people: households of a fictional town and who to contact for each.

Midorigawa (緑川町) does not exist. Its three neighbourhoods sit around 36.0° N, 139.0° E so maps
look plausible, but every address, name and phone number is invented. Phones are all in the
``+8190000xxxxx`` block, which no real subscriber uses in this data.

Contacts per household, in escalation order: the resident, one or two family members (some
English-speaking, some with quiet hours at night), a neighbourhood volunteer and a backup
(each volunteer watches several homes, so the same phone appears on several rows), and the
area's two welfare staff.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.synthetic.personas import STREAM_ROSTER, Persona, stream_rng

TOWN = "緑川町"
#: (area id, name in addresses, centre lat, centre lon)
AREAS = (
    ("Kitamachi", "北町", 36.0121, 138.9952),
    ("Honmachi", "本町", 36.0004, 139.0061),
    ("Minamidai", "南台", 35.9887, 138.9978),
)
HOUSEHOLD_COLUMNS = ["household_id", "name", "area", "address", "lat", "lon", "timezone", "policy"]
CONTACT_COLUMNS = [
    "household_id",
    "name",
    "role",
    "phone",
    "language",
    "quiet_start",
    "quiet_end",
    "priority",
]

#: Surnames and how they are written in Latin letters (for English-speaking relatives).
_SURNAME_PAIRS = """
        山田 Yamada 佐藤 Sato 鈴木 Suzuki 高橋 Takahashi 田中 Tanaka 伊藤 Ito
        渡辺 Watanabe 中村 Nakamura 小林 Kobayashi 加藤 Kato 吉田 Yoshida 山本 Yamamoto
        松本 Matsumoto 井上 Inoue 木村 Kimura 林 Hayashi 清水 Shimizu 山口 Yamaguchi
        森 Mori 池田 Ikeda 橋本 Hashimoto 石川 Ishikawa 小川 Ogawa 岡田 Okada
        長谷川 Hasegawa 藤田 Fujita 後藤 Goto 近藤 Kondo 村上 Murakami 遠藤 Endo
        青木 Aoki 坂本 Sakamoto 斎藤 Saito 福田 Fukuda 太田 Ota 西村 Nishimura
        藤井 Fujii 岡本 Okamoto 松田 Matsuda 中川 Nakagawa
        """.split()
SURNAMES_ROMAJI = dict(zip(_SURNAME_PAIRS[::2], _SURNAME_PAIRS[1::2], strict=True))
SURNAMES = tuple(SURNAMES_ROMAJI)
OLD_WOMEN = (
    "花子 和子 幸子 節子 弘子 美代子 久子 照子 文子 千代子 静子 敏子 信子 清子 トシ子 "
    "キヨ ハル 富子 悦子 光子"
).split()
OLD_MEN = "茂 勇 清 博 実 進 正雄 武 昭 勝 一郎 義雄".split()
CHILDREN = "健一 浩二 直樹 誠 裕子 真由美 明美 由美子 智子 洋子 剛 隆".split()
HELPERS = "和夫 順子 孝 恵美子 修 典子 豊 美智子 秀樹 康子".split()
STAFF = "美咲 翔太 彩 大輔 由佳 拓也 愛 健太".split()
ENGLISH_FAMILY = ("Emily", "James", "Sarah", "Daniel")


def _phone(block: int, number: int) -> str:
    """A fictional E.164 Japanese mobile number: ``+8190000`` then a block digit and 4 digits."""
    return f"+8190000{block}{number:04d}"


def _area_of(index: int, n: int) -> int:
    return index * len(AREAS) // n


def _contact(hid: str, name: str, role: str, phone: str, priority: int, **extra: str) -> dict:
    row = {"household_id": hid, "name": name, "role": role, "phone": phone, "language": "ja"}
    row.update({"quiet_start": "", "quiet_end": "", "priority": priority})
    row.update(extra)
    return row


def _helpers(rng: np.random.Generator, block: int, area: int, count: int, given: list[str]):
    """``count`` (name, phone) pairs for an area's volunteers or staff."""
    names = [f"{rng.choice(SURNAMES)} {rng.choice(given)}" for _ in range(count)]
    return [(name, _phone(block, area * 100 + i)) for i, name in enumerate(names)]


def make_roster(
    personas: list[Persona], seed: int, timezone: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Households and contacts for ``personas`` (fictional names, addresses and phones)."""
    rng = stream_rng(seed, STREAM_ROSTER)
    n = len(personas)
    volunteers = [_helpers(rng, 3, a, 2 + int(rng.random() < 0.5), HELPERS) for a in range(3)]
    staff = [_helpers(rng, 4, a, 2, STAFF) for a in range(3)]
    surnames = rng.permutation(SURNAMES)
    households, contacts = [], []
    served = [0, 0, 0]
    for index, persona in enumerate(personas):
        hid = persona.household_id
        area = _area_of(index, n)
        area_id, area_name, lat, lon = AREAS[area]
        surname = str(surnames[index % len(surnames)])
        given = rng.choice(OLD_WOMEN if rng.random() < 0.7 else OLD_MEN)
        name = f"{surname} {given}"
        chome, banchi, go = rng.integers(1, 5), rng.integers(1, 30), rng.integers(1, 20)
        households.append(
            {
                "household_id": hid,
                "name": name,
                "area": area_id,
                "address": f"{TOWN}{area_name}{chome}丁目{banchi}-{go}",
                "lat": round(lat + rng.uniform(-0.003, 0.003), 5),
                "lon": round(lon + rng.uniform(-0.004, 0.004), 5),
                "timezone": timezone,
                "policy": "default",
            }
        )
        contacts.append(_contact(hid, name, "resident", _phone(1, index), 1))
        contacts.extend(_family(rng, hid, surname, index))
        area_volunteers = volunteers[area]
        first = served[area] % len(area_volunteers)
        served[area] += 1
        for priority, offset in enumerate((0, 1), start=1):
            v_name, v_phone = area_volunteers[(first + offset) % len(area_volunteers)]
            contacts.append(_contact(hid, v_name, "volunteer", v_phone, priority))
        for priority, (s_name, s_phone) in enumerate(staff[area], start=1):
            contacts.append(_contact(hid, s_name, "staff", s_phone, priority))
    return (
        pd.DataFrame(households, columns=HOUSEHOLD_COLUMNS),
        pd.DataFrame(contacts, columns=CONTACT_COLUMNS),
    )


def _family(rng: np.random.Generator, hid: str, surname: str, index: int) -> list[dict]:
    rows = []
    for priority in range(1, 2 + int(rng.random() < 0.6)):
        phone = _phone(2, index * 10 + priority)
        quiet = {}
        if rng.random() < 0.4:
            quiet = {"quiet_start": "22:00", "quiet_end": "07:00"}
        if rng.random() < 0.12:
            # A child or grandchild abroad, or married to someone who reads English only.
            name = f"{rng.choice(ENGLISH_FAMILY)} {_romaji(surname)}"
            rows.append(_contact(hid, name, "family", phone, priority, language="en", **quiet))
            continue
        family_surname = surname if rng.random() < 0.5 else str(rng.choice(SURNAMES))
        name = f"{family_surname} {rng.choice(CHILDREN)}"
        rows.append(_contact(hid, name, "family", phone, priority, **quiet))
    return rows


def _romaji(surname: str) -> str:
    return SURNAMES_ROMAJI[surname]
