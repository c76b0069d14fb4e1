"""Holds Vigil's model to scikit-learn's on the same rows.

Reads the CSV that `vigil train --export-features PATH.csv` writes (the features in model
order, label, event_ts, customer_id, holdout, vigil_score), fits scikit-learn's
HistGradientBoostingClassifier and LogisticRegression on the rows with holdout = 0, and prints
AUPRC and recall at 0.1% and 1% alert rates on good traffic for them and for Vigil's own scores,
all on the rows with holdout = 1. Needs numpy and scikit-learn (see README.md here).

    python models/compare/compare.py features.csv
"""

import csv
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TRAILER = ["label", "event_ts", "customer_id", "holdout", "vigil_score"]


def load(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        width = len(header) - len(TRAILER)
        if header[width:] != TRAILER:
            sys.exit(f"{path}: not a `vigil train --export-features` file (last columns {header[width:]})")
        rows = list(reader)
    x = np.array([[float(v) for v in r[:width]] for r in rows])
    y = np.array([r[width] == "1" for r in rows])
    holdout = np.array([r[width + 3] == "1" for r in rows])
    vigil = np.array([float(r[width + 4]) for r in rows])
    return header[:width], x, y, holdout, vigil


def recall_at(scores, y, alert_rate):
    """Recall when the threshold lets `alert_rate` of the good rows through."""
    threshold = np.quantile(scores[~y], 1.0 - alert_rate)
    return float(np.mean(scores[y] > threshold))


def main(path):
    names, x, y, holdout, vigil = load(path)
    train, test = ~holdout, holdout
    print(f"{path}: {len(names)} features; {train.sum()} training rows ({y[train].sum()} positive), "
          f"{test.sum()} evaluation rows ({y[test].sum()} positive)")
    positive_weight = min((~y[train]).sum() / max(y[train].sum(), 1), 50.0)
    weights = np.where(y[train], positive_weight, 1.0)
    models = {
        "sklearn HistGradientBoosting": HistGradientBoostingClassifier(
            max_iter=500, learning_rate=0.1, max_leaf_nodes=31, early_stopping=True,
            validation_fraction=0.1, n_iter_no_change=30, random_state=0),
        "sklearn LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    }
    results = [("vigil (its own scores)", vigil[test], None)]
    for name, model in models.items():
        started = time.time()
        if name.endswith("LogisticRegression"):
            model.fit(x[train], y[train], logisticregression__sample_weight=weights)
        else:
            model.fit(x[train], y[train], sample_weight=weights)
        results.append((name, model.predict_proba(x[test])[:, 1], time.time() - started))
    print(f"{'model':<32} {'AUPRC':>7} {'recall@0.1%':>12} {'recall@1%':>10} {'fit s':>7}")
    for name, scores, seconds in results:
        fit = f"{seconds:7.1f}" if seconds is not None else "      -"
        print(f"{name:<32} {average_precision_score(y[test], scores):7.3f} "
              f"{recall_at(scores, y[test], 0.001):12.3f} {recall_at(scores, y[test], 0.01):10.3f} {fit}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
