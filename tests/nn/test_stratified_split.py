"""stratified_split: every class in the validation set, a partition, seeded, the per-class draws in class order."""

import numpy as np

from excess.nn.training import stratified_split, train_val_split


def test_partition_with_every_class_in_validation():
    y = np.array([0] * 40 + [1] * 5 + [2] * 55)[np.random.default_rng(0).permutation(100)]
    tr, va = stratified_split(y, 0.2, np.random.default_rng(1), classes=range(3))
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(100))
    assert [int((y[va] == c).sum()) for c in range(3)] == [8, 1, 11]  # round(0.2 n_c), at least one
    tr2, va2 = stratified_split(y, 0.2, np.random.default_rng(1))  # default classes: the sorted labels
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(y, 0.2, np.random.default_rng(2))[1])


def test_draws_class_by_class_from_one_generator():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1])
    tr, va = stratified_split(y, 0.3, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    i0, i1 = np.nonzero(y == 0)[0], np.nonzero(y == 1)[0]
    (a0, b0), (a1, b1) = train_val_split(4, 0.3, rng), train_val_split(6, 0.3, rng)
    assert np.array_equal(tr, np.concatenate([i0[a0], i1[a1]]))
    assert np.array_equal(va, np.concatenate([i0[b0], i1[b1]]))
    assert stratified_split(y, 0.0, np.random.default_rng(5))[1].size == 0
