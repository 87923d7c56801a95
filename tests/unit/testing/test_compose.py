from hydra.core.global_hydra import GlobalHydra

from twinrun.testing.compose import compose_config, group_options


def test_compose_leaves_no_global_hydra_behind() -> None:
    cfg = compose_config("vae_mnist", ["experiment=exp2", "seed=0"])
    assert cfg.optimizer.lr == 0.0003 and cfg.seed == 0
    assert not GlobalHydra.instance().is_initialized()


def test_experiments_differ_in_a_hyperparameter() -> None:
    exp1 = compose_config("vae_mnist", ["experiment=exp1"])
    exp2 = compose_config("vae_mnist", ["experiment=exp2"])
    assert exp1.optimizer.lr != exp2.optimizer.lr
    assert exp1.model == exp2.model


def test_classifier_pulls_model_conf_and_training_conf() -> None:
    cfg = compose_config("mnist_classifier")
    assert cfg.model._target_.endswith("CNNClassifier") and cfg.training.batch_size == 64


def test_group_options_come_from_conf() -> None:
    assert group_options("experiment") == ["exp1", "exp2"]
    assert group_options("data") == ["fashion_mnist", "mnist", "synthetic"]
    assert {"vae", "model_conf"} <= set(group_options("model"))


def test_compose_restores_an_outer_initialisation() -> None:
    from hydra import initialize_config_dir

    from twinrun.config import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        outer = GlobalHydra.instance().hydra
        compose_config("vae_mnist")
        assert GlobalHydra.instance().is_initialized()
        assert GlobalHydra.instance().hydra is outer


def test_editing_model_conf_or_training_conf_changes_the_job_config(tmp_path) -> None:
    import shutil

    from twinrun.config import config_dir

    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    before = compose_config("mnist_classifier", config_dir=conf)
    for name, old, new in (
        ("model/model_conf.yaml", "hidden: 64", "hidden: 96"),
        ("training/training_conf.yaml", "batch_size: 64", "batch_size: 32"),
    ):
        path = conf / name
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))
    after = compose_config("mnist_classifier", config_dir=conf)
    assert (before.model.hidden, after.model.hidden) == (64, 96)
    assert (before.training.batch_size, after.training.batch_size) == (64, 32)
    assert (
        compose_config("vae_mnist", config_dir=conf).training.batch_size == 128
    )  # the VAE's file is untouched


def test_return_hydra_config_keeps_the_apps_hydra_node() -> None:
    plain = compose_config("vae_mnist", ["seed=0"])
    full = compose_config("vae_mnist", ["seed=0"], return_hydra_config=True)
    assert "hydra" not in plain and list(full.hydra.overrides.task) == ["seed=0"]
    assert not GlobalHydra.instance().is_initialized()


def test_hydra_defaults_name_the_job_and_leave_no_global_hydra() -> None:
    from twinrun.testing.compose import hydra_defaults

    cfg = hydra_defaults("train")
    assert list(cfg) == ["hydra"] and cfg.hydra.job.name == "train" and cfg.hydra.output_subdir == ".hydra"
    assert not GlobalHydra.instance().is_initialized()
