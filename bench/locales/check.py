#!/usr/bin/env python3
"""Issue 24's accuracy benchmark: customer values as Faker's providers write them in 35 locales,
normalized by `ocapi hash --jsonl`, compared with oracles no one on this project wrote.

Oracles ("oracle" in the report):
  ph       libphonenumber (`phonenumbers`): E.164 digits of a number valid for the row's region
  db       the generator's own `date` (Faker), rendered in CLDR's formats (`babel`) and ISO
  country  CLDR territory names (`babel`) in the locale's own language first, then ISO 3166's
           English names (`pycountry`), then every CLDR language; the first of these that
           knows the name decides (a name it gives two codes is undecided); a name none of
           them knows is judged by the rules below
  st (US)  ISO 3166-2 subdivision names (`pycountry`)
  ge       the generator's own choice: Faker's male or female title lists
Meta's documented rules (docs/normalization.md, docs/meta-capi.md; "rules" in the report):
  em       trimmed, lowercase
  fn, ln   lowercase, letters, marks and digits of any script only
  ct       lowercase, letters and marks only
  st       (outside the US) lowercase, no punctuation, special characters or spaces
  zp       lowercase, no spaces or dash; US: the first 5 digits of 5 or 9
  ph       a number libphonenumber finds possible but not valid: its E.164 digits; not possible:
           dropped
  db       a two-digit year both centuries allow for a living customer: dropped
  ge       a title both lists hold (`Dr.`) or a name particle (`de`): dropped
  country  a name no oracle knows (Faker's `Réunion (La)`, `Libyan Arab Jamahiriya`): dropped

Usage: python3 bench/locales/check.py [--rows 200] [--seed 24] [--ocapi target/debug/ocapi]
       [--out DIR]. Writes DIR/values.jsonl (every value, its expectation and ocapi's answer)
and DIR/failures.jsonl, prints agreement per field, per locale and overall. Needs
`pip install faker phonenumbers babel pycountry` (bench/locales/requirements.txt).
"""

import argparse
import collections
import datetime
import json
import os
import random
import subprocess
import sys
import unicodedata

import babel
import babel.dates
import phonenumbers
import pycountry
from faker import Faker

LOCALES = [
    "th_TH", "pt_BR", "vi_VN", "ja_JP", "pl_PL", "de_DE", "uk_UA", "hu_HU", "ro_RO", "he_IL",
    "id_ID", "fr_FR", "es_ES", "it_IT", "ru_RU", "zh_CN", "ko_KR", "ar_SA", "en_US", "en_GB",
    "nl_NL", "sv_SE", "cs_CZ", "tr_TR", "el_GR", "fi_FI", "da_DK", "pt_PT", "es_MX", "en_IN",
    "en_AU", "zh_TW", "bg_BG", "hr_HR", "sk_SK",
]

# The day the dates are judged on: two-digit years depend on it.
TODAY = datetime.date.today()

US_LIKE = {"US", "PR", "GU", "VI", "AS", "MP", "UM", "FM", "MH", "PW"}


def fold_key(text):
    """Case- and accent-insensitive key of a name, for the country oracle's lookup."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if c.isalnum())


def country_names():
    """name key -> set of alpha-2 codes, from CLDR (every babel locale) and pycountry."""
    names = collections.defaultdict(set)
    alpha2 = {c.alpha_2 for c in pycountry.countries}
    for ident in babel.localedata.locale_identifiers():
        try:
            territories = babel.Locale.parse(ident).territories
        except Exception:  # noqa: BLE001 - a locale babel cannot load names nothing
            continue
        for code, name in territories.items():
            if code in alpha2:
                names[fold_key(name)].add(code)
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            if hasattr(c, attr):
                names[fold_key(getattr(c, attr))].add(c.alpha_2)
    return names


def own_country_names(locale):
    """name key -> set of alpha-2 codes in the locale's own CLDR names (`pt_BR`, then `pt`)."""
    names = collections.defaultdict(set)
    alpha2 = {c.alpha_2 for c in pycountry.countries}
    for ident in (locale, locale.split("_")[0]):
        for code, name in babel.Locale.parse(ident).territories.items():
            if code in alpha2:
                names[fold_key(name)].add(code)
    return names


