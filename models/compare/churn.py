"""Vigil's point-in-time churn models against BG/NBD and recency, on simulated purchase logs.

Simulates purchase histories from the BG/NBD and Pareto/NBD generative models (parameters
chosen here, not fitted to any real data set), splits the customers into a training cohort and a
held-out cohort, and at one cutoff ranks the held-out cohort by:

- Vigil: `vigil train --kind churn --score-at ... --horizon H` on the training cohort (every
  family), then `vigil score --at CUTOFF --horizon H` on the held-out cohort;
- BG/NBD and Pareto/NBD (the `lifetimes` package), each fitted on the held-out cohort's
  purchases before the cutoff: 1 - P(alive) at the cutoff;
- recency: days since the last purchase at the cutoff.

A customer churned when they buy nothing in [cutoff, cutoff + H). Prints ROC AUC, AUPRC and the
precision of the top tenth for each. Needs numpy, pandas and lifetimes from PyPI; the test
suite does not use it.

    python3 models/compare/churn.py --vigil target/release/vigil --out /tmp/churn-compare
"""

import argparse
import csv
import datetime as dt
import pathlib
import subprocess

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ParetoNBDFitter

START = dt.date(2024, 1, 1)
DAYS = 546  # 78 weeks
CUTOFF = 364
HORIZON = 182
# Training score times: each one's horizon ends before the history does.
TRAIN_AT = [182, 224, 266, 308, 350]

MAPPING = """\
# A purchase log: one row per purchase, a day and an amount, nothing else.
kind = "payment"
customer_id = "customer_id"
timestamp = { column = "date", format = "date" }
amount = "amount"
currency = { value = "USD" }
country = { value = "US" }
merchant = { value = "store" }
category = { value = "5999" }
"""


def bgnbd(rng, n, r, alpha, a, b, join):
    """Purchase days per customer: rate ~ Gamma(r, 1/alpha), after each purchase the customer
    drops out with p ~ Beta(a, b). Every customer's first purchase is the day they join."""
    out = []
    for c in range(n):
        rate = rng.gamma(r, 1.0 / alpha)
        p = rng.beta(a, b)
        t = float(join[c])
        days = [int(join[c])]
        while True:
            if rng.random() < p:
                break
            t += rng.exponential(1.0 / rate)
            if t >= DAYS:
                break
            days.append(int(t))
        out.append(days)
    return out


def pareto_nbd(rng, n, r, alpha, s, beta, join):
    """Purchase days per customer: rate ~ Gamma(r, 1/alpha), lifetime ~ Exp(mu) with
    mu ~ Gamma(s, 1/beta)."""
    out = []
    for c in range(n):
        rate = rng.gamma(r, 1.0 / alpha)
        mu = rng.gamma(s, 1.0 / beta)
        end = min(DAYS, join[c] + rng.exponential(1.0 / mu))
        t = float(join[c])
        days = [int(join[c])]
        while True:
            t += rng.exponential(1.0 / rate)
            if t >= end:
                break
            days.append(int(t))
        out.append(days)
    return out


def write_log(path, histories, ids, rng):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "date", "amount"])
        rows = []
        for cid, days in zip(ids, histories):
            spend = rng.lognormal(3.0, 0.6)
            for d in days:
                amount = round(spend * rng.lognormal(0.0, 0.3), 2)
                rows.append((d, cid, amount))
        rows.sort()
        for d, cid, amount in rows:
            w.writerow([cid, (START + dt.timedelta(days=int(d))).isoformat(), amount])


def labels(histories, ids):
    return {
        cid: int(not any(CUTOFF <= d < CUTOFF + HORIZON for d in days))
        for cid, days in zip(ids, histories)
        if min(days) < CUTOFF
    }


