from duet.lightning_modules.networks.conditional import (
    ConditionalMLPGenerator,
    ProjectionMLPDiscriminator,
)
from duet.lightning_modules.networks.conv import DCDiscriminator, DCGenerator
from duet.lightning_modules.networks.mlp import MLPDiscriminator, MLPGenerator
from duet.lightning_modules.networks.standard_dcgan import (
    StandardDCDiscriminator,
    StandardDCGenerator,
)

__all__ = [
    "ConditionalMLPGenerator",
    "DCDiscriminator",
    "DCGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "ProjectionMLPDiscriminator",
    "StandardDCDiscriminator",
    "StandardDCGenerator",
]
