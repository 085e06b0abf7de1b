"""PyTorch eager reference of a gan2d training step, used only by ``gan2d bench``.

It is the code a user would otherwise write: the same networks (MLPs with PyTorch's
default init, as ``gan2d.nets``), the same losses (NS-GAN / minimax, WGAN-GP), the same
Adam settings, batch, critic steps and data (ring8), in plain PyTorch eager mode. It
follows the habits of good reference code, so it is a fair baseline: the fakes of a
critic step are made without autograd, the critic's parameters are frozen during the
generator's step, and no loss is copied to the host per step.

Import this module only when torch is installed (``gan2d.bench`` checks).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan2d.core.config import Config

SUPPORTED_LOSSES = ("ns", "minimax", "wgan-gp")

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
}


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def check_supported(config: Config) -> None:
    """``ValueError`` unless the reference covers this config."""
    if config.loss not in SUPPORTED_LOSSES:
        raise ValueError(
            f"the PyTorch reference covers loss {', '.join(SUPPORTED_LOSSES)}, not {config.loss}"
        )
    if config.dataset != "ring8" or config.optimizer != "adam":
        raise ValueError("the PyTorch reference covers dataset=ring8 with optimizer=adam")
    if config.unrolled_steps or config.pack != 1 or config.n_generators != 1:
        raise ValueError("the PyTorch reference covers plain (not unrolled, packed, mixed) GANs")


class TorchGAN:
    """One GAN in PyTorch eager mode; ``step()`` is one training step."""

    def __init__(self, config: Config, device: str = "cpu"):
        check_supported(config)
        torch.manual_seed(config.seed)
        self.config = config
        self.device = torch.device(device)
        width, depth = config.width, config.depth
        self.g = mlp([config.z_dim] + [width] * depth + [2], config.activation).to(self.device)
        self.d = mlp([2] + [width] * depth + [1], config.activation).to(self.device)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=config.lr_d, betas=betas)
        angles = 2 * math.pi * torch.arange(config.n_modes, dtype=torch.float32) / config.n_modes
        self.means = (config.radius * torch.stack([angles.cos(), angles.sin()], 1)).to(self.device)

    def sample_real(self, n: int) -> torch.Tensor:
        idx = torch.randint(self.config.n_modes, (n,), device=self.device)
        return self.means[idx] + self.config.data_std * torch.randn(n, 2, device=self.device)

    def latent(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.z_dim, device=self.device)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """WGAN-GP (Gulrajani et al. 2017) on random interpolates."""
        eps = torch.rand(real.shape[0], 1, device=self.device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.d(x_hat).sum(), x_hat, create_graph=True)
        norms = torch.sqrt(grad.pow(2).sum(1) + 1e-12)
        return (norms - 1).pow(2).mean()

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        f_real, f_fake = self.d(real)[:, 0], self.d(fake)[:, 0]
        if self.config.loss == "wgan-gp":
            gp = self.gradient_penalty(real, fake)
            return f_fake.mean() - f_real.mean() + self.config.gp_weight * gp
        softplus = nn.functional.softplus
        return softplus(-f_real).mean() + softplus(f_fake).mean()

    def generator_loss(self, f_fake: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "wgan-gp":
            return -f_fake.mean()
        if self.config.loss == "ns":
            return nn.functional.softplus(-f_fake).mean()
        return -nn.functional.softplus(f_fake).mean()

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``d_steps`` critic updates, then one generator update; losses stay on device."""
        batch = self.config.batch_size
        for _ in range(self.config.d_steps):
            real = self.sample_real(batch)
            with torch.no_grad():
                fake = self.g(self.latent(batch))
            d_loss = self.critic_loss(real, fake)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        self.d.requires_grad_(False)
        g_loss = self.generator_loss(self.d(self.g(self.latent(batch)))[:, 0])
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        return d_loss.detach(), g_loss.detach()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def device_for(jax_platform: str) -> str:
    """The torch device matching jax's default platform ("cuda" for a GPU when torch
    can use one, else "cpu")."""
    if jax_platform == "gpu" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def describe() -> str:
    return f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
