from duet.lightning_modules.networks.conv import DCDiscriminator, DCGenerator
from duet.lightning_modules.networks.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["DCDiscriminator", "DCGenerator", "MLPDiscriminator", "MLPGenerator"]
