"""Builders of small EB-NeRD and Adressa fixtures (real parquet / JSON lines, real column names)."""
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

EB_DAYS = ["2023-05-18", "2023-05-19", "2023-05-20", "2023-05-21", "2023-05-22"]
EB_TRAIN_DAYS = 3  # the rest is the validation split
CATEGORIES = ["nyheder", "sport", "underholdning", "krimi"]
DANISH = ["Mærsk", "Århus", "ø-hop", "smørrebrød", "“citat”", "jubel 🎉", "–", "København", "fodbold", "politik"]


def _title(rng, category):
    return f"{category} " + " ".join(rng.choice(DANISH, size=4))


def build_ebnerd(root, seed=0, users=40, articles=60, per_day=40):
    """EB-NeRD layout with a category preference per user, plus one row for each drop rule:
    impression 900001 has no click, 900002 no inview, 900003 a click outside its inview and an article
    missing from articles.parquet, 900004 is repeated in the validation split; user 999 has no history."""
    rng = np.random.default_rng(seed)
    art_ids = np.arange(1000, 1000 + articles)
    cats = [CATEGORIES[i % len(CATEGORIES)] for i in range(articles)]
    published = [datetime(2023, 5, 1) + timedelta(hours=int(h)) for h in rng.integers(0, 400, articles)]
    arts = pa.table({
        "article_id": pa.array(art_ids, pa.int32()),
        "title": [_title(rng, c) + ("\tmed tab" if i == 3 else "") for i, c in enumerate(cats)],
        "subtitle": [f"Underrubrik {i} på dansk" for i in range(articles)],
        "body": ["brødtekst " * 5] * articles,
        "category": pa.array([CATEGORIES.index(c) for c in cats], pa.int16()),
        "category_str": cats,
        "subcategory": pa.array([[i % 7 + 100, 200] if i % 5 == 0 else [i % 7 + 100] for i in range(articles)],
                                pa.list_(pa.int16())),
        "url": [f"https://ekstrabladet.dk/{c}/{a}" for c, a in zip(cats, art_ids)],
        "published_time": pa.array(published, pa.timestamp("us")),
        "ner_clusters": [["Mette Frederiksen", "Brøndby"]] * articles,
        "entity_groups": [["PER", "ORG"]] * articles,
        "topics": [["politik"]] * articles,
    })
    (root / "train").mkdir(parents=True)
    (root / "validation").mkdir()
    pq.write_table(arts, root / "articles.parquet")
    pref = {u: CATEGORIES[u % len(CATEGORIES)] for u in range(users)}
    imp_id = 1
    splits = {"train": [], "validation": []}
    for d, day in enumerate(EB_DAYS):
        split = "train" if d < EB_TRAIN_DAYS else "validation"
        start = datetime.fromisoformat(day)
        for _ in range(per_day):
            u = int(rng.integers(0, users))
            inview = rng.choice(art_ids, size=int(rng.integers(5, 9)), replace=False)
            liked = [a for a in inview if cats[a - 1000] == pref[u]]
            clicked = [int(liked[0])] if liked else [int(inview[0])]
            splits[split].append({
                "impression_id": imp_id, "article_id": None,
                "impression_time": start + timedelta(seconds=int(rng.integers(0, 86399))),
                "read_time": 12.0, "scroll_percentage": 50.0, "device_type": int(rng.integers(0, 4)),
                "article_ids_inview": [int(a) for a in inview], "article_ids_clicked": clicked,
                "user_id": u, "is_sso_user": True, "gender": None, "postcode": None if u % 3 else u % 5,
                "age": None, "is_subscriber": False, "session_id": imp_id,
            })
            imp_id += 1
    t = datetime.fromisoformat(EB_DAYS[0]) + timedelta(hours=12)
    base = dict(splits["train"][0], impression_time=t, user_id=1)
    splits["train"] += [
        dict(base, impression_id=900001, article_ids_clicked=[]),
        dict(base, impression_id=900002, article_ids_inview=[], article_ids_clicked=[1001]),
        dict(base, impression_id=900003, article_ids_inview=[1001, 1002, 5555], article_ids_clicked=[1001, 1003]),
        dict(base, impression_id=900004, user_id=999),
    ]
    splits["validation"].append(dict(base, impression_id=900004, impression_time=t + timedelta(days=4)))
    for split, rows in splits.items():
        frame = pd.DataFrame(rows)
        table = pa.Table.from_pandas(frame, preserve_index=False).cast(pa.schema([
            ("impression_id", pa.uint32()), ("article_id", pa.int32()), ("impression_time", pa.timestamp("us")),
            ("read_time", pa.float32()), ("scroll_percentage", pa.float32()), ("device_type", pa.int8()),
            ("article_ids_inview", pa.list_(pa.int32())), ("article_ids_clicked", pa.list_(pa.int32())),
            ("user_id", pa.uint32()), ("is_sso_user", pa.bool_()), ("gender", pa.int8()), ("postcode", pa.int8()),
            ("age", pa.int8()), ("is_subscriber", pa.bool_()), ("session_id", pa.uint32()),
        ]))
        pq.write_table(table, root / split / "behaviors.parquet")
        hist_users = sorted(set(range(users)))
        first = datetime.fromisoformat(EB_DAYS[0]) - timedelta(days=3)
        history = pa.table({
            "user_id": pa.array(hist_users, pa.uint32()),
            "impression_time_fixed": pa.array(
                [[first + timedelta(hours=h) for h in (5, 1, 3)] for _ in hist_users], pa.list_(pa.timestamp("us"))),
            "scroll_percentage_fixed": pa.array([[10.0, 20.0, 30.0]] * len(hist_users), pa.list_(pa.float32())),
            "article_id_fixed": pa.array([[int(art_ids[u % articles]), 1001, 1002] for u in hist_users],
                                         pa.list_(pa.int32())),
            "read_time_fixed": pa.array([[1.0, 2.0, 3.0]] * len(hist_users), pa.list_(pa.float32())),
        })
        pq.write_table(history, root / split / "history.parquet")
    return root