def english_country_names():
    names = collections.defaultdict(set)
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            if hasattr(c, attr):
                names[fold_key(getattr(c, attr))].add(c.alpha_2)
    return names


def country_oracle(value, tables):
    """The alpha-2 code the first table naming `value` with one code gives, else None."""
    for table in tables:
        codes = table.get(fold_key(value), set())
        if len(codes) == 1:
            return next(iter(codes)).lower()
        if codes:
            return None
    return None


def us_states():
    return {fold_key(s.name): s.code.split("-")[1].lower()
            for s in pycountry.subdivisions.get(country_code="US")}


def keep(text, pred):
    return unicodedata.normalize("NFC", "".join(c for c in text.strip().lower() if pred(c)))


def is_mark(c):
    return unicodedata.category(c).startswith("M")


def rule_name(v):
    return keep(v, lambda c: c.isalnum() or is_mark(c)) or None


def rule_city(v):
    return keep(v, lambda c: c.isalpha() or is_mark(c)) or None


def rule_state(v):
    return keep(v, lambda c: c.isalnum() or is_mark(c)) or None


def rule_zip(v, region):
    z = v.strip().lower().replace(" ", "").replace("-", "")
    if region in US_LIKE:
        return z[:5] if z.isdigit() and len(z) in (5, 9) else None
    return z if len(z) > 1 else None


def oracle_phone(v, region):
    """(expected, judge): valid numbers by libphonenumber, possible ones by the rules."""
    try:
        n = phonenumbers.parse(v, region)
    except phonenumbers.NumberParseException:
        return None, "rules"
    digits = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)[1:]
    if phonenumbers.is_valid_number(n):
        return digits, "oracle"
    if phonenumbers.is_possible_number(n):
        return digits, "rules"
    return None, "rules"


def date_forms(d, locale):
    """(text, judge, expected) for one date: ISO and CLDR's four lengths in the locale."""
    want = d.strftime("%Y%m%d")
    out = [(d.isoformat(), "oracle", want)]
    for length in ("short", "medium", "long", "full"):
        text = babel.dates.format_date(d, length, locale=locale)
        pattern = babel.dates.get_date_format(length, locale=locale).pattern
        if pattern.count("y") == 2:
            yy = d.year % 100
            both = yy <= TODAY.year % 100
            out.append((text, "rules", None if both else want))
        else:
            out.append((text, "oracle", want))
    return out


def gender_titles(fake):
    """Faker's own title lists for the locale: (male only, female only, in both)."""
    lists = []
    for attr in ("prefixes_male", "prefixes_female"):
        found = [getattr(p, attr) for p in fake.providers if hasattr(p, attr)]
        lists.append({t for t in (found[0] if found else ()) if t})
    male, female = lists
    return male - female, female - male, male & female


