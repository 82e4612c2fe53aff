"""The report's Plotly figures, one function each; a function returns None when its data is absent.

Plotly renders a subset of HTML in labels, so every string taken from results goes through `_escaped`
before it reaches a figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hamtune import escape
from hamtune.report.importance import Importance
from hamtune.results.intervals import expected_max
from hamtune.results.rank import Metric, direction, search_trials

HEIGHT = 420
MAX_CURVES = 8
MAX_DISTRIBUTIONS = 4
DETECTION = (("test_auroc", "AUROC"), ("test_f1", "F1"))
QUALITY = ("test_ssim", "test_psnr", "test_mse")
HOVER = {"rank": True, "lr": ":.2g", "latent_dim": True, "sweep": True}


def _escaped(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [escape.html(str(v)) if isinstance(v, str) else v for v in out[column]]
    return out


def with_labels(trials: pd.DataFrame) -> pd.DataFrame:
    """Adds `model_type` (kind x arch, or the classical model) and `trial` (a short, escaped legend label)."""
    kind = trials["kind"] if "kind" in trials.columns else pd.Series(None, index=trials.index, dtype=object)
    arch = trials["arch"] if "arch" in trials.columns else pd.Series(None, index=trials.index, dtype=object)
    model = trials["model"] if "model" in trials.columns else pd.Series(None, index=trials.index, dtype=object)
    types = [
        f"{k.upper()} {a.upper()}" if isinstance(k, str) and isinstance(a, str) else str(m if isinstance(m, str) else "other")
        for k, a, m in zip(kind, arch, model)
    ]
    multi = trials["sweep"].nunique() > 1
    labels = [f"{s}/{t}" if multi else str(t) for s, t in zip(trials["sweep"], trials["trial_id"])]
    out = trials.assign(model_type=types, trial=labels)
    if "rebalance" in out.columns:
        out["rebalance"] = out["rebalance"].fillna("n/a")
    return _escaped(out)


def _layout(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(title=title, height=height, template="plotly_white", margin=dict(l=60, r=20, t=60, b=50))
    return fig


def _pareto(x: np.ndarray, y: np.ndarray, x_higher: bool, y_higher: bool) -> np.ndarray:
    """Indices of points no other point beats on both axes, ordered along x."""
    xs, ys = (x if x_higher else -x), (y if y_higher else -y)
    order = np.lexsort((-ys, -xs))
    front, best_y = [], -np.inf
    for i in order:
        if ys[i] > best_y:
            front.append(i)
            best_y = ys[i]
    return np.array(sorted(front, key=lambda i: x[i]), dtype=int)


def quality_vs_detection(board: pd.DataFrame, test_key: str) -> go.Figure | None:
    """Reconstruction quality against anomaly detection: a good reconstruction is not a good detector by itself."""
    quality = next((c for c in QUALITY if c in board.columns and board[c].notna().any()), None)
    detection = [(c, name) for c, name in DETECTION if c in board.columns and board[c].notna().any()]
    if quality is None or not detection:
        return None
    frames = [with_labels(board).assign(detection=name, value=board[c].astype(float)) for c, name in detection]
    long = pd.concat(frames, ignore_index=True).dropna(subset=[quality, "value"])
    fig = px.scatter(
        long,
        x=quality,
        y="value",
        color="model_type",
        symbol="rebalance" if "rebalance" in long.columns else None,
        facet_col="detection",
        hover_name="trial",
        hover_data={k: v for k, v in HOVER.items() if k in long.columns},
        labels={"value": "detection metric", "model_type": "kind x arch"},
    )
    for col, (_, name) in enumerate(detection, start=1):
        part = long[long["detection"] == name]
        front = _pareto(part[quality].to_numpy(float), part["value"].to_numpy(float), bool(direction(quality)), True)
        fig.add_trace(
            go.Scatter(
                x=part[quality].to_numpy()[front],
                y=part["value"].to_numpy()[front],
                mode="lines+markers",
                line=dict(color="grey", dash="dot"),
                marker=dict(symbol="circle-open", size=14, color="grey"),
                name="Pareto front",
                showlegend=col == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    fig.update_yaxes(matches=None, showticklabels=True)
    return _layout(fig, f"Reconstruction quality vs anomaly detection ({escape.html(test_key)})")


def parallel_coordinates(importance: Importance, test_key: str) -> go.Figure | None:
    from optuna.visualization import plot_parallel_coordinate

    if importance.study is None or len(importance.study.trials) < 2:
        return None
    fig = plot_parallel_coordinate(importance.study, target_name=importance.target)
    title = f"Parameters -> {escape.html(importance.target)}, {importance.trials} complete trials ({escape.html(test_key)})"
    return _layout(fig, title, height=460)


def expected_best(board: pd.DataFrame, select: Metric, test_key: str) -> go.Figure | None:
    """Expected best `select` (the validation objective) of n trials against n, per sweep, from its ranked search
    trials (results.rank.search_trials: no baselines, ensembles or confirm seeds; results.intervals.expected_max;
    trials a scheduler stopped early count as the sweep returned them), with a +-1 sd band; None with fewer than 2."""
    searched = search_trials(board)
    fig = go.Figure()
    colors = px.colors.qualitative.Plotly
    sign = 1.0 if select.higher_is_better else -1.0
    for i, (sweep, group) in enumerate(searched.groupby("sweep", sort=False)):
        values = pd.to_numeric(group[select.column], errors="coerce").to_numpy(float)
        if np.isfinite(values).sum() < 2:
            continue
        n, mean, sd = expected_max(sign * values)
        mean, color, name = sign * mean, colors[i % len(colors)], escape.html(str(sweep))
        fig.add_trace(
            go.Scatter(
                x=np.r_[n, n[::-1]],
                y=np.r_[mean + sd, (mean - sd)[::-1]],
                fill="toself",
                opacity=0.2,
                line=dict(width=0),
                fillcolor=color,
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(go.Scatter(x=n, y=mean, mode="lines+markers", name=name, line=dict(color=color)))
    if not fig.data:
        return None
    fig.update_xaxes(title="number of trials")
    fig.update_yaxes(title=f"expected best {escape.html(select.column)}")
    return _layout(fig, f"Expected best {escape.html(select.column)} vs number of trials ({escape.html(test_key)})")


def importance_bar(importance: Importance, test_key: str) -> go.Figure | None:
    if not importance.values:
        return None
    frame = pd.DataFrame({"parameter": list(importance.values), "importance": [float(v) for v in importance.values.values()]})
    fig = px.bar(frame.iloc[::-1], x="importance", y="parameter", orientation="h")
    return _layout(fig, f"Parameter importance, fANOVA ({escape.html(test_key)})", height=max(260, 40 + 28 * len(frame)))


def _first(frame: pd.DataFrame, column: str) -> str | None:
    values = frame[column].dropna() if column in frame.columns else pd.Series(dtype=object)
    return str(values.iloc[0]) if len(values) else None


def optimisation_history(trials: pd.DataFrame) -> go.Figure | None:
    """Best-so-far of each sweep's own objective, trials in the order they finished (the report passes the search
    trials only: baselines and ensembles are no sequential search)."""
    if "objective_metric" not in trials.columns:
        return None
    fig = go.Figure()
    colors = px.colors.qualitative.Plotly
    for i, (sweep, group) in enumerate(trials.groupby("sweep", sort=False)):
        group = group.sort_values("finished_at") if "finished_at" in group.columns else group
        objective = _first(group, "objective_metric")
        if objective is None or objective not in group.columns:
            continue
        mode = _first(group, "objective_mode") or "max"
        values = pd.to_numeric(group[objective], errors="coerce").to_numpy(float)
        order = np.arange(1, len(values) + 1)
        best = pd.Series(values).cummax() if mode == "max" else pd.Series(values).cummin()
        name = escape.html(f"{sweep} ({objective})")
        color = colors[i % len(colors)]
        fig.add_trace(
            go.Scatter(
                x=order,
                y=values,
                mode="markers",
                name=name,
                marker=dict(color=color, opacity=0.5),
                text=[escape.html(str(t)) for t in group["trial_id"]],
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=order, y=best.ffill(), mode="lines", name=f"{name} best so far", line=dict(color=color, shape="hv"), legendgroup=name
            )
        )
    if not fig.data:
        return None
    fig.update_xaxes(title="trial (in order finished)")
    fig.update_yaxes(title="objective")
    return _layout(fig, "Optimisation history: best objective so far, per sweep")


def validation_column(metric: Metric, epochs: pd.DataFrame, trials: pd.DataFrame) -> str | None:
    """The per-epoch column that tracks the metric: val_auroc for test_auroc, else the sweep's objective."""
    candidates = [metric.column.replace("test_", "val_", 1)]
    if "objective_metric" in trials.columns:
        candidates += [str(m) for m in trials["objective_metric"].dropna().unique()]
    candidates += ["val_auroc", "val_loss"]
    return next((c for c in candidates if c in epochs.columns and epochs[c].notna().any()), None)


