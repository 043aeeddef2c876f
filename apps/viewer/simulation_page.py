"""A simulation's page: accuracy over rounds, partitions, privacy, and each capture's attacks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from apps.viewer.attack_page import render_attack
from apps.viewer.records import AttackRun, SimulationRun
from apps.viewer.widgets import filter_frame, fmt_number, fmt_share, metric_row


def render(root: Path, run: SimulationRun) -> None:
    """The whole page of one simulation folder."""
    st.title(f"Simulation · {run.dataset or '?'} · {run.model or '?'}")
    st.caption(run.path)
    final = next((v for v in reversed(run.accuracy) if v is not None), None)
    metric_row(
        [
            ("final accuracy", fmt_share(final), "global model on the test images"),
            ("rounds", str(run.rounds or len(run.accuracy_rounds)), None),
            ("clients", str(run.clients or len(run.partitions)), None),
            ("captures", str(len(run.captures)), "client updates the server saved"),
            ("attacks", str(len(run.attacks)), "attack runs under attacks/"),
            ("ε spent", fmt_number(run.privacy.epsilon[-1], 2) if run.privacy else "n/a", None),
        ]
    )
    for problem in run.problems:
        st.warning(problem)
    names = ["Attacks", "Accuracy", "Partitions", *(["Privacy"] if run.privacy else []), "Config"]
    tabs = dict(zip(names, st.tabs(names), strict=True))
    with tabs["Attacks"]:
        _attacks(root, run)
    with tabs["Accuracy"]:
        _accuracy(run)
    with tabs["Partitions"]:
        _partitions(run)
    if run.privacy:
        with tabs["Privacy"]:
            spent = zip(run.privacy.rounds, run.privacy.epsilon, strict=False)
            privacy = pd.DataFrame(spent, columns=["round", "epsilon"])
            st.line_chart(privacy, x="round", y="epsilon", y_label="ε")
            if run.privacy.delta is not None:
                st.caption(f"δ = {run.privacy.delta:g}")
    with tabs["Config"]:
        st.json(dict(run.config), expanded=False)


def _accuracy(run: SimulationRun) -> None:
    pairs = list(zip(run.accuracy_rounds, run.accuracy, strict=False))
    rounds, accuracy = [r for r, _ in pairs], [a for _, a in pairs]
    if run.initial_accuracy is not None:
        rounds, accuracy = [0, *rounds], [run.initial_accuracy, *accuracy]
    if not accuracy:
        st.info("No accuracy.json in this run.")
        return
    frame = pd.DataFrame({"round": rounds, "accuracy": accuracy})
    st.line_chart(frame, x="round", y="accuracy", y_label="test accuracy")
    st.caption("round 0 is the initial global model")


def _partitions(run: SimulationRun) -> None:
    if not run.partitions:
        st.info("No partitions.json in this run.")
        return
    labels = max(len(p.label_counts) for p in run.partitions)
    frame = pd.DataFrame(
        [
            {
                "client": p.client,
                "size": p.size,
                **{f"label {i}": (p.label_counts + (0,) * labels)[i] for i in range(labels)},
            }
            for p in run.partitions
        ]
    )
    st.caption(f"partition: {run.partition or '?'}")
    label_columns = [f"label {i}" for i in range(labels)]
    st.bar_chart(frame, x="client", y=label_columns, y_label="images", stack=True)
    st.dataframe(frame, hide_index=True)


def _attacks(root: Path, run: SimulationRun) -> None:
    if run.attacks:
        table = pd.DataFrame([_attack_row(a) for a in run.attacks])
        shown = filter_frame(table, ["round", "client", "attack"], key=f"{run.path}-attacks")
        st.dataframe(shown, hide_index=True, key=f"{run.path}-attack-table")
    if not run.captures:
        st.info("No captured updates (observations/) in this run.")
        return
    rounds = sorted({c.round for c in run.captures})
    clients = sorted({c.client for c in run.captures})
    attacked = {(a.round, a.client) for a in run.attacks}
    first = min(attacked, default=(rounds[0], clients[0]))
    left, right = st.columns(2)
    client = left.selectbox(
        "client", clients, index=_index_of(clients, first[1]), key=f"{run.path}-client"
    )
    round_ = right.selectbox(
        "round", rounds, index=_index_of(rounds, first[0]), key=f"{run.path}-round"
    )
    on_capture = [a for a in run.attacks if (a.round, a.client) == (round_, client)]
    if not on_capture:
        command = f"fedleak attack --run {root / run.path} --round {round_} --client {client}"
        st.info(f"No attack on client {client}'s round-{round_} update yet: `{command}`")
    for attack in on_capture:
        st.subheader(f"{attack.attack or '?'} · round {attack.round} · client {attack.client}")
        st.caption(attack.path)
        render_attack(root, attack, key=attack.path)


def _index_of(values: list[int], value: int | None) -> int:
    return values.index(value) if value in values else 0


def _attack_row(attack: AttackRun) -> dict[str, object]:
    return {
        "round": attack.round,
        "client": attack.client,
        "attack": attack.attack,
        "psnr": attack.psnr,
        "ssim": attack.ssim,
        "lpips": attack.lpips,
        "st_lpips": attack.st_lpips,
        "label_accuracy": attack.label_accuracy,
        "iterations": attack.iterations,
        "path": attack.path,
    }
