from hydra.core.global_hydra import GlobalHydra

from twinrun.compose import compose_config, group_options


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