def learning_curves(top: pd.DataFrame, epochs: pd.DataFrame, column: str | None) -> go.Figure | None:
    """Validation metric per epoch of the top trials; trials stopped early by the scheduler are dashed."""
    if column is None or not len(epochs):
        return None
    top = top.head(MAX_CURVES)
    keys = set(zip(top["sweep"], top["trial_id"]))
    rows = epochs[[k in keys for k in zip(epochs["sweep"], epochs["trial_id"])]]
    if not len(rows):
        return None
    meta = top[["sweep", "trial_id", "status", "rank"]].assign(trial=with_labels(top)["trial"].to_numpy())
    rows = rows.drop(columns=[c for c in ("status",) if c in rows.columns]).merge(meta, on=["sweep", "trial_id"])
    rows = rows.sort_values(["rank", "epoch"])
    fig = px.line(
        rows, x="epoch", y=column, color="trial", line_dash="status", markers=True, category_orders={"status": ["completed", "stopped"]}
    )
    if rows["epoch"].max() <= 20:
        fig.update_xaxes(dtick=1)
    return _layout(fig, f"Learning curves of the top {len(top)} trials ({escape.html(column)} per epoch; dashed: stopped early)")


def _scores_of(scores: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    return scores[(scores["sweep"] == row["sweep"]) & (scores["trial_id"] == row["trial_id"])]


def roc_pr(best: pd.DataFrame, scores: pd.DataFrame, test_key: str) -> go.Figure | None:
    """ROC and precision-recall of the best trial of each group, from the per-image test scores."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    if not len(scores) or "label" not in scores.columns:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=("ROC", "Precision-recall"), horizontal_spacing=0.1)
    colors = px.colors.qualitative.Plotly
    labelled = with_labels(best)
    prevalence = None
    for i, (_, row) in enumerate(labelled.iterrows()):
        part = _scores_of(scores, best.loc[row.name])
        labels, values = part["label"].to_numpy(int), part["score"].to_numpy(float)
        keep = np.isfinite(values)
        labels, values = labels[keep], values[keep]
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, values)
        precision, recall, _ = precision_recall_curve(labels, values)
        prevalence = float(labels.mean())
        name = f"{row['model_type']} {row.get('rebalance', '')}: {row['trial']}"
        color = colors[i % len(colors)]
        fig.add_trace(
            go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUROC {auc(fpr, tpr):.3f})", line=dict(color=color), legendgroup=name),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(x=recall, y=precision, mode="lines", name=name, showlegend=False, line=dict(color=color), legendgroup=name),
            row=1,
            col=2,
        )
    if prevalence is None:
        return None
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dot"), name="chance"), row=1, col=1)
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[prevalence] * 2, mode="lines", line=dict(color="grey", dash="dot"), name="chance", showlegend=False),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="false positive rate", row=1, col=1)
    fig.update_yaxes(title_text="true positive rate", row=1, col=1)
    fig.update_xaxes(title_text="recall", row=1, col=2)
    fig.update_yaxes(title_text="precision", row=1, col=2)
    return _layout(fig, f"ROC and precision-recall, best trial per group ({escape.html(test_key)})", height=480)


def score_distributions(best: pd.DataFrame, scores: pd.DataFrame, test_key: str) -> go.Figure | None:
    """Anomaly score per diagnosis, normal vs anomalous: where the detector separates classes and where not."""
    if not len(scores) or "dx" not in scores.columns:
        return None
    best = best.head(MAX_DISTRIBUTIONS)
    labelled = with_labels(best)
    parts = []
    for index, row in labelled.iterrows():
        part = _scores_of(scores, best.loc[index])
        parts.append(part.assign(trial=f"{row['model_type']}: {row['trial']}"))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    data = data[np.isfinite(data["score"].astype(float))] if len(data) else data
    if not len(data):
        return None
    data = _escaped(data.assign(truth=np.where(data["label"] == 1, "anomalous", "normal")))
    dx_order = data.groupby("dx")["label"].mean().sort_values(kind="stable").index.tolist()
    log = bool((data["score"] > 0).all())
    fig = px.box(
        data,
        x="dx",
        y="score",
        color="truth",
        facet_col="trial",
        facet_col_wrap=2,
        log_y=log,
        points="outliers",
        category_orders={"dx": dx_order, "truth": ["normal", "anomalous"]},
        color_discrete_map={"normal": "#4C78A8", "anomalous": "#E45756"},
        hover_data=["image_id"],
    )
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    rows = (len(best) + 1) // 2
    return _layout(fig, f"Anomaly scores per diagnosis{' (log scale)' if log else ''} ({escape.html(test_key)})", height=320 * rows + 80)


def sweep_comparison(ranked: pd.DataFrame, metric: Metric) -> go.Figure | None:
    if ranked["sweep"].nunique() < 2:
        return None
    data = _escaped(ranked[["sweep", "trial_id", "test_key", metric.column]])
    fig = px.box(data, x="sweep", y=metric.column, color="test_key", points="all", hover_name="trial_id", labels={"test_key": "test set"})
    return _layout(fig, f"{escape.html(metric.column)} per sweep")


def reproduction(summary: pd.DataFrame, column: str) -> go.Figure | None:
    """Mean and standard deviation over seeds of each reproduced config."""
    if f"{column} mean" not in summary.columns:
        return None
    data = _escaped(summary)
    fig = px.scatter(data, x="config_id", y=f"{column} mean", error_y=f"{column} std", color="sweep" if "sweep" in data else None)
    return _layout(fig, f"Reproduction over seeds: {escape.html(column)} (mean ± std)")
