"""The training schedule, defined once: which training sample comes when, and at which learning rate.

Stage after stage (one stage unless the rule trains layer after layer), `epochs` per stage (default
`rule.epochs`); epoch e of stage s visits every training sample in the order data.epoch_order(seed, s * epochs + e)
at the learning rate spec.lr_at_epoch(e): every stage restarts the lr schedule. The float references, the
fixed-point reference's stream (onward.reference.training_stream, which verify, the demo and the reports feed to
the device) all read it from here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from onward.data import epoch_order
from onward.fixed import I64
from onward.spec import Spec


@dataclass(frozen=True)
class Epoch:
    stage: int
    epoch: int  # within its stage
    lr: float
    order: I64  # the training samples' indices, in this epoch's order


def stage_epochs(spec: Spec, n_train: int, stage: int, epochs: int | None = None) -> Iterator[Epoch]:
    """The epochs of one stage."""
    epochs = spec.rule.epochs if epochs is None else epochs
    for epoch in range(epochs):
        yield Epoch(stage, epoch, spec.lr_at_epoch(epoch), epoch_order(spec.seed, stage * epochs + epoch, n_train))


def schedule(spec: Spec, n_train: int, stages: int = 1, epochs: int | None = None) -> Iterator[Epoch]:
    """Every epoch of every stage, in order."""
    for stage in range(stages):
        yield from stage_epochs(spec, n_train, stage, epochs)
