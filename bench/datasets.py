"""Readers for the public data sets in ../shared/datasets (see its README for the protocol).

Each reader returns a `Dataset`: per-user chronological sequences (string ids) and,
where the data set has them, item texts for content vectors. Nothing here is copied
into the repository; the benchmarks take a path.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from recommender.ml.data import Event, UserSequence, build_sequences


@dataclass
class Dataset:
    name: str
    sequences: dict[str, UserSequence]
    texts: dict[str, str] = field(default_factory=dict)  # item id -> "title. genres"
    exact_users: set[str] = field(default_factory=set)  # ML-1M users whose sequence is complete


def read_ml1m(path: str | Path) -> Dataset:
    """sequences.txt (`user item`, chronological per user) + titles and genres from movies.dat."""
    path = Path(path)
    items_by_user: dict[str, list[str]] = defaultdict(list)
    with (path / "sequences.txt").open() as handle:
        for line in handle:
            user, item = line.split()
            items_by_user[user].append(item)
    sequences = {u: UserSequence(items) for u, items in items_by_user.items()}
    movie_of = dict(
        line.split() for line in (path / "item_to_movie_id.txt").read_text().splitlines() if line.strip()
    )
    movies = {}
    for line in (path / "movies.dat").read_text(encoding="ISO-8859-1").splitlines():
        parts = line.split("::")
        if len(parts) == 3:
            movies[parts[0]] = f"{parts[1]}. {parts[2].replace('|', ', ')}"
    texts = {item: movies[movie] for item, movie in movie_of.items() if movie in movies}
    exact_file = path / "exact_users.json"
    exact = {str(u) for u in json.loads(exact_file.read_text())} if exact_file.exists() else set()
    return Dataset("ml-1m", sequences, texts, exact)


def read_ml100k(path: str | Path) -> Dataset:
    """u.data (`user item rating unix_time`) ordered by time; texts from u.item titles + genres."""
    path = Path(path)
    events = []
    with (path / "u.data").open() as handle:
        for line in handle:
            user, item, _rating, ts = line.split("\t")
            events.append(Event(user, item, float(ts)))
    genres = [
        line.split("|")[0]
        for line in (path / "u.genre").read_text(encoding="ISO-8859-1").splitlines()
        if line.strip()
    ]
    texts = {}
    for line in (path / "u.item").read_text(encoding="ISO-8859-1").splitlines():
        parts = line.split("|")
        if len(parts) >= 5 + len(genres):
            flags = parts[5 : 5 + len(genres)]
            names = [g for g, f in zip(genres, flags, strict=True) if f == "1"]
            texts[parts[0]] = f"{parts[1]}. {', '.join(names)}"
    # whole histories: train() cuts to its own max_len
    return Dataset("ml-100k", build_sequences(events, max_len=None), texts)


def read_beauty(path: str | Path) -> Dataset:
    """Beauty.txt: one line per user, `user item item ...`, chronological; no texts."""
    path = Path(path)
    file = path / "Beauty.txt" if path.is_dir() else path
    sequences = {}
    with file.open() as handle:
        for line in handle:
            user, *items = line.split()
            sequences[user] = UserSequence(items)
    return Dataset("beauty", sequences)


READERS = {"ml-1m": read_ml1m, "ml-100k": read_ml100k, "beauty": read_beauty}
