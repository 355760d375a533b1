#!/usr/bin/env python3
"""The sync a data engineer would write without ocapi: Meta's official Python SDK
(`facebook-business`) with psycopg, 1000 events per request.

It is the comparison for `bench/e2e` (see docs/benchmarks.md): same table, same local Graph API
stand-in (`ocapi sandbox`), same batch size. It reads the demo-shaped `shop.store_transactions`
with a server-side cursor, builds the SDK's serverside `UserData` / `CustomData` / `Event`
objects (the SDK normalizes and hashes each customer field itself), sends each batch with
`EventRequest.execute()` through `FacebookAdsApi`, and stores the last watermark after each
accepted batch, as such a script would to resume. It keeps no per-order ledger.

The SDK raises on a value its normalizer rejects (a country that is not an ISO 3166 alpha-2
code, such as `Deutschland`; a phone in national form with a trunk prefix, such as `030 ...`;
an email without `@`), and one such value fails the whole request. So each customer field is
normalized and hashed here, once, with the SDK's own `Normalize.normalize_field`, and a value
it rejects is left out of the event, as ocapi leaves out what it cannot normalize. The SDK
passes an already hashed value through at `execute()` (a regular expression match per value).

Install (not committed; `bench/e2e --compare` does it when the venv is missing):
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -r bench/requirements.txt
"""

import argparse
import json
import sys
import time

import psycopg
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.gender import Gender
from facebook_business.adobjects.serverside.normalize import Normalize
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi
from facebook_business.session import FacebookSession

QUERY = """
select order_id, extract(epoch from purchased_at)::bigint, total, currency, email, phone,
       first_name, last_name, city, state, zip, country, gender,
       to_char(birth_date, 'YYYYMMDD'), loyalty_id, updated_at::text
from shop.store_transactions
where updated_at is not null and updated_at > coalesce(
    (select watermark from sdk_state where id = 1), '-infinity')
order by updated_at, order_id
"""

GENDERS = {"f": Gender.FEMALE, "m": Gender.MALE}


def hashed(field, value):
    """The SDK's normalized and hashed value of one field, or None when the SDK rejects it."""
    try:
        return Normalize.normalize_field(field, value)
    except (TypeError, ValueError):
        return None


def build_event(row):
    """One source row as the SDK's Purchase event (customer fields hashed by the SDK's rules)."""
    (order_id, event_time, total, currency, email, phone, first_name, last_name, city,
     state, zip_code, country, gender, birth_date, loyalty_id, _watermark) = row
    user_data = UserData(
        email=hashed("em", email),
        phone=hashed("ph", phone),
        first_name=hashed("fn", first_name),
        last_name=hashed("ln", last_name),
        city=hashed("ct", city),
        state=hashed("st", state),
        zip_code=hashed("zp", zip_code),
        country_code=hashed("country", country),
        gender=GENDERS.get((gender or "").strip().lower()[:1]),
        date_of_birth=birth_date,
        external_id=loyalty_id,
    )
    custom_data = CustomData(value=float(total), currency=(currency or "USD").lower(),
                             order_id=order_id)
    return Event(
        event_name="Purchase",
        event_time=int(event_time),
        event_id=order_id,
        action_source=ActionSource.PHYSICAL_STORE,
        user_data=user_data,
        custom_data=custom_data,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="libpq connection string of the source")
    parser.add_argument("--graph", required=True, help="Graph API base URL, e.g. http://127.0.0.1:4599")
    parser.add_argument("--token", required=True)
    parser.add_argument("--dataset-id", required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    # The SDK builds every URL from FacebookSession.GRAPH; point it at the stand-in.
    FacebookSession.GRAPH = args.graph.rstrip("/")
    FacebookAdsApi.init(access_token=args.token, api_version="v26.0", crash_log=False)

    started = time.monotonic()
    sent = 0
    # A named cursor lives in its transaction, so the watermark goes through a second,
    # autocommit connection to be durable after each accepted batch.
    with psycopg.connect(args.dsn) as conn, psycopg.connect(args.dsn, autocommit=True) as side:
        side.execute("create table if not exists sdk_state (id int primary key, watermark timestamptz)")
        with conn.cursor(name="orders") as cursor:
            cursor.itersize = args.batch_size
            cursor.execute(QUERY)
            while True:
                rows = cursor.fetchmany(args.batch_size)
                if not rows:
                    break
                events = [build_event(row) for row in rows]
                response = EventRequest(events=events, pixel_id=args.dataset_id).execute()
                if response.events_received != len(events):
                    sys.exit(f"only {response.events_received} of {len(events)} events received")
                sent += len(events)
                side.execute(
                    "insert into sdk_state values (1, %s) on conflict (id) do update "
                    "set watermark = excluded.watermark",
                    (rows[-1][-1],),
                )
    seconds = time.monotonic() - started
    print(json.dumps({"sent": sent, "seconds": round(seconds, 3),
                      "rows_per_sec": round(sent / seconds) if seconds else None}))


if __name__ == "__main__":
    main()
