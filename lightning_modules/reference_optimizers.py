"""The optimizers the modules default to, as classes with their settings as defaults, so that a
config can change one setting (``--model.generator_optimizer.init_args.lr 2e-4``) and keep the
others. ``fused=True`` computes the same Adam update in one kernel for all parameters, faster
than PyTorch's default loop on the CPU too (BENCHMARKS.md)."""

from collections.abc import Iterable

from torch.optim import Adam


class ReferenceAdam(Adam):
    """Adam(lr=1e-3, betas=(0.5, 0.999)): the reference's optimizer for both GAN networks."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        fused: bool | None = True,
        **options,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, fused=fused, **options)


class WGANGPAdam(Adam):
    """Adam(lr=1e-4, betas=(0, 0.9)): the WGAN-GP paper's optimizer for critic and generator."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        fused: bool | None = True,
        **options,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, fused=fused, **options)


class ActEnvAdam(Adam):
    """Adam(lr=1e-4): the reference's optimizer for all four of the agent's updates."""

    def __init__(
        self, params: Iterable, lr: float = 1e-4, fused: bool | None = True, **options
    ) -> None:
        super().__init__(params, lr=lr, fused=fused, **options)
