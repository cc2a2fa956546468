"""Early-decision policies: the vectorised rule equals the online one; the fixed cut-off is the paper's."""

from __future__ import annotations

import numpy as np
import pytest

from edgestream.core.errors import ConfigError
from edgestream.runners.early_exit import ConfidenceExit, FixedCutoff, evaluate


def probs_of(labels_per_step, confidence):
    p = np.full((len(labels_per_step), 3), (1 - np.asarray(confidence))[:, None] / 2)
    p[np.arange(len(labels_per_step)), labels_per_step] = confidence
    return p


def test_confidence_exit_needs_a_streak_of_the_same_class():
    conf = [0.95, 0.95, 0.5, 0.95, 0.95, 0.95, 0.95]
    p = probs_of([1, 1, 1, 2, 2, 2, 0], conf)
    used, label = ConfidenceExit(threshold=0.9, patience=3).decide(p)
    assert used.tolist() == [6] and label.tolist() == [2]  # steps 4-6: class 2 three times
    used, label = ConfidenceExit(threshold=0.9, patience=5).decide(p)
    assert used.tolist() == [7] and label.tolist() == [0]  # never: decided at the last step


def test_vectorised_equals_online(rng):
    p = rng.dirichlet([0.3, 0.3, 0.3], size=(20, 50))
    policy = ConfidenceExit(threshold=0.7, patience=3, min_steps=4)
    used, labels = policy.decide(p)
    for trial in range(20):
        state, decision = policy.init(), None
        for t in range(50):
            state, decision = policy.update(state, p[trial, t])
            if decision is not None:
                break
        if decision is None:
            decision = (50, int(p[trial, -1].argmax()))
        assert decision == (used[trial], labels[trial])


def test_fixed_cutoff_and_evaluate():
    p = np.zeros((2, 128, 2))
    p[:, :, 0] = 1.0
    p[1, 86:, :] = [0.0, 1.0]  # trial 1 flips to class 1 at frame 87
    used, labels = FixedCutoff(87).decide(p)
    assert used.tolist() == [87, 87] and labels.tolist() == [0, 1]
    res = evaluate(FixedCutoff(87), p, [0, 1])
    assert res["accuracy"] == 1.0 and res["mean_fraction"] == pytest.approx(87 / 128)
    with pytest.raises(ConfigError, match=r"threshold must lie in \[0.0, 1.0\]; got 1.5"):
        ConfidenceExit(threshold=1.5)
    with pytest.raises(ConfigError, match=r"labels must have one label per trial \(2\); got 3"):
        evaluate(FixedCutoff(3), p, [0, 1, 1])