def generate(rows, seed):
    names = country_names()
    english = english_country_names()
    states = us_states()
    values = []

    def add(locale, field, value, region, expected, judge):
        values.append({"locale": locale, "field": field, "value": value, "country": region,
                       "expected": expected, "judge": judge})

    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1000 + i)
        rnd = random.Random(seed * 1000 + i)
        region = locale.split("_")[1]
        lang = locale.split("_")[0]
        male, female, both = gender_titles(fake)
        country_tables = (own_country_names(locale), english, names)
        for _ in range(rows):
            v = fake.email()
            add(locale, "em", v, region, v.strip().lower(), "rules")
            for field, make in (("fn", fake.first_name), ("ln", fake.last_name)):
                v = make()
                add(locale, field, v, region, rule_name(v), "rules")
            v = fake.city()
            add(locale, "ct", v, region, rule_city(v), "rules")
            for attr in ("state", "administrative_unit"):
                if hasattr(fake, attr):
                    v = getattr(fake, attr)()
                    if region == "US":
                        add(locale, "st", v, region, states.get(fold_key(v)), "oracle")
                    else:
                        add(locale, "st", v, region, rule_state(v), "rules")
                    break
            v = fake.postcode()
            add(locale, "zp", v, region, rule_zip(v, region), "rules")
            v = fake.phone_number()
            add(locale, "ph", v, region, *oracle_phone(v, region))
            d = fake.date_of_birth(minimum_age=18, maximum_age=100)
            for text, judge, want in date_forms(d, locale):
                add(locale, "db", text, region, want, judge)
            if male or female or both:
                pick = rnd.choice(sorted(male) + sorted(female) + sorted(both))
                want = "m" if pick in male else "f" if pick in female else None
                add(locale, "ge", pick, region, want, "oracle" if want else "rules")
            v = fake.country()
            code = country_oracle(v, country_tables)
            add(locale, "country", v, region, code, "oracle" if code else "rules")
    return values


def run_ocapi(ocapi, values):
    lines = "".join(json.dumps({"field": v["field"], "value": v["value"],
                                "country": v["country"]}, ensure_ascii=False) + "\n"
                    for v in values)
    env = dict(os.environ, OCAPI_LOG="warn")
    out = subprocess.run([ocapi, "hash", "--jsonl", "--country", "US"], input=lines,
                         capture_output=True, text=True, check=True, env=env,
                         cwd="/")
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(answers) == len(values), (len(answers), len(values))
    for v, a in zip(values, answers):
        v["got"] = a.get("normalized")
        v["agree"] = v["got"] == v["expected"]


def pct(agree, total):
    return f"{100.0 * agree / total:6.2f}% ({agree}/{total})" if total else "     -"


def report(values):
    def table(key):
        rows = collections.defaultdict(lambda: collections.Counter())
        for v in values:
            c = rows[v[key]]
            c[v["judge"], v["agree"]] += 1
        print(f"\n{key:8} {'oracle-judged':>26} {'rules-judged':>26} {'all':>26}")
        for k in sorted(rows):
            c = rows[k]
            o = (c["oracle", True], c["oracle", True] + c["oracle", False])
            r = (c["rules", True], c["rules", True] + c["rules", False])
            a = (o[0] + r[0], o[1] + r[1])
            print(f"{k:8} {pct(*o):>26} {pct(*r):>26} {pct(*a):>26}")

    table("field")
    table("locale")
    o = [v for v in values if v["judge"] == "oracle"]
    print(f"\noracle-judged: {pct(sum(v['agree'] for v in o), len(o))}")
    print(f"all:           {pct(sum(v['agree'] for v in values), len(values))}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=200, help="rows per locale")
    p.add_argument("--seed", type=int, default=24)
    p.add_argument("--ocapi", default="target/debug/ocapi")
    p.add_argument("--out", default="target/locales")
    p.add_argument("--failures", type=int, default=0, help="print this many failures per field")
    args = p.parse_args()
    Faker.seed(args.seed)
    values = generate(args.rows, args.seed)
    run_ocapi(os.path.abspath(args.ocapi), values)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "values.jsonl"), "w") as f:
        for v in values:
            f.write(json.dumps(v, ensure_ascii=False) + "\n")
    failures = [v for v in values if not v["agree"]]
    with open(os.path.join(args.out, "failures.jsonl"), "w") as f:
        for v in failures:
            f.write(json.dumps(v, ensure_ascii=False) + "\n")
    report(values)
    if args.failures:
        shown = collections.Counter()
        for v in failures:
            if shown[v["field"]] < args.failures:
                shown[v["field"]] += 1
                print(json.dumps({k: v[k] for k in ("locale", "field", "value", "expected",
                                                    "got", "judge")}, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
