"""Checks that an environment suits the Act/Env agent, before anything is trained."""

import gymnasium as gym


def check_environment(env_id: str, env_kwargs: dict) -> float | None:
    """Raise a clear error unless ``env_id`` (``module:EnvId`` imports ``module`` first, where
    an environment of one's own registers itself) made with ``env_kwargs`` has Box states and
    Discrete actions; its reward threshold, where its spec states one."""
    try:
        env = gym.make(env_id, **env_kwargs)
    except gym.error.DependencyNotInstalled as error:
        raise ValueError(
            f"{env_id} is registered, but it needs a package that is not installed: {error}"
        ) from error
    except gym.error.Error as error:
        raise ValueError(
            f"Unknown Gymnasium environment '{env_id}': {error}. Registered ids are listed by "
            "gymnasium.pprint_registry()."
        ) from error
    except TypeError as error:  # the environment's constructor refused an env_kwargs key
        raise ValueError(f"GymCollector env_kwargs={env_kwargs} for {env_id}: {error}") from error
    observation_space, action_space = env.observation_space, env.action_space
    threshold = env.spec.reward_threshold if env.spec is not None else None
    env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"{env_id} has a {type(action_space).__name__} action space; the Act/Env agent picks "
            "one of n actions and needs a Discrete action space."
        )
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(
            f"{env_id} observes {observation_space}; the Act/Env agent needs a flat Box "
            "observation (a vector of floats)."
        )
    return threshold