ADRESSA_DAYS = ["2017-01-01", "2017-01-02", "2017-01-03", "2017-01-04", "2017-01-05"]
NORWEGIAN = ["Trøndelag", "blåbær", "«Rosenborg»", "ærlig", "– sier", "skøyte", "fjøs", "hytte 😀", "været", "Ørland"]


def build_adressa_events(root, seed=0, users=30, articles=40, per_hour=3, hours=(8, 12, 18, 21)):
    """Adressa raw events, one JSON-lines file per day (like the one-week release), real key names.
    Extras: a front-page pageview per hour (no id), a repeat view per day, article 'untitled' without title."""
    rng = np.random.default_rng(seed)
    cats = ["nyheter", "sport", "kultur", "pluss"]
    ids = [f"{i:040x}" for i in range(1, articles + 1)]
    root.mkdir(parents=True, exist_ok=True)
    event_id = 0
    for day in ADRESSA_DAYS:
        lines = []
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        for hour in hours:
            t0 = int((start + timedelta(hours=hour)).timestamp())
            for _ in range(per_hour):
                u = int(rng.integers(0, users))
                if rng.random() < 0.5:
                    a = int(rng.integers(0, articles))
                else:
                    a = (u * 3 + int(rng.integers(0, 3))) % articles
                event_id += 1
                lines.append({
                    "eventId": event_id, "userId": f"cx:{u:04d}", "time": t0 + int(rng.integers(0, 3599)),
                    "id": ids[a], "url": f"http://adressa.no/{cats[a % 4]}/{ids[a][:8]}.html",
                    "title": f"{cats[a % 4].title()}: " + " ".join(rng.choice(NORWEGIAN, size=4)) + f" {a}",
                    "category0": cats[a % 4], "category1": f"{cats[a % 4]}|trondheim",
                    "publishtime": "2016-12-31T10:00:00.000Z", "activeTime": 30, "deviceType": ["Mobile", "Pc"][u % 2],
                    "city": "trondheim", "region": ["sor-trondelag", "oslo"][u % 2], "country": "no",
                    "profile": [{"item": "rosenborg", "groups": [{"group": "entity", "weight": 1.0, "count": 1}]}],
                })
            event_id += 1
            lines.append({"eventId": event_id, "userId": "cx:0001", "time": t0 + 5, "url": "http://adressa.no/",
                          "deviceType": "Pc", "city": "trondheim"})
        repeat = dict(lines[0], eventId=event_id + 1, time=lines[0]["time"] + 60)
        event_id += 1
        lines.append(repeat)
        lines.append({"eventId": event_id + 1, "userId": "cx:0002", "time": int(start.timestamp()) + 3600 * 8 + 10,
                      "id": "untitled", "url": "http://adressa.no/x.html", "category0": "nyheter"})
        event_id += 1
        rng.shuffle(lines)
        (root / day.replace("-", "")).write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines),
                                                 encoding="utf-8")
    return root
