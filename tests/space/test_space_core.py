"""Property-based tests of the torch-free search-space core (nb201, fbnet and every registered space)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsconas.errors import InvalidArchitectureError
from hsconas.space import Architecture, SearchSpace, get_space, list_spaces
from hsconas.spaces.fbnet import FBNET_OPS
from hsconas.spaces.nb201 import NB201_OPS

seeds = st.integers(min_value=0, max_value=2**32 - 1)
REFERENCE = ["nb201", "fbnet"]
SPACES = list_spaces()


def _space(name: str) -> SearchSpace:
    return get_space(name)


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=30, deadline=None)
@given(seed=seeds)
def test_string_and_json_round_trip(name: str, seed: int) -> None:
    space = _space(name)
    arch = space.sample(seed)
    assert space.from_string(space.to_string(arch)) == arch
    doc = space.to_json(arch)
    assert space.from_json(doc) == arch
    assert space.from_json(json.loads(json.dumps(doc))) == arch
    assert space.from_json(json.dumps(doc)) == arch
    # equal architectures, equal strings: the string is the database key
    assert space.to_string(space.from_json(doc)) == doc["arch"]


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=30, deadline=None)
@given(seed=seeds)
def test_operators_stay_inside(name: str, seed: int) -> None:
    space = _space(name)
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    assert space.contains(a) and a in space
    child = space.mutate(a, rng)
    assert space.contains(child)
    assert child != a
    assert space.contains(space.crossover(a, b, rng))


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=20, deadline=None)
@given(seed=seeds)
def test_sampling_is_reproducible(name: str, seed: int) -> None:
    space = _space(name)
    assert space.sample_many(5, seed) == space.sample_many(5, seed)
    assert space.sample_many(5, np.random.default_rng(seed)) == space.sample_many(5, seed)
    a = space.sample(seed)
    assert space.mutate(a, seed + 1) == space.mutate(a, seed + 1)


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=20, deadline=None)
@given(seed=seeds)
def test_features_match_names(name: str, seed: int) -> None:
    space = _space(name)
    arch = space.sample(seed)
    vec = space.features(arch)
    assert vec.shape == (len(space.feature_names),)
    assert np.isfinite(vec).all()
    assert len(set(space.feature_names)) == len(space.feature_names)
    # different architectures of the same space never share a feature vector
    other = space.mutate(arch, seed)
    assert not np.array_equal(space.features(other), vec)


@pytest.mark.parametrize("name", REFERENCE)
@settings(max_examples=20, deadline=None)
@given(seed=seeds)
def test_reference_features_are_one_hot(name: str, seed: int) -> None:
    space = _space(name)
    vec = space.features(space.sample(seed))
    assert set(np.unique(vec)) <= {0.0, 1.0}
    assert vec.sum() == len(space.genes)  # one hot column per gene


def test_feature_columns_of_reference_spaces() -> None:
    assert len(get_space("nb201").feature_names) == 6 * 5
    assert len(get_space("fbnet").feature_names) == 22 * 9


@pytest.mark.parametrize("name", REFERENCE)
@settings(max_examples=25, deadline=None)
@given(data=st.data(), seed=seeds)
def test_restricted_space_samples_only_allowed(name: str, data: st.DataObject, seed: int) -> None:
    space = _space(name)
    ops = NB201_OPS if name == "nb201" else FBNET_OPS
    genes = data.draw(st.lists(st.sampled_from(space.gene_names), min_size=1, unique=True))
    allowed = {
        g: data.draw(st.lists(st.sampled_from(ops), min_size=1, max_size=len(ops) - 1, unique=True))
        for g in genes
    }
    small = space.restrict(allowed)
    assert small.is_restricted
    assert small.size() < space.size()
    rng = np.random.default_rng(seed)
    for arch in small.sample_many(10, rng):
        values = small.as_dict(arch)
        assert all(values[g] in allowed[g] for g in genes)
        assert small.contains(arch) and space.contains(arch)
        assert small.contains(small.mutate(arch, rng))
    # an architecture using a removed op is rejected, naming the layer
    gene = genes[0]
    removed = next(op for op in ops if op not in allowed[gene])
    outside = space.make({**space.as_dict(small.sample(rng)), gene: removed})
    assert not small.contains(outside)
    with pytest.raises(InvalidArchitectureError) as err:
        small.validate(outside)
    assert err.value.gene == gene and err.value.value == removed


def test_nb201_enumerates_15625_distinct() -> None:
    space = get_space("nb201")
    archs = list(space.enumerate())
    assert len(archs) == 15625 == space.size()
    assert len(set(archs)) == 15625
    assert len({space.to_string(a) for a in archs}) == 15625


@settings(max_examples=30, deadline=None)
@given(seed=seeds, op=st.text(min_size=1, max_size=12).filter(lambda s: s not in NB201_OPS))
def test_bad_op_is_rejected_with_layer_and_choices(seed: int, op: str) -> None:
    space = get_space("nb201")
    values = list(space.sample(seed).values)
    values[2] = op
    with pytest.raises(InvalidArchitectureError) as err:
        space.make(values)
    assert err.value.gene == "edge2<-1"
    assert tuple(err.value.allowed) == NB201_OPS
    assert "edge2<-1" in str(err.value) and "nor_conv_3x3" in str(err.value)
    assert not space.contains(Architecture("nb201", tuple(values)))


@pytest.mark.parametrize("name", REFERENCE)
@settings(max_examples=20, deadline=None)
@given(seed=seeds)
def test_unique_sampling(name: str, seed: int) -> None:
    space = _space(name)
    archs = space.sample_many(50, seed, unique=True)
    assert len(set(archs)) == 50
