"""Properties of the hypothesis strategies in :mod:`twinrun.testing.strategies` (no training here)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, NoSuchExample

from twinrun.testing.compose import compose_config, group_options
from twinrun.testing.strategies import (
    SEED_MAX,
    _sorted_by_key,
    batch_sizes_not_dividing,
    format_value,
    group_choices,
    leaf_overrides,
    overrides,
    seed_edge_examples,
    seeds,
)

BOUNDS = {"optimizer.lr": (1e-4, 1e-2), "training.batch_size": (1, 64)}


def _split(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


@pytest.fixture(scope="module")
def vae_cfg():
    return compose_config("vae_mnist")


@pytest.fixture
def tiny_conf(tmp_path: Path) -> Path:
    """A config dir of its own: group ``opt`` with options ``a``, ``b``, ``c``; typed leaves."""
    (tmp_path / "opt").mkdir()
    for name in "abc":
        (tmp_path / "opt" / f"{name}.yaml").write_text(f"label: {name}\n")
    (tmp_path / "app.yaml").write_text(
        "defaults:\n  - opt: a\n  - _self_\nn: 3\nx: 0.5\nflag: false\nname: hi\nmaybe: null\n"
    )
    return tmp_path


@settings(max_examples=200)
@given(seed=seeds())
def test_seeds_are_ints_in_the_config_range(seed: int) -> None:
    assert type(seed) is int
    assert 0 <= seed <= SEED_MAX


def test_seeds_reach_both_ends_of_the_range() -> None:
    assert find(seeds(), lambda s: True) == 0  # the simplest seed is 0, a valid seed
    assert find(seeds(), lambda s: s >= SEED_MAX) == SEED_MAX
    assert find(seeds(), lambda s: s > 2**31) > 2**31  # beyond int32: the full uint32 range


def test_seed_edge_examples_always_runs_both_edges() -> None:
    seen: list[int] = []

    @settings(max_examples=3, database=None)
    @seed_edge_examples()  # the argument is named "seed" unless told otherwise
    @given(seed=seeds())
    def probe(seed: int) -> None:
        seen.append(seed)

    probe()
    assert seen[:2] == [SEED_MAX, 0] or seen[:2] == [0, SEED_MAX]
    assert len(seen) >= 3  # the explicit examples come on top of generated ones


def test_seed_edge_examples_fixes_other_given_arguments() -> None:
    seen: list[tuple[int, int]] = []

    @settings(max_examples=1, database=None)
    @seed_edge_examples("s", n=7)
    @given(s=seeds(), n=st.integers(0, 3))
    def probe(s: int, n: int) -> None:
        seen.append((s, n))

    probe()
    assert (0, 7) in seen and (SEED_MAX, 7) in seen

    @seed_edge_examples("s")  # n missing: hypothesis refuses the example instead of guessing
    @given(s=seeds(), n=st.integers(0, 3))
    def incomplete(s: int, n: int) -> None:
        pass

    with pytest.raises(InvalidArgument):
        incomplete()


def test_group_choices_sample_exactly_the_loader_options(tiny_conf: Path) -> None:
    strategy = group_choices("opt", config_dir=tiny_conf)
    for option in ("a", "b", "c"):
        assert find(strategy, lambda o, option=option: o == option) == option
    with pytest.raises(NoSuchExample):
        find(strategy, lambda o: o not in {"a", "b", "c"})
    assert find(group_choices("experiment"), lambda o: True) == group_options("experiment")[0]


def test_group_choices_rejects_an_unknown_group(tiny_conf: Path) -> None:
    # The message names where it looked: the given folder, else twinrun's own configs.
    with pytest.raises(ValueError) as given_dir:
        group_choices("nope", config_dir=tiny_conf)
    assert str(given_dir.value) == f"config group 'nope' has no options in {tiny_conf}"
    with pytest.raises(ValueError) as own_conf:
        group_choices("nope")
    assert str(own_conf.value) == "config group 'nope' has no options in twinrun conf/"


@settings(max_examples=40)
@given(data=st.data())
def test_leaf_overrides_keep_types_and_bounds(data, vae_cfg) -> None:
    items = data.draw(leaf_overrides(vae_cfg, keys=[*BOUNDS, "deterministic"], bounds=BOUNDS))
    assert [i.split("=")[0] for i in items] == ["deterministic", "optimizer.lr", "training.batch_size"]
    values = _split(items)
    assert values["deterministic"] in ("true", "false")
    batch = values["training.batch_size"]
    assert batch.isdigit() and 1 <= int(batch) <= 64  # an int stays an int: no "8.0"
    lr = float(values["optimizer.lr"])
    assert 1e-4 <= lr <= 1e-2


@settings(max_examples=15)
@given(data=st.data())
def test_leaf_overrides_round_trip_through_hydra_exactly(data, vae_cfg) -> None:
    bounds = {"optimizer.lr": (0.0, 1.0), "training.batch_size": (1, 512), "seed": (0, SEED_MAX)}
    items = data.draw(leaf_overrides(vae_cfg, keys=[*bounds, "deterministic"], bounds=bounds))
    cfg = compose_config("vae_mnist", items)
    values = _split(items)
    assert type(cfg.optimizer.lr) is float and cfg.optimizer.lr == float(values["optimizer.lr"])
    assert type(cfg.training.batch_size) is int and cfg.training.batch_size == int(
        values["training.batch_size"]
    )
    assert type(cfg.seed) is int and cfg.seed == int(values["seed"])
    assert cfg.deterministic is (values["deterministic"] == "true")


def test_leaf_overrides_reach_the_declared_bounds(vae_cfg) -> None:
    strategy = leaf_overrides(vae_cfg, bounds={"training.batch_size": (3, 9)})
    assert find(strategy, lambda i: True) == ["training.batch_size=3"]
    assert find(strategy, lambda i: int(i[0].split("=")[1]) >= 9) == ["training.batch_size=9"]


def test_leaf_overrides_type_null_leaves_from_their_bounds(tiny_conf: Path) -> None:
    cfg = compose_config("app", config_dir=tiny_conf)
    as_int = find(leaf_overrides(cfg, bounds={"maybe": (2, 5)}), lambda i: True)
    as_float = find(leaf_overrides(cfg, bounds={"maybe": (0.5, 1.5)}), lambda i: True)
    assert as_int == ["maybe=2"]
    value = as_float[0].removeprefix("maybe=")
    assert "." in value and 0.5 <= float(value) <= 1.5  # float bounds: a float, even when whole


@pytest.mark.parametrize(
    ("keys", "bounds", "message"),
    [
        (["n"], None, "declare its bounds"),
        (["name"], None, "not a numeric or boolean"),
        (["missing.key"], None, "not a key"),
        (None, {"x": (1.0, 0.0)}, "empty"),
        (None, {"n": (0.2, 0.8)}, "no integer"),
        (["n"], {"n": (0, 1), "x": (0.0, 1.0)}, "not varied"),
        (["flag"], {"flag": (0, 5)}, "boolean"),
    ],
)
def test_leaf_overrides_refuse_unusable_requests(tiny_conf: Path, keys, bounds, message) -> None:
    cfg = compose_config("app", config_dir=tiny_conf)
    with pytest.raises(ValueError, match=message):
        leaf_overrides(cfg, keys=keys, bounds=bounds)


def test_format_value_writes_hydra_literals() -> None:
    assert format_value(True) == "true" and format_value(False) == "false"
    assert format_value(5) == "5" and format_value(5e-05) == "5e-05" and format_value(1.0) == "1.0"
    with pytest.raises(ValueError):
        format_value(float("nan"))


@settings(max_examples=100)
@given(n=st.integers(2, 500), data=st.data())
def test_batch_sizes_never_divide(n: int, data) -> None:
    if all(n % b == 0 for b in range(2, n + 1)):  # only n == 2 leaves nothing in [2, n]
        with pytest.raises(ValueError):
            batch_sizes_not_dividing(n)
        return
    size = data.draw(batch_sizes_not_dividing(n))
    assert 2 <= size <= n and n % size != 0


def test_batch_sizes_respect_explicit_range() -> None:
    strategy = batch_sizes_not_dividing(12, low=5, high=20)
    assert find(strategy, lambda b: True) == 5
    assert find(strategy, lambda b: b > 12) == 13  # larger than n: one partial batch
    assert find(strategy, lambda b: b >= 20) == 20  # `high` itself is drawn (the range is inclusive)
    assert find(batch_sizes_not_dividing(12, low=5, high=7), lambda b: b > 5) == 7
    with pytest.raises(NoSuchExample):
        find(strategy, lambda b: b in (6, 12))  # divisors are never drawn
    with pytest.raises(ValueError, match="divides"):
        batch_sizes_not_dividing(12, low=6, high=6)


@settings(max_examples=10)
@given(data=st.data())
def test_overrides_combine_sorted_and_compose(data) -> None:
    strategy = overrides("vae_mnist", groups=("experiment",), bounds=BOUNDS)
    items = data.draw(strategy)
    keys = [i.split("=", 1)[0] for i in items]
    assert keys == sorted(keys) == ["experiment", "optimizer.lr", "seed", "training.batch_size"]
    cfg = compose_config("vae_mnist", items)  # Hydra accepts every combination
    assert cfg.seed == int(_split(items)["seed"])
    assert cfg.optimizer.lr == float(_split(items)["optimizer.lr"])  # value override beats experiment


def test_overrides_restrict_groups_and_seed(tiny_conf: Path) -> None:
    strategy = overrides("app", groups={"opt": ["c", "b"]}, seed_key=None, config_dir=tiny_conf)
    assert find(strategy, lambda i: True) == ["opt=b"]
    with pytest.raises(NoSuchExample):
        find(strategy, lambda i: i == ["opt=a"])
    with pytest.raises(ValueError, match="no option"):
        overrides("app", groups={"opt": ["z"]}, seed_key=None, config_dir=tiny_conf)
    with pytest.raises(ValueError, match="seed_key=None"):
        overrides("app", config_dir=tiny_conf)


def test_overrides_refuse_a_key_varied_twice_given_as_an_iterator() -> None:
    for keys in (["seed"], iter(["seed"])):  # an iterator is read twice inside: it must not slip through
        with pytest.raises(ValueError, match="keys varied twice: seed"):
            overrides("vae_mnist", bounds={"seed": (0, 5)}, keys=keys)


def test_batch_sizes_default_low_is_two_and_one_is_allowed() -> None:
    assert find(batch_sizes_not_dividing(7), lambda b: True) == 2
    assert find(batch_sizes_not_dividing(7, low=1), lambda b: True) == 2  # 1 divides every n
    with pytest.raises(ValueError, match="divides"):
        batch_sizes_not_dividing(1, low=1)  # n=1 is valid input; only its batch sizes all divide it


@pytest.mark.parametrize(("n", "low"), [(0, 2), (7, 0), (-3, 0)])
def test_batch_sizes_reject_a_bad_n_or_low(n: int, low: int) -> None:
    with pytest.raises(ValueError) as error:
        batch_sizes_not_dividing(n, low=low)
    assert str(error.value) == f"need n >= 1 and low >= 1, got n={n}, low={low}"


def test_overrides_are_sorted_by_key_not_by_whole_string() -> None:
    # "training.batch_size=..." < "training=..." as strings ('.' < '='), but the key "training" comes first.
    strategy = overrides("vae_mnist", groups=("training",), bounds={"training.batch_size": (1, 64)})
    items = find(strategy, lambda items: True)
    assert [item.split("=", 1)[0] for item in items] == ["seed", "training", "training.batch_size"]


@pytest.mark.parametrize(
    ("keys", "bounds", "message"),
    [
        (["n"], None, "n is numeric: declare its bounds, e.g. bounds={'n': (low, high)}"),
        (
            ["name"],
            None,
            "name='hi' is not a numeric or boolean leaf; use group_choices or your own strategy",
        ),
        (["missing.key"], None, "missing.key is not a key of the config"),
        (["n.deeper"], None, "n.deeper is not a key of the config"),  # below a leaf
        (None, {"x": (1.0, 0.0)}, "bounds for x are empty: 1.0 > 0.0"),
        (None, {"n": (0.2, 0.8)}, "bounds (0.2, 0.8) for integer n hold no integer"),
        (
            ["n"],
            {"n": (0, 1), "x": (0.0, 1.0), "a": (0, 1)},
            "bounds given for keys that are not varied: a, x",
        ),
        (["flag"], {"flag": (0, 5)}, "flag is a boolean: leave it out of bounds or give (False, True)"),
    ],
)
def test_leaf_overrides_refusals_say_exactly_what_to_do(tiny_conf: Path, keys, bounds, message) -> None:
    cfg = compose_config("app", config_dir=tiny_conf)
    with pytest.raises(ValueError) as error:
        leaf_overrides(cfg, keys=keys, bounds=bounds)
    assert str(error.value) == message


def test_leaf_overrides_edge_bounds(tiny_conf: Path) -> None:
    cfg = compose_config("app", config_dir=tiny_conf)
    assert find(leaf_overrides(cfg, bounds={"n": (3, 3)}), lambda i: True) == ["n=3"]  # one value
    assert find(leaf_overrides(cfg, bounds={"n": (2.5, 3.5)}), lambda i: True) == ["n=3"]  # narrowed
    narrowed = leaf_overrides(cfg, bounds={"n": (0.5, 3.5)})
    assert find(narrowed, lambda i: True) == ["n=1"]
    assert find(narrowed, lambda i: i[0] >= "n=3") == ["n=3"]
    assert find(leaf_overrides(cfg, bounds={"x": (0.25, 0.25)}), lambda i: True) == ["x=0.25"]
    flags = leaf_overrides(cfg, keys=["flag"], bounds={"flag": (False, True)})
    fresh = settings(database=None)  # no replayed example: each find shrinks from scratch
    assert find(flags, lambda i: True, settings=fresh) == ["flag=false"]
    assert find(flags, lambda i: i != ["flag=false"], settings=fresh) == ["flag=true"]
    assert find(leaf_overrides(cfg), lambda i: True) == []  # nothing asked: nothing varied


def test_a_null_leaf_with_a_boolean_bound_is_a_float(tiny_conf: Path) -> None:
    cfg = compose_config("app", config_dir=tiny_conf)
    value = find(leaf_overrides(cfg, bounds={"maybe": (False, 3)}), lambda i: True)[0].removeprefix("maybe=")
    assert value == "0.0"


@settings(max_examples=30, database=None)
@given(data=st.data())
def test_float_leaves_stay_finite_within_bounds(data) -> None:
    cfg = {"x": 0.5}
    items = data.draw(leaf_overrides(cfg, bounds={"x": (-1.0, 1.0)}))
    assert len(items) == 1 and -1.0 <= float(items[0].removeprefix("x=")) <= 1.0


class _Node:
    """A mapping-like node that is not a ``Mapping``: keys, membership and item access only."""

    def __init__(self, items: dict) -> None:
        self._items = items

    def keys(self):
        return self._items.keys()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __getitem__(self, key: str):
        return self._items[key]


def test_leaf_overrides_walk_mapping_like_nodes() -> None:
    cfg = _Node({"opt": _Node({"lr": 0.5}), "n": 4})
    assert find(leaf_overrides(cfg, bounds={"opt.lr": (0.5, 0.5), "n": (4, 4)}), lambda i: True) == [
        "n=4",
        "opt.lr=0.5",
    ]


def test_format_value_refuses_non_finite_floats_by_name() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError) as error:
            format_value(value)
        assert str(error.value) == f"{value!r} has no place in a bounded override"
    assert format_value(-0.0) == "-0.0" and format_value(0) == "0" and format_value(-3) == "-3"


def test_overrides_refuse_unknown_or_empty_group_options(tiny_conf: Path) -> None:
    for allowed, said in ((["z", "a", "y"], "['y', 'z']"), ([], "[]")):
        with pytest.raises(ValueError) as error:
            overrides("app", groups={"opt": allowed}, seed_key=None, config_dir=tiny_conf)
        assert str(error.value) == f"config group 'opt' has no option(s) {said}"
    with pytest.raises(ValueError) as error:
        overrides("app", config_dir=tiny_conf)
    assert str(error.value) == "app has no 'seed' key: pass seed_key=None or the right key"


def test_overrides_vary_a_named_seed_key_and_whole_groups(tiny_conf: Path) -> None:
    strategy = overrides("app", groups=["opt"], seed_key="n", config_dir=tiny_conf)
    assert find(strategy, lambda i: True) == ["n=0", "opt=a"]
    assert find(strategy, lambda i: i[1] == "opt=c" and int(i[0][2:]) >= SEED_MAX) == [
        f"n={SEED_MAX}",
        "opt=c",
    ]
    with pytest.raises(ValueError) as error:
        overrides("app", seed_key="n", bounds={"n": (0, 1)}, config_dir=tiny_conf)
    assert str(error.value) == "keys varied twice: n"


def test_overrides_apply_base_overrides_before_typing_leaves(tiny_conf: Path) -> None:
    (tiny_conf / "opt" / "b.yaml").write_text("label: b\nrate: 0.5\n")
    strategy = overrides(
        "app", bounds={"opt.rate": (0.5, 0.5)}, seed_key=None, config_dir=tiny_conf, base_overrides=["opt=b"]
    )
    assert find(strategy, lambda i: True) == ["opt.rate=0.5"]
    with pytest.raises(ValueError, match=r"opt\.rate is not a key"):  # control: opt=a has no rate
        overrides("app", bounds={"opt.rate": (0.5, 0.5)}, seed_key=None, config_dir=tiny_conf)


def test_overrides_keys_vary_booleans_without_bounds(tiny_conf: Path) -> None:
    strategy = overrides(
        "app", groups={"opt": ["b"]}, keys=iter(["flag"]), seed_key=None, config_dir=tiny_conf
    )
    assert find(strategy, lambda i: True) == ["flag=false", "opt=b"]


@settings(max_examples=60, database=None)
@given(data=st.data(), bound=st.sampled_from([(-math.inf, 1.0), (0.0, math.inf)]))
def test_an_infinite_float_bound_still_draws_finite_values(data, bound: tuple[float, float]) -> None:
    items = data.draw(leaf_overrides({"x": 0.5}, bounds={"x": bound}))
    value = float(items[0].removeprefix("x="))
    assert math.isfinite(value) and bound[0] <= value <= bound[1]


def test_a_value_holding_an_equals_sign_does_not_move_its_override() -> None:
    # sorted by the text before the first "=": "opt" < "opt.x" although "opt=a" > "opt.x"
    assert _sorted_by_key(["opt.x=1", "opt=a=b"]) == ["opt=a=b", "opt.x=1"]
    assert _sorted_by_key(["b=1", "a=2=3", "a.b=0"]) == ["a=2=3", "a.b=0", "b=1"]


def test_seeds_never_leave_the_config_range() -> None:
    @settings(max_examples=100, database=None)
    @given(seed=seeds())  # built inside the test: the strategy itself is what is checked
    def probe(seed: int) -> None:
        assert 0 <= seed <= SEED_MAX

    probe()
    with pytest.raises(NoSuchExample):
        find(seeds(), lambda s: not 0 <= s <= SEED_MAX, settings=settings(max_examples=200, database=None))


def test_overrides_name_every_key_varied_twice(tiny_conf: Path) -> None:
    (tiny_conf / "flag").mkdir()  # a group named like a leaf, varied as both
    (tiny_conf / "flag" / "on.yaml").write_text("label: on\n")
    with pytest.raises(ValueError) as error:
        overrides(
            "app",
            groups=["flag"],
            seed_key="n",
            keys=["flag", "n"],
            bounds={"n": (0, 1)},
            config_dir=tiny_conf,
        )
    assert str(error.value) == "keys varied twice: flag, n"
