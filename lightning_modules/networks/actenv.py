"""The reference's Act and Env networks: one shape, two roles."""

import torch
from torch import Tensor, nn

# TensorFlow 1.x defaults the reference ran with: batch_normalization(epsilon=1e-3, momentum=0.99).
TF_BATCHNORM_EPS = 1e-3
TF_BATCHNORM_MOMENTUM = 0.01  # PyTorch's momentum is TF's 1 - momentum


class ActEnvNet(nn.Module):
    """Linear input→width, BN, LeakyReLU(0.1); concatenate a one-hot condition; Linear →hidden, BN,
    LeakyReLU(0.1); two heads: Linear hidden→out and Linear hidden→1.

    Act is ``ActEnvNet(state_size, action_size, out_size=action_size)`` on (state, previous action);
    Env is ``ActEnvNet(state_size, action_size, out_size=state_size)`` on (state, action).

    (B, input_size) inputs and (B,) int64 condition indices -> ((B, out_size) logits, (B,) Q logit).

    Args:
        width: units of the first layer; the reference squeezes the input into action_size units.
        trainable_heads: the reference never trained the two heads (fixed at their initialisation).
        batchnorm_training: the reference never passed ``training=True``, so its BatchNorm always
            used the initial running statistics (mean 0, variance 1) and acted as a learned affine
            map.
            False keeps BatchNorm in inference mode even while the module trains.
    """

    def __init__(
        self,
        input_size: int,
        condition_size: int,
        out_size: int,
        hidden_size: int = 8,
        width: int | None = None,
        trainable_heads: bool = False,
        batchnorm_training: bool = False,
    ) -> None:
        super().__init__()
        width = condition_size if width is None else width
        self.condition_size = condition_size
        self.batchnorm_training = batchnorm_training
        self.encode = nn.Linear(input_size, width)
        self.encode_norm = nn.BatchNorm1d(
            width, eps=TF_BATCHNORM_EPS, momentum=TF_BATCHNORM_MOMENTUM
        )
        self.hidden = nn.Linear(width + condition_size, hidden_size)
        self.hidden_norm = nn.BatchNorm1d(
            hidden_size, eps=TF_BATCHNORM_EPS, momentum=TF_BATCHNORM_MOMENTUM
        )
        self.out_head = nn.Linear(hidden_size, out_size)
        self.q_head = nn.Linear(hidden_size, 1)
        for layer in (self.encode, self.hidden, self.out_head, self.q_head):
            nn.init.xavier_uniform_(layer.weight)  # TensorFlow's glorot_uniform and zero bias
            nn.init.zeros_(layer.bias)
        for head in (self.out_head, self.q_head):
            head.requires_grad_(trainable_heads)
        self.train()

    def train(self, mode: bool = True) -> "ActEnvNet":
        super().train(mode)
        if not self.batchnorm_training:
            self.encode_norm.eval()
            self.hidden_norm.eval()
        return self

    def forward(self, inputs: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        x = nn.functional.leaky_relu(self.encode_norm(self.encode(inputs)), 0.1)  # (B, width)
        one_hot = nn.functional.one_hot(condition, self.condition_size).to(x.dtype)  # (B, C)
        x = torch.cat([x, one_hot], dim=1)  # (B, width + C)
        x = nn.functional.leaky_relu(self.hidden_norm(self.hidden(x)), 0.1)  # (B, hidden)
        return self.out_head(x), self.q_head(x).squeeze(1)  # (B, out), (B,)
