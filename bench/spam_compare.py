"""The library candidate for the spam filter, measured on the same replay as `forum spam-eval`.

scikit-learn is NOT a dependency of the forum; run this from a separate environment:

    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn
    /tmp/sk/bin/python bench/spam_compare.py /work/shared/data/youtube-spam/*.csv

Same order as spam-eval (date order, undated rows after the row before them), same
protocol (score each comment, then learn it), same measure (ROC AUC after the first 50
decisions; spam and legitimate comments at or above each threshold). The model:
HashingVectorizer (word 1-2-grams + character 3-5-grams within words, 2**20 features
each) and SGDClassifier(loss="log_loss") taught one comment at a time with partial_fit.
"""

from __future__ import annotations

import csv
import pickle
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import roc_auc_score


def read(paths: list[str]) -> list[tuple[str, str, bool]]:
    rows = []
    for path in paths:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            last = ""
            for record in csv.DictReader(stream):
                last = record["DATE"].strip() or last
                rows.append((last, len(rows), record["AUTHOR"], record["CONTENT"], record["label"]))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [(author, text, label == "1") for _, _, author, text, label in rows]


def site_packages_size(names: list[str]) -> int:
    import importlib

    total = 0
    for name in names:
        module = importlib.import_module(name)
        path = Path(module.__file__)
        if path.name != "__init__.py":  # a single-file module
            total += path.stat().st_size
            continue
        root = path.parent
        total += sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        for libs in root.parent.glob(f"{name}.libs"):
            total += sum(p.stat().st_size for p in libs.rglob("*") if p.is_file())
    return total


def main(paths: list[str]) -> None:
    rows = read(paths)
    words = HashingVectorizer(n_features=2**20, ngram_range=(1, 2), alternate_sign=False)
    chars = HashingVectorizer(
        n_features=2**20, analyzer="char_wb", ngram_range=(3, 5), alternate_sign=False
    )
    model = SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)
    scores, labels, score_ms, learn_ms = [], [], [], []
    for i, (author, text, spam) in enumerate(rows):
        started = time.perf_counter()
        x = hstack([words.transform([f"{author} {text}"]), chars.transform([text])]).tocsr()
        score = model.predict_proba(x)[0, 1] if i >= 2 else 0.5
        scored = time.perf_counter()
        model.partial_fit(x, [int(spam)], classes=[0, 1])
        learned = time.perf_counter()
        score_ms.append((scored - started) * 1000)
        learn_ms.append((learned - scored) * 1000)
        if i >= 50:
            scores.append(score)
            labels.append(spam)
    y = np.array(labels)
    s = np.array(scores)
    print(f"ROC AUC: {roc_auc_score(y, s):.4f}")
    for t in (0.5, 0.7, 0.8, 0.85, 0.9):
        print(
            f"threshold {t}: spam caught {np.mean(s[y] >= t):.1%}, "
            f"legitimate wrongly caught {np.mean(s[~y] >= t):.1%}"
        )
    print(
        f"scoring {statistics.median(score_ms):.2f} ms median, "
        f"learning {statistics.median(learn_ms):.2f} ms median (in memory, one process)"
    )
    print(f"model to share between workers: {len(pickle.dumps(model)) / 1e6:.1f} MB pickled")
    size = site_packages_size(["sklearn", "scipy", "numpy", "joblib", "threadpoolctl"])
    print(f"install size (sklearn, scipy, numpy, joblib, threadpoolctl): {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