def metrics(y, score):
    y = np.asarray(y)
    score = np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="stable")
    ys = y[order]
    pos, neg = ys.sum(), len(ys) - ys.sum()
    # ROC AUC by ranks, ties averaged.
    ranks = pd.Series(score).rank().to_numpy()
    auc = (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)
    tp = np.cumsum(ys)
    precision = tp / np.arange(1, len(ys) + 1)
    auprc = (precision * ys).sum() / pos
    top = max(1, len(ys) // 10)
    return auc, auprc, ys[:top].mean()


def vigil_scores(vigil, out, train_csv, held_csv, mapping, family):
    model = out / f"churn-{family}.json"
    at = ",".join((START + dt.timedelta(days=d)).isoformat() for d in TRAIN_AT)
    subprocess.run(
        [vigil, "train", "--kind", "churn", "--input", f"file:{train_csv}", "--mapping", mapping,
         "--score-at", at, "--horizon", f"{HORIZON}d", "--algorithm", family,
         "--out", str(model), "--version", "1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    scores = out / f"scores-{family}.csv"
    subprocess.run(
        [vigil, "score", "--kind", "churn", "--input", f"file:{held_csv}", "--mapping", mapping,
         "--at", (START + dt.timedelta(days=CUTOFF)).isoformat(), "--model", str(model),
         "--out", str(scores)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return pd.read_csv(scores).set_index("customer_id")["score"]


def alive_scores(histories, ids, fitter):
    rows = []
    for cid, days in zip(ids, histories):
        before = sorted(set(d for d in days if d < CUTOFF))
        if not before:
            continue
        # lifetimes' convention: repeat purchase days, recency from the first to the last,
        # T from the first to the cutoff.
        rows.append((cid, len(before) - 1, before[-1] - before[0], CUTOFF - before[0]))
    summary = pd.DataFrame(rows, columns=["customer_id", "frequency", "recency", "T"])
    summary = summary.set_index("customer_id")
    fitter.fit(summary["frequency"], summary["recency"], summary["T"])
    alive = fitter.conditional_probability_alive(
        summary["frequency"], summary["recency"], summary["T"])
    return pd.Series(1.0 - np.asarray(alive), index=summary.index)


def recency_scores(histories, ids):
    return pd.Series(
        {cid: CUTOFF - max(d for d in days if d < CUTOFF)
         for cid, days in zip(ids, histories) if min(days) < CUTOFF})


def run(name, simulate, args, rng):
    out = pathlib.Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    mapping = out / "mapping.toml"
    mapping.write_text(MAPPING)
    n = args.customers
    join = rng.integers(0, 84, size=2 * n)  # customers join over the first 12 weeks
    histories = simulate(rng, 2 * n, join)
    ids = [f"c-{i:06d}" for i in range(2 * n)]
    train_csv, held_csv = out / "train.csv", out / "holdout.csv"
    write_log(train_csv, histories[:n], ids[:n], rng)
    write_log(held_csv, histories[n:], ids[n:], rng)
    truth = labels(histories[n:], ids[n:])
    cids = sorted(truth)
    y = [truth[c] for c in cids]
    print(f"\n{name}: {n} training and {len(cids)} held-out customers, "
          f"{np.mean(y):.0%} of the held-out churn in the {HORIZON} days after day {CUTOFF}")
    print(f"{'model':<26}{'ROC AUC':>9}{'AUPRC':>8}{'top 10%':>9}")
    ranked = {
        "recency": recency_scores(histories[n:], ids[n:]),
        "BG/NBD 1 - P(alive)": alive_scores(histories[n:], ids[n:], BetaGeoFitter()),
        "Pareto/NBD 1 - P(alive)": alive_scores(histories[n:], ids[n:], ParetoNBDFitter()),
    }
    for family in ["logistic", "tree", "gbdt"]:
        ranked[f"Vigil {family}"] = vigil_scores(
            args.vigil, out, train_csv, held_csv, str(mapping), family)
    for model, scores in ranked.items():
        auc, auprc, top = metrics(y, [scores[c] for c in cids])
        print(f"{model:<26}{auc:>9.3f}{auprc:>8.3f}{top:>9.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vigil", default="target/release/vigil")
    parser.add_argument("--out", default="churn-compare")
    parser.add_argument("--customers", type=int, default=3000,
                        help="per cohort (training and held-out)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    run("bgnbd", lambda rng, n, join: bgnbd(rng, n, r=0.6, alpha=12.0, a=0.7, b=3.5, join=join),
        args, rng)
    run("pareto-nbd",
        lambda rng, n, join: pareto_nbd(rng, n, r=0.6, alpha=12.0, s=0.8, beta=150.0, join=join),
        args, rng)


if __name__ == "__main__":
    main()
